"""`pivotal backtest`: argument parsing and printing over ``pivotal.services.backtest`` (one configuration of a
registered strategy on a stored series or a candle file, through the event engine)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from pivotal.cli.common import DataDirOption, StoreOption, console, fail, parse_time, settings_from

# The engine and strategies load numba, pandas and scipy: imported by the command, so `--help` stays fast.
if TYPE_CHECKING:
    from pivotal.execution.engine import BacktestResult

_PERCENT = {"win_rate", "max_drawdown", "max_drawdown_bars", "exposure", "cagr", "avg_win", "avg_loss", "expectancy"}


def backtest(
    strategy: str = typer.Option(
        "liquidity_sweep", "--strategy", help="Registered strategy name (liquidity_sweep, sma_cross, ...)."
    ),
    exchange: str | None = typer.Option(None, "--exchange", "-e", help="Stored series: exchange, e.g. binance."),
    symbol: str | None = typer.Option(None, "--symbol", "-s", help="Stored series: symbol, e.g. BTC/USDT."),
    timeframe: str | None = typer.Option(None, "--timeframe", "-t", help="Stored series: timeframe (with --input: override)."),
    input_file: Path | None = typer.Option(
        None, "--input", "-i", help="Parquet/CSV with timestamp|ts, open, high, low, close, volume."
    ),
    start: str | None = typer.Option(None, "--start", help="First bar (UTC date/time or epoch ms), inclusive."),
    end: str | None = typer.Option(None, "--end", help="End (UTC date/time or epoch ms), exclusive."),
    params_file: Path | None = typer.Option(None, "--params", help="JSON object of strategy parameters (--param overrides)."),
    param: list[str] = typer.Option([], "--param", "-p", help="Strategy parameter key=value; repeat for several."),
    fee: float = typer.Option(0.001, "--fee", help="Fee per side, fraction of notional."),
    slippage: float = typer.Option(0.0005, "--slippage", help="Adverse slippage per side, fraction of price."),
    detail_timeframe: str | None = typer.Option(
        None, "--detail-timeframe", help="Stored series: finer timeframe (e.g. 1m) to settle which of stop/target hit first."
    ),
    detail_input: Path | None = typer.Option(
        None, "--detail-input", help="With --input: finer-timeframe bars of the same market."
    ),
    trades_out: Path | None = typer.Option(None, "--trades-out", help="Write the trade list (.csv or .json)."),
    equity_png: Path | None = typer.Option(None, "--equity-png", help="Write an equity-curve PNG."),
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Backtest one configuration (signals at bar close, fills at the next open, fees and slippage per side)."""
    from pivotal.core.errors import PivotalError
    from pivotal.services import backtest as service

    if trades_out is not None and trades_out.suffix.lower() not in (".csv", ".json"):
        raise fail(f"{trades_out}: unsupported trade export format {trades_out.suffix!r}; use .csv or .json")
    source = service.CandleSource(input_file, exchange, symbol, timeframe, parse_time(start), parse_time(end))
    settings = None if input_file is not None else settings_from(data_dir, store)
    try:
        values = service.resolve_params(strategy, service.parse_param_pairs(param), params_file)
        bars = service.load_source(source, settings)
        wanted = service.detail_source(bars, source, detail_timeframe, detail_input)
        if wanted is not None and wanted.path is None and settings is None:
            settings = settings_from(data_dir, store)
        detail = None if wanted is None else service.load_source(wanted, settings)
        run = service.run_backtest(
            bars, strategy, values, fee_rate=fee, slippage=slippage, detail=detail, source=source.describe()
        )
    except PivotalError as exc:
        raise fail(str(exc)) from None
    _print(run.result, run.source, run.bars, run.strategy, run.params)
    if trades_out is not None:
        run.result.trades.write(trades_out)
        console.print(f"trades written to {trades_out}")
    if equity_png is not None:
        _equity_png(run.result, equity_png, f"{run.strategy} on {run.source}")
        console.print(f"equity curve written to {equity_png}")


def _print(result: BacktestResult, source: str, bars: int, strategy: str, params: dict) -> None:
    console.print(f"[bold]{strategy}[/] on {source}: {bars} bars; " + ", ".join(f"{k}={v}" for k, v in params.items()))
    table = Table("metric", "value")
    for name, value in result.metrics.items():
        text = f"{value * 100:.2f} %" if name in _PERCENT else f"{value:.4f}" if isinstance(value, float) else str(value)
        table.add_row(name, text)
    table.add_row("entries blocked", str(result.blocked_entries))
    console.print(table)


def _equity_png(result: BacktestResult, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    curve = result.equity
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(pd.to_datetime(curve.ts, unit="ms", utc=True), curve.equity, lw=1)
    ax.set_title(title)
    ax.set_ylabel("equity (start = 1)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
