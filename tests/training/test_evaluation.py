"""Evaluation: metrics, baselines and bootstrap confidence intervals on hand examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pivotal.training.evaluation import (
    BUY,
    HOLD,
    SELL,
    Estimate,
    Row,
    accuracy,
    block_indices,
    bootstrap,
    bootstrap_p_value,
    class_baselines,
    evaluate_policy,
    macro_f1,
    mae,
    persistence_action,
    persistence_kind,
    step_returns,
)
from pivotal.training.report import FoldReport, primary_line, significance_counts, summary_cells, summary_table

pytestmark = pytest.mark.unit


def test_accuracy_f1_mae_on_a_hand_example() -> None:
    y = np.array([0, 0, 1, 1, 2])
    p = np.array([0, 1, 1, 1, 0])
    assert accuracy(y, p) == pytest.approx(0.6)
    # class 0: tp 1 fp 1 fn 1 → 0.5; class 1: tp 2 fp 1 fn 0 → 0.8; class 2: tp 0 fn 1 → 0
    assert macro_f1(y, p, 3) == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert mae(np.array([1.0, -1.0]), np.array([0.5, 0.0])) == pytest.approx(0.75)


def test_majority_persistence_and_random_baselines() -> None:
    train_y = np.array([1, 1, 0, -1, 1, 2])  # -1 = unknown label, ignored
    last_kind = np.array([0, 1, -1])  # last pivot H, L, none
    base = class_baselines(train_y, persistence_kind(last_kind), 3, 3, np.random.default_rng(0), default=0)
    assert base["majority"].tolist() == [1, 1, 1]
    assert base["persistence"].tolist() == [1, 0, 1]  # after an H comes an L (1), after an L an H (0); none → majority
    assert persistence_action(last_kind).tolist() == [SELL, BUY, HOLD]
    draws = class_baselines(train_y, persistence_kind(last_kind), 3, 20_000, np.random.default_rng(1), 0)["random"]
    assert np.bincount(draws, minlength=3) / 20_000 == pytest.approx([0.2, 0.6, 0.2], abs=0.02)


def test_bootstrap_of_a_constant_metric_has_a_zero_width_interval() -> None:
    est = bootstrap(lambda i: 0.7, n=50, n_boot=100)
    assert (est.value, est.low, est.high, est.n) == (0.7, 0.7, 0.7, 50)


def test_bootstrap_interval_of_a_mean_brackets_it_and_shrinks_with_n() -> None:
    rng = np.random.default_rng(0)
    small, large = rng.integers(0, 2, 40).astype(float), rng.integers(0, 2, 4000).astype(float)
    a = bootstrap(lambda i: float(small[i].mean()), len(small), n_boot=400, seed=1)
    b = bootstrap(lambda i: float(large[i].mean()), len(large), n_boot=400, seed=1)
    assert a.low <= a.value <= a.high and b.low <= b.value <= b.high
    assert (b.high - b.low) < (a.high - a.low) / 5  # ~1/sqrt(100) as wide
    # the plain bootstrap's 95 % interval of a proportion ≈ p ± 1.96 sqrt(p(1-p)/n)
    half = 1.96 * math.sqrt(b.value * (1 - b.value) / len(large))
    assert (b.high - b.low) / 2 == pytest.approx(half, rel=0.2)


def test_block_indices_are_contiguous_runs_of_length_block() -> None:
    idx = block_indices(10, 4, np.random.default_rng(0))
    assert len(idx) == 10 and idx.min() >= 0 and idx.max() <= 9
    runs = np.split(idx, [4, 8])
    assert all(np.all(np.diff(r) == 1) for r in runs)
    assert block_indices(3, 10, np.random.default_rng(0)).tolist() == [0, 1, 2]  # block clipped to n


def test_policy_returns_after_costs_vs_buy_and_hold_and_flat() -> None:
    # executed like the engine: decided at close t, filled at open[t+1] (here the open equals the previous close)
    close = np.array([100.0, 105.0, 95.0, 100.0])
    fee, slip = 0.001, 0.0005
    gapless = np.r_[close[0], close[:-1]]  # open t+1 = close t, stated explicitly (opens are required)
    r = step_returns(np.array([1.0, -1.0, 0.0]), close, fee, slip, gapless)
    ef1 = 100 * (1 + slip)
    eq1 = 1 + (105 - ef1) / ef1
    xf1 = ef2 = 105 * (1 - slip)  # exit the long, enter the short at open 2
    realised = 1 + (xf1 - ef1) / ef1 - fee * (1 + xf1 / ef1)
    eq2 = realised * (1 + (ef2 - 95) / ef2)
    xf2 = 95 * (1 + slip)
    eq3 = realised * (1 + (ef2 - xf2) / ef2 - fee * (1 + xf2 / ef2))
    assert r.tolist() == pytest.approx([math.log(eq1), math.log(eq2 / eq1), math.log(eq3 / eq2)], rel=1e-12)
    rows, series = evaluate_policy(np.array([BUY, SELL, HOLD, HOLD]), close, fee, slip, n_boot=50, open_=gapless)
    total = {row.estimator: row.estimate.value for row in rows if row.metric == "total_log_return"}
    assert total["model"] == pytest.approx(r.sum())
    bh_entry, bh_exit = 100 * (1 + slip), 100 * (1 - slip)  # one entry at open 1, held to the EOD exit
    assert total["buy_and_hold"] == pytest.approx(math.log(1 + (bh_exit - bh_entry) / bh_entry - fee * (1 + bh_exit / bh_entry)))
    assert total["flat"] == 0.0 and total["delta vs flat"] == pytest.approx(r.sum())
    assert series["flat"].tolist() == [0.0, 0.0, 0.0]
    point = {row.metric: row.estimate.value for row in rows if row.estimator == "model"}
    assert point["position_changes"] == 3.0 and point["time_in_market"] == pytest.approx(2 / 3)


def test_policy_sharpe_is_the_core_sharpe_annualised_with_the_given_periods() -> None:
    """No local alias: ``core.stats.sharpe`` (ddof 1, NaN when undefined) of the per-step returns × √periods per year;
    without a known timeframe ``periods`` is 1 (per-step Sharpe)."""
    close = np.array([100.0, 103.0, 101.0, 106.0, 104.0, 109.0])
    opens = np.array([100.0, 101.0, 104.0, 100.0, 107.0, 103.0])
    actions = np.array([BUY, BUY, SELL, BUY, HOLD, HOLD])
    per_step, series = evaluate_policy(actions, close, 0.001, 0.0005, n_boot=20, open_=opens)
    daily, _ = evaluate_policy(actions, close, 0.001, 0.0005, n_boot=20, open_=opens, periods=365.0)
    r = series["model"]
    value = {
        (row.estimator, bool(p)): row.estimate.value
        for p, rows in enumerate((per_step, daily))
        for row in rows
        if row.metric == "sharpe"
    }
    assert value[("model", False)] == pytest.approx(r.mean() / r.std(ddof=1), rel=1e-12)
    assert value[("model", True)] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(365.0), rel=1e-12)
    assert math.isnan(value[("flat", False)])  # zero deviation: undefined, not 0


def test_bootstrap_p_value_is_twice_the_smaller_tail_beyond_zero() -> None:
    assert bootstrap_p_value(np.array([1.0, 2.0, 3.0, -1.0])) == pytest.approx(2 * 2 / 5)  # one of four <= 0
    assert bootstrap_p_value(np.arange(1.0, 100.0)) == pytest.approx(2 / 100)  # never exactly 0
    assert bootstrap_p_value(np.array([-1.0, 1.0])) == 1.0
    assert math.isnan(bootstrap_p_value(np.array([np.nan])))
    est = bootstrap(lambda i: float(np.mean(np.r_[np.full(50, 0.1), np.zeros(50)][i])), 100, 200, seed=1)
    assert est.p_value == pytest.approx(2 / 201)  # every resample mean > 0
    assert est.low > 0


def _row(target: str, metric: str, est: str, value: float, low: float, high: float, p: float = math.nan) -> Row:
    return Row(target, metric, est, Estimate(value, low, high, 100, p))


def test_report_summary_judges_the_model_against_the_best_baseline_by_the_holm_adjusted_p() -> None:
    rows = [
        _row("action", "accuracy", "model", 0.60, 0.55, 0.65),
        _row("action", "accuracy", "majority", 0.50, 0.45, 0.55),
        _row("action", "accuracy", "random", 0.40, 0.35, 0.45),
        _row("action", "accuracy", "delta vs majority", 0.10, 0.02, 0.18, p=0.004),
        _row("bars L1", "mae", "model", 2.0, 1.8, 2.2),
        _row("bars L1", "mae", "majority", 1.5, 1.4, 1.6),
        _row("bars L1", "mae", "delta vs majority", 0.5, 0.3, 0.7, p=0.01),
        _row("kind L1", "accuracy", "model", 0.51, 0.48, 0.54),
        _row("kind L1", "accuracy", "persistence", 0.52, 0.49, 0.55),
        _row("kind L1", "accuracy", "delta vs persistence", -0.01, -0.04, 0.02, p=0.6),
    ]
    table = summary_table([FoldReport(3, (0, 1), (2, 3), 10, 10, [], rows, holdout=True)])
    assert "fold 3 (holdout)" in table
    # Holm over the holdout's three cells: 0.004 x 3 = 0.012, max(0.012, 0.01 x 2) = 0.02, max(0.02, 0.6) = 0.6
    assert "| action | accuracy | 0.600 vs 0.500 (majority): **better**, p_Holm 0.012 |" in table
    assert "| bars L1 | mae | 2.0000 vs 1.5000 (majority): worse, p_Holm 0.020 |" in table
    assert "| kind L1 | accuracy | 0.510 vs 0.520 (persistence): tie, p_Holm 0.600 |" in table


def test_cells_significant_one_by_one_are_not_after_holm_across_folds() -> None:
    """Four folds, one kind/action cell each at p = 0.03: four unadjusted "better"s, none after Holm (4 x 0.03)."""
    folds = []
    for number in range(5):
        rows = [
            _row("kind L1", "accuracy", "model", 0.55, 0.51, 0.59),
            _row("kind L1", "accuracy", "majority", 0.50, 0.46, 0.54),
            _row("kind L1", "accuracy", "delta vs majority", 0.05, 0.004, 0.09, p=0.03),
        ]
        folds.append(FoldReport(number, (0, 1), (2, 3), 10, 10, [], rows, holdout=number == 4))
    cells = summary_cells(folds)
    assert [round(c.p_holm, 3) for c in cells] == [0.12, 0.12, 0.12, 0.12, 0.03]  # 4 folds one family; holdout alone
    assert [c.verdict() for c in cells] == ["tie"] * 4 + ["**better**"]
    assert significance_counts(folds) == {"folds": (4, 4, 0), "holdout": (1, 1, 1)}


def test_primary_line_reads_the_pre_registered_comparison_on_the_holdout() -> None:
    rows = [
        _row("action", "accuracy", "model", 0.41, 0.39, 0.43),
        _row("action", "accuracy", "persistence", 0.38, 0.36, 0.40),
        _row("action", "accuracy", "delta vs persistence", 0.03, 0.01, 0.05, p=0.004),
    ]
    folds = [FoldReport(7, (0, 1), (2, 3), 10, 10, [], rows, holdout=True)]
    primary = {"target": "action", "metric": "accuracy", "baseline": "persistence", "alpha": 0.05}
    line = primary_line(folds, primary)
    assert line == (
        "- **primary (action accuracy vs persistence on the holdout fold, pre-registered, alpha 0.05)**: model 0.4100, "
        "delta 0.0300 [0.0100, 0.0500], p 0.004: **better**"
    )
