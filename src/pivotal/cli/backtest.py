"""`pivotal backtest`: argument parsing and printing over ``pivotal.services.backtest`` (one configuration of a
registered strategy on a stored series or a candle file, through the event engine)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from pivotal.cli.common import (
    DataDirOption,
    JsonOption,
    StoreOption,
    console,
    emit_json,
    fail,
    out_dir,
    parse_time,
    settings_from,
)

# The engine and strategies load numba, pandas and scipy: imported by the command, so `--help` stays fast.
if TYPE_CHECKING:
    from pivotal.data.candles import Candles
    from pivotal.services.backtest import BacktestRun

DEFAULT_CAPITAL = 10_000.0  # equals services.backtest.DEFAULT_CAPITAL (asserted in tests/cli/test_startup.py)
MS_PER_YEAR = 365 * 86_400_000

# Metrics that are fractions, printed as percent; net_profit_pct is already in percent.
_PERCENT = {"win_rate", "max_drawdown", "max_drawdown_mtm", "exposure", "cagr", "avg_win", "avg_loss", "expectancy"}
# How each metric is printed: label (with its unit) and meaning; the table stays within 80 columns.
_LABELS = {
    "net_profit_pct": "net profit, trades compounded (%)",
    "trades": "trades",
    "win_rate": "win rate (%)",
    "profit_factor": "profit factor (gross win / loss)",
    "max_drawdown": "max drawdown, trade to trade (%)",
    "sharpe": "Sharpe per trade (not annualised)",
    "avg_win": "average win (%)",
    "avg_loss": "average loss (%)",
    "expectancy": "expectancy per trade (%)",
    "sharpe_annual": "Sharpe, annualised (365 d)",
    "sortino_annual": "Sortino, annualised (365 d)",
    "cagr": "CAGR (%)",
    "calmar": "Calmar (CAGR / mark-to-market DD)",
    "max_drawdown_mtm": "max drawdown, mark-to-market (%)",
    "exposure": "time in the market (%)",
}
# A copy of the registry's names (pivotal.strategies loads numba) so `--help` stays fast and lists them;
# tests/cli/test_startup.py asserts it equals pivotal.strategies.registry.strategy_names().
STRATEGIES = ("liquidity_sweep", "model", "sma_cross")


def backtest(
    strategy: str = typer.Option(
        "liquidity_sweep", "--strategy", help=f"Registered strategy: {', '.join(STRATEGIES)} (or one you registered)."
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
    capital: float = typer.Option(DEFAULT_CAPITAL, "--capital", help="Starting capital in quote currency (for the printout)."),
    fee: float = typer.Option(0.001, "--fee", help="Fee per side, fraction of notional (0.001 = 0.1 %)."),
    slippage: float = typer.Option(0.0005, "--slippage", help="Adverse slippage per side, fraction of price."),
    detail_timeframe: str | None = typer.Option(
        None, "--detail-timeframe", help="Stored series: finer timeframe (e.g. 1m) to settle which of stop/target hit first."
    ),
    detail_input: Path | None = typer.Option(
        None, "--detail-input", help="With --input: finer-timeframe bars of the same market."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Folder for summary.json, trades.csv, equity.png and equity.html (e.g. ./pivotal-out/backtest).",
    ),
    trades_out: Path | None = typer.Option(None, "--trades-out", help="Write the trade list (.csv or .json)."),
    equity_png: Path | None = typer.Option(None, "--equity-png", help="Write a price + equity PNG."),
    as_json: bool = JsonOption,
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Backtest one configuration (signals at bar close, fills at the next open, fees and slippage per side) beside
    buy-and-hold of the same bars."""
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
            bars, strategy, values, fee_rate=fee, slippage=slippage, detail=detail, source=source.describe(), capital=capital
        )
    except PivotalError as exc:
        raise fail(str(exc)) from None
    written: list[Path] = []
    if out is not None:
        written += write_outputs(run, bars, out_dir("backtest", out))
    if trades_out is not None:
        run.result.trades.write(trades_out)
        written.append(trades_out)
    if equity_png is not None:
        from pivotal.cli.backtest_chart import render_png

        render_png(run, bars, equity_png)
        written.append(equity_png)
    if as_json:
        emit_json({**run.report(), "written": [str(p) for p in written]})
        return
    print_run(run)
    for path in written:
        console.print(f"wrote {path}", highlight=False)
    if out is not None:
        console.print(f"output folder: {out.resolve()} (open equity.html in a browser)", highlight=False, soft_wrap=True)


def write_outputs(run: BacktestRun, bars: Candles, folder: Path) -> list[Path]:
    """summary.json, trades.csv, equity.png and equity.html (plotly.js beside it) in ``folder``."""
    from pivotal.cli.backtest_chart import render_html, render_png

    summary, trades, png, html = (folder / n for n in ("summary.json", "trades.csv", "equity.png", "equity.html"))
    summary.write_text(json.dumps(run.report(), indent=2, allow_nan=False) + "\n")
    run.result.trades.write(trades)
    render_png(run, bars, png)
    render_html(run, bars, html)
    return [summary, trades, png, html]


def _money(value: float) -> str:
    return f"{value:,.2f}"


def _pct(value: float) -> str:
    return f"{value:+,.2f} %"


def print_run(run: BacktestRun) -> None:
    """The verdict first (money, dates, benchmark), then every metric with its unit; fits 80 columns."""
    report = run.report()
    params = ", ".join(f"{k}={v}" for k, v in run.params.items())
    console.print(f"[bold]{run.strategy}[/] on {run.source}: {run.bars} bars", highlight=False)
    if params:
        console.print(f"parameters: {params}", highlight=False)
    years = (run.end_ts - run.first_ts) / MS_PER_YEAR
    console.print(
        f"period: {report['start'][:16].replace('T', ' ')} → {report['end'][:16].replace('T', ' ')} UTC ({years:.1f} years)",
        highlight=False,
    )
    console.print(f"costs: fee {run.config.fee_rate * 100:.3g} % + slippage {run.config.slippage * 100:.3g} % per side")
    bh = run.buy_and_hold
    table = Table("", title="Result (mark-to-market at the last close)")
    table.add_column("strategy", justify="right")
    table.add_column("buy and hold", justify="right")
    table.add_row("start capital", _money(run.capital), _money(run.capital))
    hold_end = run.capital * (1 + bh.net_profit_pct / 100) if bh else float("nan")
    table.add_row("end capital", _money(run.end_capital), _money(hold_end))
    table.add_row("net profit", _pct(run.net_profit_pct), _pct(bh.net_profit_pct) if bh else "-")
    mdd = run.result.metrics.get("max_drawdown_mtm", 0.0)
    table.add_row("max drawdown", f"{mdd * 100:.2f} %", f"{bh.max_drawdown * 100:.2f} %" if bh else "-")
    console.print(table)
    console.print(_verdict(run), highlight=False)
    metrics = Table("metric", title="Metrics")
    metrics.add_column("value", justify="right")
    for name, value in run.result.metrics.items():
        metrics.add_row(_LABELS.get(name, name), _metric_text(name, value))
    metrics.add_row("entries refused by the risk gate", str(run.result.blocked_entries))
    console.print(metrics)


def _metric_text(name: str, value: float) -> str:
    if name in _PERCENT:
        return f"{value * 100:.2f}"
    if name == "net_profit_pct":
        return f"{value:.2f}"
    if isinstance(value, float) and not math.isfinite(value):
        return "inf (no losing trade)" if value > 0 else str(value)
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _verdict(run: BacktestRun) -> str:
    """One plain sentence: did it make money, and did it beat holding."""
    net = run.net_profit_pct
    made = f"made {_pct(net)}" if net > 0 else f"LOST money: {_pct(net)}" if net < 0 else "broke even"
    text = f"The strategy {made} ({_money(run.capital)} → {_money(run.end_capital)})"
    if run.buy_and_hold is not None:
        diff = net - run.buy_and_hold.net_profit_pct
        text += f"; it {'beat' if diff > 0 else 'trailed'} buy-and-hold by {abs(diff):,.2f} percentage points"
    if int(run.result.metrics.get("trades", 0)) == 0:
        text += "; it made no trade"
    return text + "."
