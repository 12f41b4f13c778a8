"""The walk-forward splitter (rolling, anchored, purge/embargo) and optimisation fold by fold."""

from __future__ import annotations

import itertools

import numpy as np
import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pivotal.optimize.grid import GridSearch
from pivotal.optimize.objective import Scorer, TradeReturns
from pivotal.optimize.optimizer import RunContext
from pivotal.optimize.parallel import LocalRunner
from pivotal.optimize.study import TrialLog
from pivotal.optimize.walkforward import DAY_MS, Fold, WalkForwardSpec, split, stitch, walk_forward
from tests.optimize.objectives import HOUR_MS, T0, QuadraticObjective

DAY_BARS = 24


def hourly(days: int) -> np.ndarray:
    return T0 + np.arange(days * DAY_BARS, dtype=np.int64) * HOUR_MS


def test_default_is_90_7_30_rolling_by_the_test_length() -> None:
    folds = split(hourly(200), WalkForwardSpec())
    # 200 days: folds start at day 0 and day 30 (the third would test days 157..187+30 > 200)
    assert [(f.train.start, f.train.end, f.test.start, f.test.end) for f in folds] == [
        (0, 90 * DAY_BARS, 97 * DAY_BARS, 127 * DAY_BARS),
        (30 * DAY_BARS, 120 * DAY_BARS, 127 * DAY_BARS, 157 * DAY_BARS),
        (60 * DAY_BARS, 150 * DAY_BARS, 157 * DAY_BARS, 187 * DAY_BARS),
    ]


def test_anchored_train_windows_start_at_the_first_bar_and_grow() -> None:
    folds = split(hourly(200), WalkForwardSpec(anchored=True))
    assert [f.train.start for f in folds] == [0, 0, 0]
    assert [f.train.end for f in folds] == [90 * DAY_BARS, 120 * DAY_BARS, 150 * DAY_BARS]


def test_parse_days_and_errors() -> None:
    spec = WalkForwardSpec.parse("60/2/14/7", anchored=True)
    assert (spec.train_ms, spec.gap_ms, spec.test_ms, spec.step, spec.anchored) == (
        60 * DAY_MS,
        2 * DAY_MS,
        14 * DAY_MS,
        7 * DAY_MS,
        True,
    )
    with pytest.raises(ValueError, match="expected TRAIN/GAP/TEST"):
        WalkForwardSpec.parse("90-7-30")
    with pytest.raises(ValueError, match=r"series spans 50\.0 days; walk-forward needs at least train\+gap\+test = 127\.0 days"):
        split(hourly(50), WalkForwardSpec())
    with pytest.raises(ValueError, match="purge and embargo are bar counts"):
        WalkForwardSpec(purge=-1)


def test_missing_bars_map_to_the_next_stored_bar() -> None:
    ts = hourly(140)
    ts = np.delete(ts, np.arange(90 * DAY_BARS, 98 * DAY_BARS))  # days 90..97 missing (includes the test start)
    fold = split(ts, WalkForwardSpec())[0]
    assert ts[fold.test.start] == T0 + 98 * DAY_MS
    assert fold.train.end == 90 * DAY_BARS


@given(
    st.integers(60, 400),
    st.integers(5, 60),
    st.integers(0, 10),
    st.integers(3, 40),
    st.booleans(),
    st.integers(0, 48),
    st.integers(0, 12),
)
@settings(max_examples=80, deadline=None)
def test_folds_never_leak(days: int, train: int, gap: int, test: int, anchored: bool, purge: int, embargo: int) -> None:
    """Train precedes test by at least the gap; a label reaching ``purge`` bars ahead never enters the test window;
    test windows are disjoint and in time order."""
    ts = hourly(days)
    spec = WalkForwardSpec(train * DAY_MS, gap * DAY_MS, test * DAY_MS, anchored=anchored, purge=purge, embargo=embargo)
    try:
        folds = split(ts, spec)
    except ValueError:
        assert days * DAY_MS < (train + gap + test) * DAY_MS + purge * HOUR_MS + embargo * HOUR_MS + DAY_MS
        return
    for fold in folds:
        last_label = fold.train.end - 1 + purge
        assert last_label < fold.test.start
        assert ts[fold.test.start] - ts[fold.train.end - 1 + purge] >= gap * DAY_MS
        assert fold.test.end <= len(ts)
    for a, b in itertools.pairwise(folds):
        assert a.test.start < b.test.start
        assert a.test.end <= b.test.start + embargo  # rolling by the test length: test windows tile, never overlap


def test_stitch_drops_overlapping_positions() -> None:
    a = TradeReturns(np.array([10, 30]), np.array([20, 45]), np.array([0.01, 0.02]))
    b = TradeReturns(np.array([40, 50]), np.array([48, 60]), np.array([0.5, -0.01]))  # entry 40 <= previous exit 45
    merged = stitch([a, b])
    assert merged.entry_bar.tolist() == [10, 30, 50] and merged.returns.tolist() == [0.01, 0.02, -0.01]


def test_walk_forward_picks_each_folds_optimum_and_stitches_oos() -> None:
    objective = QuadraticObjective(n_bars=24 * 300, drift=True)
    folds = split(objective.timestamps, WalkForwardSpec())
    storage = optuna.storages.InMemoryStorage()
    runner = LocalRunner(1)

    def context(fold: Fold) -> RunContext:
        return RunContext(TrialLog(storage, f"job/m/w{fold.number}"), runner)

    result = walk_forward(objective, GridSearch(chunk_size=200), folds, Scorer(min_trades=30), context)
    assert len(result.folds) == len(folds) == 6
    for fr in result.folds:
        a, b, c = objective.optimum_for(fr.fold.train)
        assert fr.params == {"a": a, "b": b, "c": c}
        assert fr.is_metrics["net_profit_pct"] == 0.0
        assert (
            fr.oos_metrics["net_profit_pct"]
            == objective.evaluate_indices(np.array([fr.best_index]), fr.fold.test)["net_profit_pct"][0]
        )
        assert fr.n_trials == 800
    # the optimum drifts between train and test for some folds: OOS is then worse than IS
    assert any(fr.oos_metrics["net_profit_pct"] < 0 for fr in result.folds)
    expected = stitch([fr.oos_trades for fr in result.folds])
    assert np.array_equal(result.oos_trades.returns, expected.returns)
    assert result.oos_equity[-1] == pytest.approx(np.prod(1 + expected.returns))
    assert len(storage.get_all_studies()) == 6
