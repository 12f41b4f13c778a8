"""Honest evaluation: model vs naive baselines on out-of-sample data, with bootstrap confidence intervals.

Baselines are fitted on the *training* labels of the same fold only:

- **majority**: the most frequent training class (kinds, actions); the training median (price/bars offsets).
- **persistence**: the direction of the last pivot confirmed by t continues — last pivot a low → next pivot a high
  and action BUY; last a high → next a low and SELL; no pivot yet → majority / HOLD. (Regressions have none.)
- **random**: classes drawn with the training frequencies; regressions drawn from the training values (seeded).

Confidence intervals: percentile moving-block bootstrap (blocks keep the serial correlation of neighbouring
samples; ``block=1`` is the plain bootstrap). ``delta`` rows give model − baseline on the *same* resamples, and their
two-sided bootstrap p-value of "no difference" (``Estimate.p_value``: the smallest level at which the equal-tailed
percentile interval excludes 0). Many such comparisons are read together, so the report corrects them for
multiplicity (Holm, ``training.report``) before calling anything better or worse.
Trading policies (DQN) are compared with buy-and-hold and flat on per-step log returns after fees and slippage,
executed by the execution model (decision at close t, fill at the next open).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pivotal.core.stats import sharpe
from pivotal.core.vocabulary import ACTION_BUY, ACTION_HOLD, ACTION_SELL, ACTIONS
from pivotal.models.dqn import POSITIONS
from pivotal.training.dataset import SampleSet

BUY, SELL, HOLD = ACTION_BUY, ACTION_SELL, ACTION_HOLD


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float
    n: int
    p_value: float = float("nan")  # two-sided bootstrap p of "the value is 0" (read on delta rows only)

    def fmt(self, digits: int = 3) -> str:
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


@dataclass(frozen=True)
class Row:
    target: str  # e.g. "kind L1", "action", "price L2"
    metric: str  # accuracy | f1 | mae | total_return | sharpe
    estimator: str  # model | majority | persistence | random | buy_and_hold | flat | delta vs X
    estimate: Estimate


# --------------------------------------------------------------------------------------------- metrics


def accuracy(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(y == p)) if len(y) else float("nan")


def macro_f1(y: np.ndarray, p: np.ndarray, n_classes: int) -> float:
    """Mean F1 over the classes present in ``y`` or ``p`` (absent classes would add a meaningless 0 or 1)."""
    scores = []
    for c in range(n_classes):
        tp = np.sum((p == c) & (y == c))
        fp = np.sum((p == c) & (y != c))
        fn = np.sum((p != c) & (y == c))
        if tp + fp + fn == 0:
            continue
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else float("nan")


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, n_classes: int = len(ACTIONS)) -> np.ndarray:
    """``m[i, j]`` = how many samples of true class i were predicted as j."""
    m = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(m, (np.asarray(truth, np.int64), np.asarray(predicted, np.int64)), 1)
    return m


def classification_metrics(truth: np.ndarray, predicted: np.ndarray, labels: Sequence[str] = ACTIONS) -> dict[str, Any]:
    """Accuracy, per-class precision / recall / F1 / support, their macro means over the classes that occur (in the
    truth or the predictions), and the confusion matrix (rows: truth, columns: predicted, in ``labels`` order).
    A ratio with a zero denominator is None (no sample to judge), never a made-up 0 or 1."""
    truth, predicted = np.asarray(truth, np.int64), np.asarray(predicted, np.int64)
    m = confusion_matrix(truth, predicted, len(labels))
    per_class: dict[str, dict[str, Any]] = {}
    for c, name in enumerate(labels):
        tp, fp, fn = int(m[c, c]), int(m[:, c].sum() - m[c, c]), int(m[c, :].sum() - m[c, c])
        precision = tp / (tp + fp) if tp + fp else None
        recall = tp / (tp + fn) if tp + fn else None
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1, "support": int(m[c, :].sum())}

    def macro(key: str) -> float | None:
        values = [v[key] for v in per_class.values() if v[key] is not None]
        return float(np.mean(values)) if values else None

    return {
        "n": len(truth),
        "accuracy": accuracy(truth, predicted) if len(truth) else None,
        "per_class": per_class,
        "macro_precision": macro("precision"),
        "macro_recall": macro("recall"),
        "macro_f1": macro("f1"),
        "labels": list(labels),
        "confusion_matrix": m.tolist(),
    }


def mae(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(np.abs(y - p))) if len(y) else float("nan")


# ------------------------------------------------------------------------------------------- bootstrap


def block_indices(n: int, block: int, rng: np.random.Generator) -> np.ndarray:
    """One moving-block resample of ``range(n)``: ceil(n / block) random blocks, trimmed to n."""
    block = max(1, min(block, n))
    starts = rng.integers(0, n - block + 1, size=-(-n // block))
    return (starts[:, None] + np.arange(block)[None, :]).ravel()[:n]


def bootstrap(
    metric: Callable[[np.ndarray], float], n: int, n_boot: int = 1000, block: int = 1, alpha: float = 0.05, seed: int = 0
) -> Estimate:
    """Percentile CI of ``metric(rows)``; ``metric`` receives an index array into the evaluated samples."""
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    rng = np.random.default_rng(seed)
    values = np.array([metric(block_indices(n, block, rng)) for _ in range(n_boot)])
    values = values[np.isfinite(values)]
    point = metric(np.arange(n))
    if len(values) == 0:
        return Estimate(point, float("nan"), float("nan"), n)
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return Estimate(float(point), float(low), float(high), n, bootstrap_p_value(values))


def bootstrap_p_value(values: np.ndarray) -> float:
    """Two-sided p of "the statistic is 0" from its bootstrap distribution: twice the smaller tail beyond 0, with the
    +1 correction of a finite number of resamples (never exactly 0). ``p < alpha`` iff the equal-tailed percentile
    interval at level ``alpha`` excludes 0 (up to that correction)."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan")
    tail = min(int(np.count_nonzero(values <= 0)), int(np.count_nonzero(values >= 0)))
    return float(min(1.0, 2.0 * (tail + 1) / (len(values) + 1)))


# ------------------------------------------------------------------------------------------- baselines


def majority(train_y: np.ndarray, default: int) -> int:
    known = train_y[train_y >= 0]
    return int(np.bincount(known).argmax()) if len(known) else default


def class_baselines(
    train_y: np.ndarray, persistence: np.ndarray, n_classes: int, n: int, rng: np.random.Generator, default: int
) -> dict[str, np.ndarray]:
    """Predictions of the three classification baselines for n test samples (``persistence`` precomputed)."""
    mode = majority(train_y, default)
    known = train_y[train_y >= 0]
    freq = np.bincount(known, minlength=n_classes) / len(known) if len(known) else np.full(n_classes, 1.0 / n_classes)
    return {
        "majority": np.full(n, mode, np.int64),
        "persistence": np.where(persistence >= 0, persistence, mode).astype(np.int64),
        "random": rng.choice(n_classes, size=n, p=freq).astype(np.int64),
    }


def persistence_kind(last_kind: np.ndarray) -> np.ndarray:
    """Next pivot kind = the opposite of the last confirmed one (0 H, 1 L; -1 stays -1)."""
    return np.where(last_kind >= 0, 1 - last_kind, -1)


def persistence_action(last_kind: np.ndarray) -> np.ndarray:
    """Last confirmed pivot a low → BUY, a high → SELL, none → HOLD."""
    return np.where(last_kind == 1, BUY, np.where(last_kind == 0, SELL, HOLD))


# ------------------------------------------------------------------------------------ supervised models


@dataclass(frozen=True)
class Predictions:
    kind: np.ndarray  # int64 [N, levels]
    price: np.ndarray  # float [N, levels]  ln(price / close)
    bars: np.ndarray  # float [N, levels]
    action: np.ndarray  # int64 [N]


def _class_rows(
    target: str, y: np.ndarray, preds: dict[str, np.ndarray], n_classes: int, n_boot: int, block: int, seed: int
) -> list[Row]:
    rows = []
    m = preds["model"]

    def f1(a: np.ndarray, b: np.ndarray) -> float:
        return macro_f1(a, b, n_classes)

    def score(fn: Callable[[np.ndarray, np.ndarray], float], p: np.ndarray) -> Callable[[np.ndarray], float]:
        return lambda i: fn(y[i], p[i])

    def paired(fn: Callable[[np.ndarray, np.ndarray], float], p: np.ndarray) -> Callable[[np.ndarray], float]:
        return lambda i: fn(y[i], m[i]) - fn(y[i], p[i])

    for name, fn in (("accuracy", accuracy), ("f1", f1)):
        for est, p in preds.items():
            rows.append(Row(target, name, est, bootstrap(score(fn, p), len(y), n_boot, block, seed=seed)))
        for est, p in preds.items():
            if est == "model":
                continue
            delta = bootstrap(paired(fn, p), len(y), n_boot, block, seed=seed)
            rows.append(Row(target, name, f"delta vs {est}", delta))
    return rows


def _regression_rows(target: str, y: np.ndarray, preds: dict[str, np.ndarray], n_boot: int, block: int, seed: int) -> list[Row]:
    m = preds["model"]

    def score(p: np.ndarray) -> Callable[[np.ndarray], float]:
        return lambda i: mae(y[i], p[i])

    def paired(p: np.ndarray) -> Callable[[np.ndarray], float]:
        return lambda i: mae(y[i], m[i]) - mae(y[i], p[i])

    rows = [Row(target, "mae", est, bootstrap(score(p), len(y), n_boot, block, seed=seed)) for est, p in preds.items()]
    for est, p in preds.items():
        if est != "model":
            rows.append(Row(target, "mae", f"delta vs {est}", bootstrap(paired(p), len(y), n_boot, block, seed=seed)))
    return rows


def evaluate_supervised(
    pred: Predictions, test: SampleSet, train: SampleSet, n_boot: int = 500, block: int = 24, seed: int = 0
) -> list[Row]:
    """Rows for every level's kind (accuracy, F1), price and bars (MAE), and the action (accuracy, F1).

    ``test`` must carry its true labels (evaluate after the fact); ``train`` the labels the model was trained on.
    """
    rng = np.random.default_rng(seed)
    rows: list[Row] = []
    for lv in range(test.levels):
        known = test.kind[:, lv] >= 0
        y = test.kind[known, lv]
        base = class_baselines(train.kind[:, lv], persistence_kind(test.last_kind[known, lv]), 2, len(y), rng, 0)
        rows += _class_rows(f"kind L{lv + 1}", y, {"model": pred.kind[known, lv], **base}, 2, n_boot, block, seed)
        for field, label in (("price", "price"), ("bars", "bars")):
            truth, train_vals = getattr(test, field)[:, lv], getattr(train, field)[:, lv]
            ok = np.isfinite(truth)
            train_vals = train_vals[np.isfinite(train_vals)]
            if not ok.any() or len(train_vals) == 0:
                continue
            reg = {
                "model": getattr(pred, field)[ok, lv],
                "majority": np.full(int(ok.sum()), float(np.median(train_vals))),
                "random": rng.choice(train_vals, size=int(ok.sum())),
            }
            rows += _regression_rows(f"{label} L{lv + 1}", truth[ok], reg, n_boot, block, seed)
    known = test.action >= 0
    y = test.action[known]
    action_level = min(2, test.levels) - 1  # labels.py default action level 2
    base = class_baselines(train.action, persistence_action(test.last_kind[known, action_level]), 3, len(y), rng, HOLD)
    rows += _class_rows("action", y, {"model": pred.action[known], **base}, 3, n_boot, block, seed)
    return rows


# ------------------------------------------------------------------------------------ trading policies


def step_returns(positions: np.ndarray, close: np.ndarray, fee: float, slippage: float, open_: np.ndarray) -> np.ndarray:
    """Per-step log return of the position targets ``positions[t]`` executed by the engine's rules
    (``pivotal.execution.positions``): decided at close t, filled at ``open_[t+1]`` with slippage and fees per side,
    marked at close t+1; a position held at the end exits at the last close. Starts flat; length ``len(close) - 1``.
    ``open_`` (aligned with ``close``; for samples ``SampleSet.execution_open()``) is required: a fill at the decision
    close would hide every overnight gap and weekend move."""
    from pivotal.execution.positions import target_position_run  # lazy: the engine loads numba

    opens = checked_open(open_, close)
    if len(close) < 2:
        return np.zeros(0)
    return target_position_run(positions, np.asarray(close, np.float64), fee, slippage, opens)[0]


def checked_open(open_: np.ndarray | None, close: np.ndarray) -> np.ndarray:
    """``open_`` as float64, refused (``ValueError``) when missing, misaligned with ``close`` or not finite where a fill
    settles (bars 1..n-1): no path falls back to filling at the decision close."""
    if open_ is None:
        raise ValueError(
            "bar opens are required: a decision at close t fills at open[t+1] (pass open_=..., for samples "
            "SampleSet.execution_open())"
        )
    opens = np.asarray(open_, np.float64)
    if opens.shape != np.shape(close):
        raise ValueError(f"open_ has shape {opens.shape} and close {np.shape(close)}: pass one open per close")
    if not np.all(np.isfinite(opens[1:])):
        raise ValueError(f"open_ has a missing fill price at bar {int(np.flatnonzero(~np.isfinite(opens[1:]))[0]) + 1}")
    return opens


def evaluate_policy(
    actions: np.ndarray,
    close: np.ndarray,
    fee: float,
    slippage: float,
    n_boot: int = 500,
    block: int = 24,
    seed: int = 0,
    *,
    open_: np.ndarray,
    periods: float = 1.0,
) -> tuple[list[Row], dict[str, np.ndarray]]:
    """Total log return and Sharpe of the policy vs buy-and-hold and flat, all after costs, each executed like the
    engine (:func:`step_returns`: next-open fills at ``open_``, fees and slippage per side, EOD exit).

    Sharpe is ``pivotal.core.stats.sharpe`` of the per-step log returns (ddof 1, NaN when undefined, which the
    bootstrap skips), annualised with ``periods`` steps per year: ``core.stats.periods_per_year`` of one step (the
    base timeframe × the sample stride) where the timeframe is known, else 1.0 (per-step Sharpe, not annualised).

    Returns the rows and the per-step return series (for equity plots).
    """
    opens = checked_open(open_, close)
    series = {
        "model": step_returns(POSITIONS[np.asarray(actions, np.int64)], close, fee, slippage, opens),
        "buy_and_hold": step_returns(np.ones(len(close)), close, fee, slippage, opens),
        "flat": np.zeros(max(len(close) - 1, 0)),
    }

    def total(r: np.ndarray) -> Callable[[np.ndarray], float]:
        return lambda i: float(np.sum(r[i]))

    def ratio(r: np.ndarray) -> Callable[[np.ndarray], float]:
        return lambda i: sharpe(r[i], periods)

    def excess(m: np.ndarray, r: np.ndarray) -> Callable[[np.ndarray], float]:
        return lambda i: float(np.sum(m[i]) - np.sum(r[i]))

    rows: list[Row] = []
    for est, r in series.items():
        rows.append(Row("policy", "total_log_return", est, bootstrap(total(r), len(r), n_boot, block, seed=seed)))
        rows.append(Row("policy", "sharpe", est, bootstrap(ratio(r), len(r), n_boot, block, seed=seed)))
    positions = POSITIONS[np.asarray(actions, np.int64)][: max(len(close) - 1, 0)]
    changes = float(np.count_nonzero(np.diff(np.r_[0.0, positions])))
    exposure = float(np.mean(positions != 0)) if len(positions) else float("nan")
    n = len(positions)
    rows.append(Row("policy", "position_changes", "model", Estimate(changes, changes, changes, n)))
    rows.append(Row("policy", "time_in_market", "model", Estimate(exposure, exposure, exposure, n)))
    m = series["model"]
    for est in ("buy_and_hold", "flat"):
        delta = bootstrap(excess(m, series[est]), len(m), n_boot, block, seed=seed)
        rows.append(Row("policy", "total_log_return", f"delta vs {est}", delta))
    return rows, series
