"""Evaluation: metrics, baselines and bootstrap confidence intervals on hand examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pivotal.training.evaluation import (
    BUY,
    HOLD,
    SELL,
    accuracy,
    block_indices,
    bootstrap,
    class_baselines,
    evaluate_policy,
    macro_f1,
    mae,
    persistence_action,
    persistence_kind,
    sharpe,
    step_returns,
)


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
    close = np.array([100.0, 105.0, 95.0, 100.0])
    cost = 0.001 + 0.0005
    r = step_returns(np.array([1.0, -1.0, 0.0]), close, 0.001, 0.0005)
    assert r.tolist() == pytest.approx([math.log(1.05) - cost, -math.log(95 / 105) - 2 * cost, -cost])
    rows, series = evaluate_policy(np.array([BUY, SELL, HOLD, HOLD]), close, 0.001, 0.0005, n_boot=50)
    total = {row.estimator: row.estimate.value for row in rows if row.metric == "total_log_return"}
    assert total["model"] == pytest.approx(r.sum())
    assert total["buy_and_hold"] == pytest.approx(math.log(100 / 100) - cost)  # one entry, held to the end
    assert total["flat"] == 0.0 and total["delta vs flat"] == pytest.approx(r.sum())
    assert series["flat"].tolist() == [0.0, 0.0, 0.0]
    point = {row.metric: row.estimate.value for row in rows if row.estimator == "model"}
    assert point["position_changes"] == 3.0 and point["time_in_market"] == pytest.approx(2 / 3)


def test_sharpe_is_mean_over_std_times_sqrt_n() -> None:
    r = np.array([0.01, -0.01, 0.02, 0.0])
    assert sharpe(r) == pytest.approx(r.mean() / r.std() * 2.0)
    assert sharpe(np.zeros(5)) == 0.0


def test_report_summary_judges_the_model_against_the_best_baseline_by_the_paired_ci() -> None:
    from pivotal.training.evaluation import Estimate, Row
    from pivotal.training.report import FoldReport, summary_table

    def row(target: str, metric: str, est: str, value: float, low: float, high: float) -> Row:
        return Row(target, metric, est, Estimate(value, low, high, 100))

    rows = [
        row("action", "accuracy", "model", 0.60, 0.55, 0.65),
        row("action", "accuracy", "majority", 0.50, 0.45, 0.55),
        row("action", "accuracy", "random", 0.40, 0.35, 0.45),
        row("action", "accuracy", "delta vs majority", 0.10, 0.02, 0.18),
        row("bars L1", "mae", "model", 2.0, 1.8, 2.2),
        row("bars L1", "mae", "majority", 1.5, 1.4, 1.6),
        row("bars L1", "mae", "delta vs majority", 0.5, 0.3, 0.7),
        row("kind L1", "accuracy", "model", 0.51, 0.48, 0.54),
        row("kind L1", "accuracy", "persistence", 0.52, 0.49, 0.55),
        row("kind L1", "accuracy", "delta vs persistence", -0.01, -0.04, 0.02),
    ]
    table = summary_table([FoldReport(3, (0, 1), (2, 3), 10, 10, [], rows, holdout=True)])
    assert "fold 3 (holdout)" in table
    assert "| action | accuracy | 0.600 vs 0.500 (majority): **better** |" in table
    assert "| bars L1 | mae | 2.0000 vs 1.5000 (majority): worse |" in table
    assert "| kind L1 | accuracy | 0.510 vs 0.520 (persistence): tie |" in table
