"""Grid is exhaustive, random is seeded and reproducible, Bayesian beats random on average, chunks merge exactly."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pivotal.optimize.bayesian import BayesianSearch, make_sampler
from pivotal.optimize.grid import GridSearch
from pivotal.optimize.objective import ObjectiveMetric, Scorer, Window
from pivotal.optimize.optimizer import RunContext
from pivotal.optimize.parallel import LocalRunner
from pivotal.optimize.random_search import RandomSearch, sample_indices
from pivotal.optimize.space import GridSpace
from pivotal.optimize.study import TrialLog
from tests.optimize.objectives import BowlObjective, QuadraticObjective

WINDOW = Window(0, 1000)


def context(name: str = "s", workers: int = 1) -> RunContext:
    return RunContext(TrialLog(optuna.storages.InMemoryStorage(), name), LocalRunner(workers))


def test_grid_space_round_trip_and_errors() -> None:
    space = GridSpace.from_mapping({"x": (0.1, 0.2), "y": (1, 2, 3)})
    assert space.size == 6
    assert [space.params_of(i) for i in (0, 1, 5)] == [{"x": 0.1, "y": 1}, {"x": 0.1, "y": 2}, {"x": 0.2, "y": 3}]
    assert all(space.index_of_params(space.params_of(i)) == i for i in range(6))
    with pytest.raises(ValueError, match=r"y=4 is not a grid value; allowed: \[1, 2, 3\]"):
        space.index_of_params({"x": 0.1, "y": 4})
    with pytest.raises(IndexError, match=r"grid index 6 outside 0\.\.5"):
        space.params_of(6)


@given(st.lists(st.integers(1, 5), min_size=1, max_size=4), st.data())
@settings(max_examples=50, deadline=None)
def test_grid_index_is_a_bijection(radices: list[int], data: st.DataObject) -> None:
    space = GridSpace(tuple((f"d{k}", tuple(range(r))) for k, r in enumerate(radices)))
    index = data.draw(st.integers(0, space.size - 1))
    assert space.index_of(space.choices_of(index)) == index


def test_scorer_enforces_min_trades_and_direction() -> None:
    metrics = {
        "net_profit_pct": np.array([5.0, 9.0, np.nan]),
        "trades": np.array([30, 29, 40]),
        "max_drawdown": np.array([-3.0, -1.0, 2.0]),
    }
    assert Scorer(min_trades=30).score(metrics).tolist() == [5.0, -math.inf, -math.inf]
    assert Scorer(ObjectiveMetric.MAX_DRAWDOWN, min_trades=0).score(metrics).tolist() == [-3.0, -1.0, -2.0]
    with pytest.raises(KeyError, match="lack 'sharpe'"):
        Scorer(ObjectiveMetric.SHARPE).score(metrics)


def test_grid_search_is_exhaustive_and_finds_the_optimum() -> None:
    objective = QuadraticObjective()
    result = GridSearch(chunk_size=64).optimize(objective, WINDOW, Scorer(min_trades=30), context())
    assert result.n_trials == objective.space.size == 800
    assert sorted(result.evaluated.tolist()) == list(range(800))
    assert objective.space.params_of(result.best_index) == {"a": 7, "b": 3, "c": 5}
    assert result.best_score == 0.0
    # Sharpe moments cover exactly the 700 points with c > 0 (the c == 0 points have 5 trades < 30)
    values = objective.evaluate_indices(np.arange(800), WINDOW)["sharpe"][np.arange(800) % 8 != 0]
    assert result.sharpe_n == 700
    assert result.sharpe_mean == pytest.approx(values.mean())
    assert result.sharpe_var == pytest.approx(values.var(ddof=1))


def test_grid_search_with_every_point_below_min_trades_finds_nothing() -> None:
    result = GridSearch().optimize(QuadraticObjective(), WINDOW, Scorer(min_trades=51), context())
    assert not result.found and result.best_index == -1 and result.best_score == -math.inf


def test_random_search_is_seeded_distinct_and_reproducible() -> None:
    first = sample_indices(800, 100, seed=3)
    assert len(set(first.tolist())) == 100
    assert np.array_equal(first, sample_indices(800, 100, seed=3))
    assert not np.array_equal(first, sample_indices(800, 100, seed=4))
    assert sorted(sample_indices(800, 5000, seed=1).tolist()) == list(range(800))  # capped at the grid size
    a = RandomSearch(samples=100, seed=3, chunk_size=16).optimize(
        QuadraticObjective(), WINDOW, Scorer(min_trades=30), context("a")
    )
    b = RandomSearch(samples=100, seed=3, chunk_size=50).optimize(
        QuadraticObjective(), WINDOW, Scorer(min_trades=30), context("b")
    )
    assert np.array_equal(a.evaluated, np.sort(first))  # the sample, evaluated in index order
    assert (a.best_index, a.best_score, a.sharpe_n) == (b.best_index, b.best_score, b.sharpe_n)
    assert a.sharpe_var == pytest.approx(b.sharpe_var)


def test_random_search_rejects_bad_sample_count() -> None:
    with pytest.raises(ValueError, match="samples must be >= 1"):
        sample_indices(10, 0, seed=0)


def test_resuming_with_different_setup_is_refused() -> None:
    storage = optuna.storages.InMemoryStorage()
    RandomSearch(samples=10, seed=1).optimize(
        QuadraticObjective(), WINDOW, Scorer(), RunContext(TrialLog(storage, "x"), LocalRunner(1))
    )
    with pytest.raises(ValueError, match="use a new --job-id or the original options"):
        RandomSearch(samples=10, seed=2).optimize(
            QuadraticObjective(), WINDOW, Scorer(), RunContext(TrialLog(storage, "x"), LocalRunner(1))
        )


def test_bayesian_beats_random_on_average_over_seeds() -> None:
    """Same budget (60 of 20,736 points): TPE's mean best score is higher than random search's over 5 seeds."""
    scorer = Scorer(min_trades=30)
    tpe, rnd = [], []
    for seed in range(5):
        tpe.append(
            BayesianSearch(trials=40, seed=seed, batch_size=4)
            .optimize(QuadraticObjective(), WINDOW, scorer, context(f"t{seed}"))
            .best_score
        )
        rnd.append(RandomSearch(samples=60, seed=seed).optimize(BowlObjective(), WINDOW, scorer, context(f"r{seed}")).best_score)
    assert np.mean(tpe) > np.mean(rnd)


def test_bayesian_records_one_trial_per_configuration() -> None:
    ctx = context()
    result = BayesianSearch(trials=12, sampler="random", seed=0, batch_size=5).optimize(
        QuadraticObjective(), WINDOW, Scorer(), ctx
    )
    trials = ctx.log.completed_trials()
    assert len(trials) == result.n_trials == 12
    assert result.evaluated.tolist() == [t.user_attrs["eval"]["index"] for t in trials]
    scores = QuadraticObjective().evaluate_indices(result.evaluated, WINDOW)
    expected = Scorer().score(scores)
    assert [t.value for t in trials] == expected.tolist()


@pytest.mark.parametrize("sampler", ["qmc", "gp", "nsga2"])
def test_other_samplers_by_name(sampler: str) -> None:
    result = BayesianSearch(trials=6, sampler=sampler, seed=1, batch_size=3).optimize(
        QuadraticObjective(), WINDOW, Scorer(), context()
    )
    assert result.n_trials == 6 and result.found


def test_unknown_sampler_names_the_choices() -> None:
    with pytest.raises(
        ValueError, match=r"unknown sampler 'bogus'; choose one of \['cmaes', 'gp', 'nsga2', 'qmc', 'random', 'tpe'\]"
    ):
        make_sampler("bogus", 0)


def test_process_pool_gives_the_same_result_as_in_process() -> None:
    serial = GridSearch(chunk_size=100).optimize(QuadraticObjective(), WINDOW, Scorer(), context("a", workers=1))
    runner = LocalRunner(2)
    try:
        pooled = GridSearch(chunk_size=100).optimize(
            QuadraticObjective(), WINDOW, Scorer(), RunContext(TrialLog(optuna.storages.InMemoryStorage(), "b"), runner)
        )
    finally:
        runner.close()
    assert (serial.best_index, serial.best_score, serial.sharpe_n) == (pooled.best_index, pooled.best_score, pooled.sharpe_n)


def test_bayesian_batches_split_over_workers_give_the_same_trials() -> None:
    serial = BayesianSearch(trials=12, seed=3, batch_size=4).optimize(QuadraticObjective(), WINDOW, Scorer(), context("s"))
    runner = LocalRunner(2)
    try:
        log = TrialLog(optuna.storages.InMemoryStorage(), "p")
        pooled = BayesianSearch(trials=12, seed=3, batch_size=4).optimize(
            QuadraticObjective(), WINDOW, Scorer(), RunContext(log, runner)
        )
    finally:
        runner.close()
    assert pooled.evaluated.tolist() == serial.evaluated.tolist()
    assert (pooled.best_index, pooled.best_score) == (serial.best_index, serial.best_score)
