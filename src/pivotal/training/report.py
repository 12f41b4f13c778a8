"""Evaluation report: Markdown tables of model vs baselines (with bootstrap CIs) and PNG plots."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pivotal.training.evaluation import Row


@dataclass
class FoldReport:
    """One walk-forward fold: its spans, its training history and its out-of-sample rows."""

    number: int
    train_span: tuple[int, int]  # epoch ms
    test_span: tuple[int, int]
    n_train: int
    n_test: int
    history: list[dict[str, float]]
    rows: list[Row]
    holdout: bool = False  # the last fold: reported, never used to choose anything
    policy: dict[str, np.ndarray] = field(default_factory=dict)


def _iso(ms: int) -> str:
    return np.datetime64(int(ms), "ms").astype("datetime64[m]").astype(str).replace("T", " ")


def rows_table(rows: Sequence[Row]) -> str:
    """Markdown: one line per (target, metric), one column per estimator, cells ``value [low, high]``."""
    estimators: list[str] = []
    grid: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for row in rows:
        if row.estimator not in estimators:
            estimators.append(row.estimator)
        grid[(row.target, row.metric)][row.estimator] = row.estimate.fmt(4 if row.metric == "mae" else 3)
    lines = ["| target | metric | " + " | ".join(estimators) + " |", "|---|---|" + "---|" * len(estimators)]
    for (target, metric), cells in grid.items():
        lines.append(f"| {target} | {metric} | " + " | ".join(cells.get(e, "") for e in estimators) + " |")
    return "\n".join(lines)


BASELINES = ("majority", "persistence", "random")


def _verdict(rows: Sequence[Row], target: str, metric: str) -> str:
    """``model vs best baseline (name): better|worse|tie`` — judged by the CI of the paired delta."""
    cells = {r.estimator: r.estimate for r in rows if r.target == target and r.metric == metric}
    if "model" not in cells:
        return ""
    lower_better = metric == "mae"
    candidates = [b for b in BASELINES if b in cells]
    if not candidates:
        return ""
    best = (min if lower_better else max)(candidates, key=lambda b: cells[b].value)
    delta = cells.get(f"delta vs {best}")
    verdict = "tie"
    if delta is not None and (delta.high < 0 if lower_better else delta.low > 0):
        verdict = "**better**"
    elif delta is not None and (delta.low > 0 if lower_better else delta.high < 0):
        verdict = "worse"
    digits = 4 if lower_better else 3
    return f"{cells['model'].value:.{digits}f} vs {cells[best].value:.{digits}f} ({best}): {verdict}"


def summary_table(folds: Sequence[FoldReport]) -> str:
    """One line per (target, metric), one column per fold: the model against the best baseline of that fold."""
    keys = list(dict.fromkeys((r.target, r.metric) for f in folds for r in f.rows if r.metric in ("accuracy", "mae")))
    names = [f"fold {f.number}{' (holdout)' if f.holdout else ''}" for f in folds]
    lines = ["| target | metric | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(folds)]
    for target, metric in keys:
        lines.append(f"| {target} | {metric} | " + " | ".join(_verdict(f.rows, target, metric) for f in folds) + " |")
    return "\n".join(lines)


def _plot_accuracy(rows: Sequence[Row], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    acc = [r for r in rows if r.metric == "accuracy" and not r.estimator.startswith("delta")]
    targets = list(dict.fromkeys(r.target for r in acc))
    estimators = list(dict.fromkeys(r.estimator for r in acc))
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(targets)), 3.6))
    width = 0.8 / max(len(estimators), 1)
    for k, est in enumerate(estimators):
        sel = {r.target: r.estimate for r in acc if r.estimator == est}
        x = np.arange(len(targets)) + k * width
        vals = np.array([sel[t].value if t in sel else np.nan for t in targets])
        err = np.array([[sel[t].value - sel[t].low, sel[t].high - sel[t].value] if t in sel else [0, 0] for t in targets]).T
        ax.bar(x, vals, width, yerr=err, capsize=2, label=est)
    ax.set_xticks(np.arange(len(targets)) + width * (len(estimators) - 1) / 2, targets)
    ax.set_ylabel("accuracy (95% CI)")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=len(estimators))
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _plot_history(folds: Sequence[FoldReport], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.4))
    for fold in folds:
        epochs = [h["epoch"] for h in fold.history]
        ax.plot(epochs, [h["train_loss"] for h in fold.history], "-", label=f"fold {fold.number} train")
        ax.plot(epochs, [h["val_loss"] for h in fold.history], "--", label=f"fold {fold.number} val")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _plot_equity(policy: dict[str, np.ndarray], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.4))
    for name, r in policy.items():
        ax.plot(np.exp(np.cumsum(r)), label=name)
    ax.set_ylabel("equity after fees (start 1)")
    ax.set_xlabel("step (out-of-sample)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write_report(out_dir: Path, title: str, meta: dict[str, Any], folds: Sequence[FoldReport], pooled: Sequence[Row]) -> Path:
    """Write ``report.md`` + PNGs into ``out_dir``; returns the Markdown path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"# {title}", ""]
    lines += [f"- **{k}**: {v}" for k, v in meta.items()]
    lines += [
        "",
        "Cells: value [95% bootstrap CI] (moving blocks). `delta vs X` = model − baseline on the same resamples:",
        "an interval that excludes 0 is a difference the test period supports. Accuracy/F1: higher is better; MAE: lower.",
        "",
    ]
    tested = [f for f in folds if not f.holdout]
    if folds and not folds[0].policy:
        lines += [
            "## Summary: model vs the best baseline of each fold",
            "",
            "better / worse: the 95 % CI of the paired difference excludes 0; tie otherwise.",
            "",
            summary_table(folds),
            "",
        ]
    if pooled:
        lines += ["## All non-holdout folds pooled", "", rows_table(pooled), "", "![accuracy](accuracy_pooled.png)", ""]
        _plot_accuracy(pooled, out_dir / "accuracy_pooled.png", "pooled out-of-sample folds")
    for fold in folds:
        kind = "holdout (last fold, never used for any choice)" if fold.holdout else "out-of-sample"
        lines += [
            f"## Fold {fold.number} — {kind}",
            "",
            f"train {_iso(fold.train_span[0])} → {_iso(fold.train_span[1])} ({fold.n_train} samples); "
            f"test {_iso(fold.test_span[0])} → {_iso(fold.test_span[1])} ({fold.n_test} samples)",
            "",
            rows_table(fold.rows),
            "",
        ]
        if any(r.metric == "accuracy" for r in fold.rows):
            name = f"accuracy_fold{fold.number}.png"
            _plot_accuracy(fold.rows, out_dir / name, f"fold {fold.number} ({kind.split(' ')[0]})")
            lines += [f"![accuracy]({name})", ""]
        if fold.policy:
            name = f"equity_fold{fold.number}.png"
            _plot_equity(fold.policy, out_dir / name)
            lines += [f"![equity]({name})", ""]
    if any(f.history for f in tested + [f for f in folds if f.holdout]):
        _plot_history(folds, out_dir / "training_loss.png")
        lines += ["## Training curves", "", "![loss](training_loss.png)", ""]
    path = out_dir / "report.md"
    path.write_text("\n".join(lines))
    return path
