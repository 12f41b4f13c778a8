"""Evaluation report: Markdown tables of model vs baselines (with bootstrap CIs) and PNG plots.

Multiplicity. The summary compares the model with the best baseline in every (fold, target, metric) cell; read
together, dozens of unadjusted 95 % intervals find "better" cells by chance. Each cell's verdict therefore uses the
Holm-adjusted p-value of its paired difference (``pivotal.core.stats.holm_adjust``; p from the block bootstrap,
``training.evaluation.bootstrap_p_value``): one family for the non-holdout folds, a separate one for the holdout fold
(the confirmatory test). The pre-registered primary comparison (``evaluation.json``, written before the holdout is
scored) is reported on its own line, uncorrected: it is a single test named in advance.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from pivotal.core.stats import holm_adjust
from pivotal.training.evaluation import Estimate, Row

ALPHA = 0.05


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


@dataclass(frozen=True)
class Cell:
    """One summary cell: the model against the best baseline of one fold on one (target, metric)."""

    fold: int
    holdout: bool
    target: str
    metric: str
    model: float
    baseline: str
    baseline_value: float
    delta: Estimate | None  # model − baseline on the same resamples
    p_holm: float = float("nan")

    @property
    def lower_better(self) -> bool:
        return self.metric == "mae"

    def verdict(self, alpha: float = ALPHA) -> str:
        """better / worse when the Holm-adjusted p is below ``alpha`` (in the direction of the difference), else tie."""
        if self.delta is None or not self.p_holm < alpha:
            return "tie"
        improved = self.delta.value < 0 if self.lower_better else self.delta.value > 0
        return "**better**" if improved else "worse"

    def fmt(self) -> str:
        digits = 4 if self.lower_better else 3
        p = f", p_Holm {self.p_holm:.3f}" if self.delta is not None and np.isfinite(self.p_holm) else ""
        return f"{self.model:.{digits}f} vs {self.baseline_value:.{digits}f} ({self.baseline}): {self.verdict()}{p}"


def _cell(fold: FoldReport, target: str, metric: str) -> Cell | None:
    cells = {r.estimator: r.estimate for r in fold.rows if r.target == target and r.metric == metric}
    candidates = [b for b in BASELINES if b in cells]
    if "model" not in cells or not candidates:
        return None
    lower_better = metric == "mae"
    best = (min if lower_better else max)(candidates, key=lambda b: cells[b].value)
    delta = cells.get(f"delta vs {best}")
    return Cell(fold.number, fold.holdout, target, metric, cells["model"].value, best, cells[best].value, delta)


SUMMARY_METRICS = ("accuracy", "mae")


def summary_cells(folds: Sequence[FoldReport]) -> list[Cell]:
    """Every summary cell with its Holm-adjusted p: one family over the non-holdout folds, one over the holdout."""
    keys = list(dict.fromkeys((r.target, r.metric) for f in folds for r in f.rows if r.metric in SUMMARY_METRICS))
    cells = [c for f in folds for key in keys if (c := _cell(f, *key)) is not None]
    out: list[Cell] = []
    for family in (False, True):
        members = [c for c in cells if c.holdout is family]
        raw = np.array([c.delta.p_value if c.delta is not None else np.nan for c in members], np.float64)
        adjusted = holm_adjust(raw) if len(raw) else raw
        out += [replace(c, p_holm=float(p)) for c, p in zip(members, adjusted, strict=True)]
    order = {(c.fold, c.target, c.metric): i for i, c in enumerate(cells)}
    return sorted(out, key=lambda c: order[(c.fold, c.target, c.metric)])


def summary_table(folds: Sequence[FoldReport]) -> str:
    """One line per (target, metric), one column per fold: the model against the best baseline of that fold, with the
    Holm-adjusted p of the paired difference and the verdict it gives (module doc)."""
    cells = {(c.fold, c.target, c.metric): c for c in summary_cells(folds)}
    keys = list(dict.fromkeys((r.target, r.metric) for f in folds for r in f.rows if r.metric in SUMMARY_METRICS))
    names = [f"fold {f.number}{' (holdout)' if f.holdout else ''}" for f in folds]
    lines = ["| target | metric | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(folds)]
    for target, metric in keys:
        row = [cells[(f.number, target, metric)].fmt() if (f.number, target, metric) in cells else "" for f in folds]
        lines.append(f"| {target} | {metric} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def significance_counts(folds: Sequence[FoldReport], alpha: float = ALPHA) -> dict[str, tuple[int, int, int]]:
    """Per family ("folds", "holdout"): (cells, significant before correction, significant after Holm)."""
    out: dict[str, tuple[int, int, int]] = {}
    for name, family in (("folds", False), ("holdout", True)):
        members = [c for c in summary_cells(folds) if c.holdout is family and c.delta is not None]
        raw = sum(1 for c in members if c.delta is not None and c.delta.p_value < alpha)
        out[name] = (len(members), raw, sum(1 for c in members if c.p_holm < alpha))
    return out


def primary_line(folds: Sequence[FoldReport], primary: dict[str, Any] | None) -> str:
    """The pre-registered primary comparison on the holdout fold, as named in ``evaluation.json``."""
    if not primary:
        return ""
    holdout = next((f for f in folds if f.holdout), None)
    target, metric, baseline = primary["target"], primary["metric"], primary["baseline"]
    name = f"{target} {metric} vs {baseline} on the holdout fold"
    if holdout is None:
        return f"- **primary ({name})**: no holdout fold"
    cells = {r.estimator: r.estimate for r in holdout.rows if r.target == target and r.metric == metric}
    delta = cells.get(f"delta vs {baseline}")
    if delta is None or "model" not in cells:
        return f"- **primary ({name})**: not evaluated"
    lower_better = metric == "mae"
    alpha = float(primary.get("alpha", ALPHA))
    significant = delta.p_value < alpha
    improved = delta.value < 0 if lower_better else delta.value > 0
    verdict = ("**better**" if improved else "worse") if significant else "no significant difference"
    return (
        f"- **primary ({name}, pre-registered, alpha {alpha})**: model {cells['model'].value:.4f}, "
        f"delta {delta.fmt(4)}, p {delta.p_value:.3f}: {verdict}"
    )


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


def write_report(
    out_dir: Path,
    title: str,
    meta: dict[str, Any],
    folds: Sequence[FoldReport],
    pooled: Sequence[Row],
    primary: dict[str, Any] | None = None,
) -> Path:
    """Write ``report.md`` + PNGs into ``out_dir``; returns the Markdown path. ``primary``: the pre-registered primary
    comparison (``evaluation.json``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"# {title}", ""]
    lines += [f"- **{k}**: {v}" for k, v in meta.items()]
    if primary:
        lines.append(primary_line(folds, primary))
    lines += [
        "",
        "Cells: value [95% bootstrap CI] (moving blocks). `delta vs X` = model − baseline on the same resamples. Single",
        "intervals are not corrected for multiplicity: read the summary's Holm-adjusted verdicts, not how many intervals",
        "exclude 0. Accuracy/F1: higher is better; MAE: lower.",
        "",
    ]
    tested = [f for f in folds if not f.holdout]
    if folds and not folds[0].policy:
        counts = significance_counts(folds)
        lines += [
            "## Summary: model vs the best baseline of each fold",
            "",
            f"better / worse: the Holm-adjusted p of the paired difference (block bootstrap) is below {ALPHA}; tie "
            "otherwise. Families: the cells of the non-holdout folds; the cells of the holdout fold. Significant cells "
            + "; ".join(f"{name}: {raw} of {n} unadjusted, {holm} after Holm" for name, (n, raw, holm) in counts.items())
            + ".",
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
