"""`pivotal optimize`: walk-forward parameter search with significance; stores trained configurations.

Argument parsing and printing only; the use case is ``pivotal.services.optimize``."""

from __future__ import annotations

import math
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from pivotal.cli.common import DataDirOption, StoreOption, console, fail, parse_time, settings_from

if TYPE_CHECKING:
    from pivotal.optimize.study import ProgressSink
    from pivotal.services.optimize import LeaderboardRow

# Copies of library lists (their modules load optuna/numba) so `--help` stays fast and lists them;
# tests/cli/test_startup.py asserts they are equal. Strategy names come from the registry when the command runs.
SAMPLERS = ("tpe", "random", "cmaes", "qmc", "nsga2", "gp")  # pivotal.optimize.bayesian.SAMPLERS
METHODS = ("grid", "random", "bayesian")  # pivotal.optimize.pipeline.METHODS
METRICS = ("NET_PROFIT", "SHARPE", "PROFIT_FACTOR", "WIN_RATE", "MAX_DRAWDOWN")  # optimize.objective.ObjectiveMetric

Method = StrEnum("Method", {m: m for m in METHODS})  # type: ignore[misc]
Sampler = StrEnum("Sampler", {s: s for s in SAMPLERS})  # type: ignore[misc]
Metric = StrEnum("Metric", {m: m for m in METRICS})  # type: ignore[misc]


def optimize(
    strategy: str = typer.Option(
        "liquidity_sweep", "--strategy", help="Registered strategy name (liquidity_sweep, sma_cross, ...)."
    ),
    exchange: str = typer.Option("binance", "--exchange", "-e", help="Exchange of the stored series (ccxt id)."),
    symbols: str = typer.Option(
        "BTC/USDT", "--symbols", "--symbol", "-s", help="Symbol, or several comma-separated: BTC/USDT,ETH/USDT."
    ),
    timeframes: str = typer.Option("1h", "--timeframes", "--timeframe", "-t", help="Timeframe, or several: 1h,4h."),
    method: Method = typer.Option("random", "--method", help="grid (all 201,600 LS3 points), random or bayesian."),
    samples: int = typer.Option(1000, "--samples", help="random: points drawn; bayesian: trials (per train window)."),
    sampler: Sampler = typer.Option("tpe", "--sampler", help="Bayesian sampler."),
    walk_forward: str = typer.Option(
        "90/7/30", "--walk-forward", help="Days as TRAIN/GAP/TEST or TRAIN/GAP/TEST/STEP, or 'none'."
    ),
    anchored: bool = typer.Option(False, "--anchored", help="Anchored walk-forward (train always from the first bar)."),
    purge: str | None = typer.Option(
        None,
        "--purge",
        help="Drop train signals this long before each test window (e.g. 60d, 12h; default: the "
        "strategy's maximum hold, exact per bar). Shorter than the maximum hold is refused.",
    ),
    embargo: str = typer.Option(
        "0", "--embargo", help="Drop train samples this long after each earlier test window (e.g. 3d; default 0)."
    ),
    min_trades: int = typer.Option(30, "--min-trades", help="Configurations with fewer trades in a window score -inf."),
    metric: Metric = typer.Option("NET_PROFIT", "--metric", help="What each train window maximises (MAX_DRAWDOWN: minimises)."),
    job_id: str | None = typer.Option(None, "--job-id", help="Job id; run again with the same id to resume."),
    ray: str | None = typer.Option(None, "--ray", help="Ray address ('auto', 'ray://host:10001', or 'local')."),
    workers: int = typer.Option(1, "--workers", help="Local worker processes (ignored with --ray)."),
    seed: int = typer.Option(0, "--seed", help="Seed of random draws, samplers and bootstrap."),
    input_file: Path | None = typer.Option(None, "--input", "-i", help="Parquet/CSV candle file instead of a stored series."),
    start: str | None = typer.Option(None, "--start", help="First bar searched (UTC date/time or epoch ms), inclusive."),
    end: str | None = typer.Option(None, "--end", help="End of the bars searched (UTC date/time or epoch ms), exclusive."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar with ETA."),
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Optimise a strategy per market with walk-forward validation; print a leaderboard with significance."""
    from pivotal.core.errors import PivotalError
    from pivotal.services.optimize import build_spec, run_optimization, start_optimization

    settings = settings_from(data_dir, store)
    try:
        spec = build_spec(
            strategy=strategy, exchange=exchange, symbols=symbols.split(","), timeframes=timeframes.split(","),
            method=method.value, samples=samples, sampler=sampler.value, walk_forward=walk_forward, anchored=anchored,
            purge=purge, embargo=embargo, min_trades=min_trades, metric=metric.value, seed=seed, input_file=input_file,
            start=parse_time(start), end=parse_time(end),
        )  # fmt: skip
        job = start_optimization(settings, spec, job_id)  # checks strategy and markets before creating the job record
        console.print(f"job [bold]{job.id}[/] ({job.status.value}); resume with --job-id {job.id}")
        outcome = run_optimization(settings, job.id, workers=workers, ray=ray, progress=_progress_sink(progress))
    except PivotalError as exc:
        raise fail(escape(str(exc))) from None
    _print_leaderboard(outcome.leaderboard)
    _print_notes()


def _progress_sink(enabled: bool) -> ProgressSink:
    from pivotal.optimize.study import ProgressSink

    return ProgressSink(enabled)


def _fmt(value: object, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _print_leaderboard(rows: list[LeaderboardRow]) -> None:
    """Two narrow tables (performance, significance) so they fit an 80-column terminal; ``rows`` come ranked."""
    perf = Table(title="Leaderboard: performance (OOS = stitched walk-forward test windows)")
    perf.add_column("market", no_wrap=True)
    for name in ("IS net %", "IS trades", "OOS net %", "OOS trades", "Sharpe/yr"):
        perf.add_column(name)
    perf.add_column("stage", no_wrap=True, min_width=10)
    sig = Table("market", "p-value", "z", "DSR", "PBO", "OOS/IS", "overfit", title="Leaderboard: significance")
    for market, c in rows:
        label = f"{market.symbol} {market.timeframe}"
        if c is None:
            perf.add_row(label, "-", "-", "-", "-", "-", "no config reached --min-trades")
            sig.add_row(label, *["-"] * 6)
            continue
        s = c.significance
        perf.add_row(label, _fmt(c.is_metrics.get("net_profit_pct"), 2), _fmt(c.is_metrics.get("trades")),
                     _fmt(c.oos_metrics.get("net_profit_pct"), 2), _fmt(c.sample_size),
                     _fmt(s.get("sharpe_annualised"), 2), c.lifecycle_stage.value)  # fmt: skip
        sig.add_row(label, _fmt(s.get("p_value")), _fmt(s.get("z_score"), 2), _fmt(s.get("dsr")), _fmt(s.get("pbo")),
                    _fmt(s.get("degradation"), 2), _fmt(s.get("overfit")))  # fmt: skip
    console.print(perf)
    console.print(sig)
    for _, c in rows:
        if c is not None:
            console.print(f"[bold]{c.id}[/]: {c.parameters}", highlight=False)


def _print_notes() -> None:
    console.print(
        "IS = the latest train window's winner; DSR deflates its Sharpe by the trials searched; PBO by CSCV over "
        "the searched points; p-value/z: bootstrap of the stitched out-of-sample trade returns."
    )
