"""From a spec to a trained configuration, on the pure-math objective (no prices: shapes and bookkeeping only)."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from pivotal.optimize.configs import Lifecycle, lifecycle_stage
from pivotal.optimize.parallel import LocalRunner
from pivotal.optimize.pipeline import Market, OptimizeSpec, run_market
from tests.optimize.objectives import QuadraticObjective

MARKET = Market("test", "A/B", "1h")


def spec(**changes: object) -> OptimizeSpec:
    base = {"exchange": "test", "symbols": ("A/B",), "timeframes": ("1h",), "method": "grid", "min_trades": 30}
    return OptimizeSpec(**{**base, **changes})  # type: ignore[arg-type]


def test_walk_forward_market_report() -> None:
    objective = QuadraticObjective(n_bars=24 * 300, drift=True)
    report = run_market(objective, spec(), MARKET, "job", optuna.storages.InMemoryStorage(), LocalRunner(1))
    config = report.configuration
    assert config is not None and config.id == "job:test:A/B:1h"
    latest = report.walk_forward.folds[-1]
    assert config.parameters == latest.params == objective.space.params_of(latest.best_index)
    assert config.sample_size == len(report.walk_forward.oos_trades.returns) == config.oos_metrics["trades"]
    sig = config.significance
    assert sig["returns_tested"] == "out_of_sample" and sig["n_trials"] == 800
    assert 0 <= sig["pbo"] <= 1 and isinstance(sig["overfit"], bool)
    assert config.lifecycle_stage is lifecycle_stage(config.sample_size, sig["sharpe_annualised"])


def test_without_walk_forward_statistics_are_in_sample() -> None:
    objective = QuadraticObjective(n_bars=24 * 100)
    report = run_market(objective, spec(walk_forward=None), MARKET, "j", optuna.storages.InMemoryStorage(), LocalRunner(1))
    config = report.configuration
    assert config is not None
    assert config.significance["returns_tested"] == "in_sample" and config.significance["overfit"] is None
    assert config.oos_metrics == {"folds": 1, "folds_with_config": 1}
    assert config.parameters == {"a": 7, "b": 3, "c": 5}
    # 120 identical positive trades: zero variance, so Sharpe is undefined and the stage cannot be MATURE
    assert config.sample_size == len(np.arange(0, 24 * 100 - 10, 20))
    assert config.lifecycle_stage is Lifecycle.VALIDATION


def test_no_configuration_when_min_trades_is_never_met() -> None:
    objective = QuadraticObjective(n_bars=24 * 300)
    report = run_market(objective, spec(min_trades=1000), MARKET, "j", optuna.storages.InMemoryStorage(), LocalRunner(1))
    assert report.configuration is None and all(f.best_index == -1 for f in report.walk_forward.folds)


def test_spec_validation_and_round_trip() -> None:
    s = spec(method="bayesian", sampler="gp", walk_forward="60/2/14", anchored=True)
    assert type(s).from_dict(s.to_dict()) == s
    with pytest.raises(ValueError, match="method 'sgd': choose one of grid, random, bayesian"):
        spec(method="sgd")
    with pytest.raises(ValueError, match="metric 'CAGR': choose one of NET_PROFIT"):
        spec(metric="CAGR")
