"""Walk-forward optimisation fold by fold (the splitter itself is tested in tests/validation)."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from pivotal.optimize.grid import GridSearch
from pivotal.optimize.objective import Scorer, TradeReturns
from pivotal.optimize.optimizer import RunContext
from pivotal.optimize.parallel import LocalRunner
from pivotal.optimize.study import TrialLog
from pivotal.optimize.walkforward import stitch, walk_forward
from pivotal.validation.walkforward import Fold, WalkForwardSpec, split
from tests.optimize.objectives import QuadraticObjective

pytestmark = pytest.mark.unit


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
