"""`pivotal backtest`: one configuration of a strategy on a stored series or a Parquet/CSV file, through the
event-driven engine; prints the metrics and optionally exports the trade list and an equity-curve PNG."""

from __future__ import annotations

from dataclasses import fields
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from pivotal.cli.bars import load_bars
from pivotal.cli.common import DataDirOption, StoreOption, console, fail

# The engine and strategies load numba, pandas and scipy: imported by the command, so `--help` stays fast.
if TYPE_CHECKING:
    from pivotal.backtest.engine import BacktestResult
    from pivotal.backtest.strategy import Strategy
    from pivotal.data.candles import Candles


class StrategyName(StrEnum):
    liquidity_sweep = "liquidity_sweep"
    sma_cross = "sma_cross"


_PERCENT = {"win_rate", "max_drawdown", "max_drawdown_bars", "exposure", "cagr", "avg_win", "avg_loss", "expectancy"}


def backtest(
    strategy: StrategyName = typer.Option(StrategyName.liquidity_sweep, "--strategy", help="Strategy to run."),
    exchange: str | None = typer.Option(None, "--exchange", "-e", help="Stored series: exchange, e.g. binance."),
    symbol: str | None = typer.Option(None, "--symbol", "-s", help="Stored series: symbol, e.g. BTC/USDT."),
    timeframe: str | None = typer.Option(None, "--timeframe", "-t", help="Stored series: timeframe (with --input: override)."),
    input_file: Path | None = typer.Option(
        None, "--input", "-i", help="Parquet/CSV with timestamp|ts, open, high, low, close, volume."
    ),
    start: str | None = typer.Option(None, "--start", help="First bar (UTC date/time or epoch ms), inclusive."),
    end: str | None = typer.Option(None, "--end", help="End (UTC date/time or epoch ms), exclusive."),
    params_file: Path | None = typer.Option(None, "--params", help="JSON object of strategy parameters (flags override it)."),
    pierce_depth: float | None = typer.Option(None, "--pierce-depth", help="LS3: minimum pierce, fraction of the level."),
    rejection_candles: int | None = typer.Option(None, "--rejection-candles", help="LS3: bars from pierce to reclaim."),
    volume_spike_threshold: float | None = typer.Option(None, "--volume-spike-threshold", help="LS3: volume / VMA."),
    reversal_candle_size: float | None = typer.Option(None, "--reversal-candle-size", help="LS3: reclaim range / ATR."),
    key_level_lookback: int | None = typer.Option(None, "--key-level-lookback", help="LS3: max level age in bars."),
    stop_distance: float | None = typer.Option(None, "--stop-distance", help="LS3: stop in ATR."),
    target_multiple: float | None = typer.Option(None, "--target-multiple", help="LS3: target in R."),
    fast: int | None = typer.Option(None, "--fast", help="sma_cross: fast SMA period (default 10)."),
    slow: int | None = typer.Option(None, "--slow", help="sma_cross: slow SMA period (default 30)."),
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
    from pivotal.backtest.engine import BacktestConfig, run_backtest

    bars, source = load_bars(data_dir, store, exchange, symbol, timeframe, input_file, start, end)
    flags = {
        "pierce_depth": pierce_depth,
        "rejection_candles": rejection_candles,
        "volume_spike_threshold": volume_spike_threshold,
        "reversal_candle_size": reversal_candle_size,
        "key_level_lookback": key_level_lookback,
        "stop_distance": stop_distance,
        "target_multiple": target_multiple,
        "fast": fast,
        "slow": slow,
    }
    strat, shown = _strategy(strategy, params_file, {k: v for k, v in flags.items() if v is not None}, fee, slippage)
    if fee < 0 or slippage < 0:
        raise fail("--fee and --slippage must be >= 0")
    detail = _load_detail(data_dir, store, exchange, symbol, detail_timeframe, detail_input, bars)
    try:
        result = run_backtest(bars, strat, BacktestConfig(fee_rate=fee, slippage=slippage), detail=detail)
    except ValueError as exc:
        raise fail(str(exc)) from None
    _print(result, source, len(bars), strategy.value, shown)
    if trades_out is not None:
        try:
            result.trades.write(trades_out)
        except ValueError as exc:
            raise fail(str(exc)) from None
        console.print(f"trades written to {trades_out}")
    if equity_png is not None:
        _equity_png(result, equity_png, f"{strategy.value} on {source}")
        console.print(f"equity curve written to {equity_png}")


def _load_detail(data_dir: Path | None, store: str | None, exchange: str | None, symbol: str | None,
                 timeframe: str | None, input_file: Path | None, bars: Candles) -> Candles | None:  # fmt: skip
    """Finer bars covering the main series (same time range), or None when not asked for."""
    from pivotal.core.timeframes import TIMEFRAMES

    if timeframe is None and input_file is None:
        return None
    if len(bars) == 0:
        raise fail("no bars to backtest in the requested range")
    if not bars.timeframe or bars.timeframe not in TIMEFRAMES:
        raise fail("detail bars need the main timeframe; pass --timeframe")
    start, end = str(int(bars.ts[0])), str(int(bars.ts[-1]) + TIMEFRAMES[bars.timeframe])
    if input_file is not None:
        return load_bars(data_dir, store, None, None, None, input_file, start, end)[0]
    if exchange is None:
        raise fail("--detail-timeframe needs a stored series (--exchange/--symbol/--timeframe); use --detail-input with --input")
    return load_bars(data_dir, store, exchange, symbol, timeframe, None, start, end)[0]


def _strategy(name: StrategyName, params_file: Path | None, overrides: dict, fee: float, slip: float) -> tuple[Strategy, dict]:
    from pivotal.strategies.liquidity_sweep import LiquiditySweepV3
    from pivotal.strategies.ls3_params import LS3Constants, LS3Params
    from pivotal.strategies.sma_cross import SmaCross, SmaCrossParams

    values: dict = {}
    if params_file is not None:
        try:
            values = (
                LS3Params.from_json_file(params_file).to_dict() if name is StrategyName.liquidity_sweep else _json(params_file)
            )
        except ValueError as exc:
            raise fail(str(exc)) from None
    values.update(overrides)
    try:
        if name is StrategyName.liquidity_sweep:
            foreign = sorted(set(values) - {f.name for f in fields(LS3Params)})
            if foreign:
                raise ValueError(f"options {foreign} do not apply to liquidity_sweep")
            params = LS3Params.from_dict(values)
            return LiquiditySweepV3(params, LS3Constants(fee_rate=fee, slippage=slip)), params.to_dict()
        foreign = sorted(set(values) - {"fast", "slow"})
        if foreign:
            raise ValueError(f"options {foreign} do not apply to sma_cross")
        sma_params = SmaCrossParams(**{k: int(v) for k, v in values.items()})
        return SmaCross(sma_params), {"fast": sma_params.fast, "slow": sma_params.slow}
    except (ValueError, TypeError) as exc:
        raise fail(str(exc)) from None


def _json(path: Path) -> dict:
    import json

    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read parameters ({exc}); expected a JSON object") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of parameters")
    return data


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
