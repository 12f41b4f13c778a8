"""`pivotal optimize`: walk-forward parameter search with significance; stores trained configurations."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from pivotal.cli.common import DataDirOption, StoreOption, console, fail, settings_from

if TYPE_CHECKING:
    from pivotal.optimize.configs import TrainedConfiguration
    from pivotal.optimize.pipeline import Market

    Row = tuple[Market, TrainedConfiguration | None]

# Copies of the names in pivotal.optimize.service.STRATEGIES and pivotal.optimize.bayesian.SAMPLERS (those modules
# load optuna, numba and scipy) so `--help` stays fast; tests/cli/test_startup.py asserts they are equal.
STRATEGIES = ("liquidity_sweep",)
SAMPLERS = ("tpe", "random", "cmaes", "qmc", "nsga2", "gp")


def optimize(
    strategy: str = typer.Option("liquidity_sweep", "--strategy", help=f"Strategy: {', '.join(sorted(STRATEGIES))}."),
    exchange: str = typer.Option("binance", "--exchange", help="Exchange of the stored series (ccxt id)."),
    symbols: str = typer.Option("BTC/USDT", "--symbols", help="Comma-separated symbols, e.g. BTC/USDT,ETH/USDT."),
    timeframes: str = typer.Option("1h", "--timeframes", help="Comma-separated timeframes, e.g. 1h,4h."),
    method: str = typer.Option("random", "--method", help="grid (all 201,600 LS3 points) | random | bayesian."),
    samples: int = typer.Option(1000, "--samples", help="random: points drawn; bayesian: trials (per train window)."),
    sampler: str = typer.Option("tpe", "--sampler", help=f"Bayesian sampler: {', '.join(sorted(SAMPLERS))}."),
    walk_forward: str = typer.Option(
        "90/7/30", "--walk-forward", help="Days as TRAIN/GAP/TEST or TRAIN/GAP/TEST/STEP, or 'none'."
    ),
    anchored: bool = typer.Option(False, "--anchored", help="Anchored walk-forward (train always from the first bar)."),
    min_trades: int = typer.Option(30, "--min-trades", help="Configurations with fewer trades in a window score -inf."),
    metric: str = typer.Option("NET_PROFIT", "--metric", help="NET_PROFIT | SHARPE | PROFIT_FACTOR | WIN_RATE | MAX_DRAWDOWN."),
    job_id: str | None = typer.Option(None, "--job-id", help="Job id; run again with the same id to resume."),
    ray: str | None = typer.Option(None, "--ray", help="Ray address ('auto', 'ray://host:10001', or 'local')."),
    workers: int = typer.Option(1, "--workers", help="Local worker processes (ignored with --ray)."),
    seed: int = typer.Option(0, "--seed", help="Seed of random draws, samplers and bootstrap."),
    input_file: Path | None = typer.Option(None, "--input", help="Parquet/CSV candle file instead of a stored series."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar with ETA."),
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Optimise a strategy per market with walk-forward validation; print a leaderboard with significance."""
    from pivotal.data.backends import open_store
    from pivotal.core.timeframes import parse_timeframes
    from pivotal.optimize.parallel import make_runner
    from pivotal.optimize.pipeline import OptimizeSpec
    from pivotal.optimize.service import OptimizationJobs, markets_of
    from pivotal.optimize.study import ProgressSink

    try:
        spec = OptimizeSpec(
            exchange=exchange,
            symbols=tuple(s.strip() for s in symbols.split(",") if s.strip()),
            timeframes=tuple(parse_timeframes(timeframes)),
            strategy=strategy,
            method=method,
            samples=samples,
            sampler=sampler,
            walk_forward=None if walk_forward.lower() == "none" else walk_forward,
            anchored=anchored,
            min_trades=min_trades,
            metric=metric.upper(),
            seed=seed,
            input=str(input_file.resolve()) if input_file else None,
        )
    except ValueError as exc:
        raise fail(escape(str(exc))) from None
    if strategy not in STRATEGIES:
        raise fail(f"unknown strategy {strategy!r}; available: {', '.join(sorted(STRATEGIES))}")
    if method == "bayesian" and sampler not in SAMPLERS:
        raise fail(f"unknown sampler {sampler!r}; choose one of {', '.join(sorted(SAMPLERS))}")
    if input_file and not input_file.is_file():
        raise fail(f"--input {escape(str(input_file))}: no such file")
    if input_file and len(spec.symbols) * len(spec.timeframes) != 1:
        raise fail("--input holds one series: give exactly one --symbols and one --timeframes to label it")
    settings = settings_from(data_dir, store)
    market_store = open_store(settings)
    runner = make_runner(workers, ray)
    try:
        jobs = OptimizationJobs(settings, market_store, runner, ProgressSink(progress))
        try:
            job = jobs.service.start(spec.to_dict(), job_id)
            console.print(f"job [bold]{job.id}[/] ({job.status.value}); resume with --job-id {job.id}")
            configs = jobs.service.run(job.id)
        except (ValueError, KeyError) as exc:
            raise fail(escape(str(exc))) from None
        _print_leaderboard([(m, next((c for c in configs if c.id == f"{job.id}:{m.label}"), None)) for m in markets_of(spec)])
    finally:
        runner.close()
        market_store.close()
    _print_notes()


def _fmt(value: object, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _ranked(rows: list[Row]) -> list[Row]:
    def key(row: Row) -> float:
        value = row[1].oos_metrics.get("net_profit_pct") if row[1] else None
        return -value if isinstance(value, int | float) and math.isfinite(value) else math.inf

    return sorted(rows, key=key)


def _print_leaderboard(rows: list[Row]) -> None:
    """Two narrow tables (performance, significance) so they fit an 80-column terminal."""
    ranked = _ranked(rows)
    perf = Table(title="Leaderboard: performance (OOS = stitched walk-forward test windows)")
    perf.add_column("market", no_wrap=True)
    for name in ("IS net %", "IS trades", "OOS net %", "OOS trades", "Sharpe/yr"):
        perf.add_column(name)
    perf.add_column("stage", no_wrap=True, min_width=10)
    sig = Table("market", "p-value", "z", "DSR", "PBO", "OOS/IS", "overfit", title="Leaderboard: significance")
    for market, c in ranked:
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
    for _, c in ranked:
        if c is not None:
            console.print(f"[bold]{c.id}[/]: {c.parameters}", highlight=False)


def _print_notes() -> None:
    console.print(
        "IS = the latest train window's winner; DSR deflates its Sharpe by the trials searched; PBO by CSCV over "
        "the searched points; p-value/z: bootstrap of the stitched out-of-sample trade returns."
    )
