"""`pivotal run`: argument parsing and printing over ``pivotal.runtime.config`` (the TOML run configuration, flags
override it), ``pivotal.services.run`` (the live-trading gate, validation, bars) and ``pivotal.runtime.runner`` (the
replay, or the live feed for paper/testnet/live, through a trading node), with the terminal status view of
``pivotal.runtime.status``. Live trading refused exits 2 with a plain message."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer

from pivotal.cli.backtest import STRATEGIES  # one list of the built-in names (start-up: no registry import)
from pivotal.cli.common import (
    DataDirOption,
    JsonOption,
    StoreOption,
    console,
    emit_json,
    err_console,
    fail,
    out_dir,
    settings_from,
)

# Same list as services.run.MODES (asserted in tests/runtime/test_cli_run.py); the services module is not imported
# at start-up so `--help` stays fast.
MODES = ("backtest", "replay", "paper", "testnet", "live")


def run(
    config_file: Path | None = typer.Option(
        None, "--config", "-c", help="Run configuration (TOML; docs/examples/run.toml); flags override its keys."
    ),
    mode: str | None = typer.Option(
        None, "--mode", help=f"Trading mode: {', '.join(MODES)} (default: replay; paper is the default for live data)."
    ),
    strategy: str | None = typer.Option(
        None,
        "--strategy",
        help=f"Registered strategy: {', '.join(STRATEGIES)} (or one you registered) (default: liquidity_sweep).",
    ),
    models: str | None = typer.Option(
        None, "--models", help="Strategy model: checkpoint(s) to trade, NAME[,NAME...] (NAME = its best, or NAME/ID)."
    ),
    exchange: str | None = typer.Option(None, "--exchange", "-e", help="Stored series: exchange, e.g. binance."),
    symbol: str | None = typer.Option(
        None, "--symbol", "-s", help="Stored series: symbol(s), e.g. BTC/USDT or BTC/USDT,ETH/USDT (one portfolio)."
    ),
    timeframe: str | None = typer.Option(
        None, "--timeframe", "-t", help="Stored series: timeframe, or one per symbol (with --input: override)."
    ),
    input_file: Path | None = typer.Option(None, "--input", "-i", help="Candle file instead of a stored series."),
    start: str | None = typer.Option(None, "--start", help="First bar (UTC date/time or epoch ms), inclusive."),
    end: str | None = typer.Option(None, "--end", help="End (UTC date/time or epoch ms), exclusive."),
    speed: float | None = typer.Option(
        None, "--speed", help="Replay pace: 0 = as fast as possible (default), or 0.1 to 100,000 times the original timing."
    ),
    params_file: Path | None = typer.Option(None, "--params", help="JSON object of strategy parameters (--param overrides)."),
    param: list[str] = typer.Option([], "--param", "-p", help="Strategy parameter key=value; repeat for several."),
    capital: float | None = typer.Option(None, "--capital", help="Starting capital in quote currency (default: 10000)."),
    fee: float | None = typer.Option(None, "--fee", help="Fee per side, fraction of notional (default: 0.001 = 0.1 %)."),
    slippage: float | None = typer.Option(
        None, "--slippage", help="Adverse slippage per side, fraction of price (default: 0.0005)."
    ),
    journal: Path | None = typer.Option(
        None, "--journal", help="Write-ahead journal file (JSON lines); an existing one resumes its run after a crash."
    ),
    trades_out: Path | None = typer.Option(None, "--trades-out", help="Write the trade list (.csv or .json), as backtest."),
    out: Path | None = typer.Option(
        None, "--out", help="Folder for summary.json, trades.csv and the charts (as pivotal backtest --out)."
    ),
    status: bool | None = typer.Option(
        None, "--status/--no-status", help="Live status view in the terminal (default: on a terminal; else a final summary)."
    ),
    yes: bool = typer.Option(False, "--yes", help="Live mode: confirm without typing the exchange name."),
    exchange_url: str | None = typer.Option(
        None, "--exchange-url", help="Paper/testnet: for a local test exchange, its base URL (http://127.0.0.1:PORT)."
    ),
    live_training: bool = typer.Option(
        False, "--live-training",
        help="Models (replay/paper/testnet/live): train on confirmed pivots as the run plays, hot-swap promoted versions.",
    ),
    adopt_foreign_orders: bool = typer.Option(
        False, "--adopt-foreign-orders", help="Testnet/live: start although the account has open orders not placed by this run."
    ),
    as_json: bool = JsonOption,
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Run a strategy, or trained models through the orchestrator (strategy model), through the event engine as a
    trading node on one or several symbols: replay stored bars as a live feed (the same trades as `pivotal backtest`
    on the same bars), or trade the exchange's live feed (--mode paper: simulated fills; testnet: orders on the
    exchange), with an optional crash-safe journal and, with a risk table in the run configuration (--config), under
    the risk engine."""
    from pivotal.core.errors import PivotalError
    from pivotal.services import backtest as bt
    from pivotal.services import run as service

    overrides: dict[str, Any] = {
        "mode": mode, "strategy": strategy, "exchange": exchange, "symbols": _listed(symbol),
        "timeframes": _listed(timeframe), "input": input_file, "start": start, "end": end,
        "speed": speed, "params_file": params_file, "capital": capital, "venue.fee": fee, "venue.slippage": slippage,
        "journal": journal, "trades_out": trades_out, "status": status, "venue.rest_url": exchange_url, "out": out,
        "venue.adopt_foreign_orders": adopt_foreign_orders or None,  # absent: the file's key (default false)
        "live_training": live_training or None,
        "models": None if models is None else [{"name": n} for n in _listed(models) or []],
    }  # fmt: skip
    try:
        from pivotal.runtime.config import load_run_config

        pairs = bt.parse_param_pairs(param)
        overrides["params"] = pairs or None
        cfg = load_run_config(config_file, overrides)
    except PivotalError as exc:
        raise fail(str(exc)) from None
    if cfg.mode == "live":
        _live_gate(cfg, yes, service)
    try:
        service.check_mode(cfg.mode)
    except service.ModeNotBuilt as exc:
        raise fail(str(exc), code=2) from None
    live_data = cfg.mode in service.LIVE_DATA
    stored = cfg.input is None and not live_data
    settings = settings_from(data_dir, store) if stored or cfg.models else None  # checkpoints live in the data dir
    show = (cfg.status if cfg.status is not None else console.is_terminal) and not as_json
    view = None
    try:
        from pivotal.runtime.runner import execute

        prepared = service.prepare(cfg.request(), settings)
        if show:
            from pivotal.runtime.status import StatusView

            title = f"{cfg.mode} {cfg.strategy} {' '.join(c.symbol for c in prepared.markets)}"
            view = StatusView(console, title=title, capital=cfg.capital)
            outcome = execute(prepared, observer=view.observe, on_start=view.attach)
        else:
            outcome = execute(prepared)
    except PivotalError as exc:
        raise fail(str(exc)) from None
    finally:
        if view is not None:
            view.close()
    written: list[Path] = []
    if cfg.out is not None:
        written += _write_out(outcome, prepared, out_dir("run", cfg.out))
    if cfg.trades_out is not None:
        outcome.write_trades(cfg.trades_out)
        written.append(cfg.trades_out)
    snap = outcome.snapshot
    extra = {"mode": outcome.mode, "events": outcome.events, "resumed_from": outcome.resumed_from,
             "journal": None if outcome.journal is None else str(outcome.journal),
             "audit": None if outcome.audit is None else str(outcome.audit),
             "status": None if snap is None else asdict(snap), "sent": outcome.sent,
             "symbols": outcome.symbol_summary(), "live_training": outcome.learning}  # fmt: skip
    if as_json:
        emit_json({**outcome.run.report(), **extra, "written": [str(p) for p in written]})
        return
    from pivotal.cli.backtest import print_run

    if outcome.mode == "replay":
        note = f" (resumed after the journal's last event {outcome.resumed_from})" if outcome.resumed_from is not None else ""
        console.print(f"replay: {outcome.events} events at speed {cfg.speed:g}{note}", highlight=False)
    elif outcome.mode in service.LIVE_DATA:
        note = f", {outcome.sent} orders sent to the exchange" if outcome.sent is not None else ""
        console.print(f"{outcome.mode}: {outcome.events} live events{note}", highlight=False)
    print_run(outcome.run)
    if len(prepared.markets) > 1:
        _print_symbols(outcome)
    if snap is not None and view is None:  # headless: the status view's last frame as a summary
        from pivotal.runtime.status import render

        console.print(render(snap, title="final status"))
    if outcome.audit is not None:
        console.print(f"risk audit log: {outcome.audit}", highlight=False)
    for name, stats in (outcome.learning or {}).items():
        console.print(f"live training {name}: {_learning_line(stats)}", highlight=False, soft_wrap=True)
    for path in written:
        console.print(f"wrote {path}", highlight=False)
    if cfg.out is not None:
        console.print(f"output folder: {cfg.out.resolve()} (open the .html charts in a browser)", highlight=False, soft_wrap=True)


def _learning_line(stats: dict[str, Any]) -> str:
    """One line of ``LiveLearning.stats()`` for a model: the serving version, swaps, loss, staleness, outcomes."""
    keep = ("serving_version", "swaps", "predictions_by_version", "last_training_loss", "staleness_ms", "outcomes_resolved")
    return ", ".join(f"{k} {stats[k]}" for k in keep if k in stats) or str(stats)


def _listed(value: str | None) -> list[str] | None:
    """A flag's comma-separated list (``BTC/USDT,ETH/USDT``); None when not given."""
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def _write_out(outcome: Any, prepared: Any, folder: Path) -> list[Path]:
    """``pivotal backtest --out``'s files: summary.json, trades.csv (with a symbol column for several symbols),
    equity.png / equity.html; with several symbols one chart pair per symbol (its price and trades above the
    portfolio's equity and that symbol's buy-and-hold)."""
    import json
    from dataclasses import replace

    from pivotal.cli.backtest import write_outputs
    from pivotal.cli.backtest_chart import render_html, render_png
    from pivotal.services.backtest import BuyAndHold

    series = prepared.markets
    if len(series) == 1:
        paths = write_outputs(outcome.run, series[0], folder)
        outcome.write_trades(paths[1])  # the same file (one symbol)
        return list(paths)
    run = outcome.run
    summary, trades = folder / "summary.json", folder / "trades.csv"
    report = {**run.report(), "symbols": outcome.symbol_summary()}
    summary.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    outcome.write_trades(trades)
    paths = [summary, trades]
    for bars in series:
        result = replace(run.result, trades=run.result.symbol_trades[bars.symbol])
        one = replace(run, result=result, source=f"{bars.exchange} {bars.symbol} {bars.timeframe} (portfolio equity)",
                      buy_and_hold=BuyAndHold.of(bars, run.config.fee_rate, run.config.slippage))  # fmt: skip
        stem = "equity-" + bars.symbol.replace("/", "-")
        render_png(one, bars, folder / f"{stem}.png")
        render_html(one, bars, folder / f"{stem}.html")
        paths += [folder / f"{stem}.png", folder / f"{stem}.html"]
    return paths


def _print_symbols(outcome: Any) -> None:
    """Each market's part of the run: trades, wins, summed net return."""
    from rich.table import Table

    table = Table("symbol", title="Per symbol (one portfolio)")
    for name in ("trades", "wins", "net return (sum, %)"):
        table.add_column(name, justify="right")
    for row in outcome.symbol_summary():
        table.add_row(row["symbol"], str(row["trades"]), str(row["wins"]), f"{row['net_return_pct']:+.2f}")
    console.print(table)


def _live_gate(cfg: Any, yes: bool, service: Any) -> None:
    """Live trading needs the configuration's consent, the keys and a typed confirmation: each missing one is an
    error line, exit 2. The exchange's name is asked only when the rest is there (on EOF: not confirmed)."""
    exchange = cfg.venue_exchange or ""
    env = dict(os.environ)
    typed: str | None = None
    if not yes and not service.live_gate(enabled=cfg.live_trading_enabled, env=env, exchange=exchange, typed=exchange, yes=False):
        try:
            typed = typer.prompt(f"Live trading with real money on {exchange}: type the exchange name to confirm", default="")
        except (typer.Abort, EOFError):
            typed = None
        typed = typed or None  # nothing typed: not confirmed
    missing = service.live_gate(enabled=cfg.live_trading_enabled, env=env, exchange=exchange, typed=typed, yes=yes)
    if not missing:
        return
    for line in missing:
        err_console.print("[bold red]error:[/] ", end="")
        err_console.print(f"live trading refused: {line}", markup=False, highlight=False, soft_wrap=True)
    try:
        service.check_mode("live")
    except service.ModeNotBuilt as exc:
        raise fail(f"and once they are given: {exc}", code=2) from None
    raise typer.Exit(2)
