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
from pivotal.cli.common import DataDirOption, JsonOption, StoreOption, console, emit_json, err_console, fail, settings_from

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
    exchange: str | None = typer.Option(None, "--exchange", "-e", help="Stored series: exchange, e.g. binance."),
    symbol: str | None = typer.Option(None, "--symbol", "-s", help="Stored series: symbol, e.g. BTC/USDT."),
    timeframe: str | None = typer.Option(None, "--timeframe", "-t", help="Stored series: timeframe (with --input: override)."),
    input_file: Path | None = typer.Option(None, "--input", "-i", help="Candle file instead of a stored series."),
    start: str | None = typer.Option(None, "--start", help="First bar (UTC date/time or epoch ms), inclusive."),
    end: str | None = typer.Option(None, "--end", help="End (UTC date/time or epoch ms), exclusive."),
    speed: float | None = typer.Option(
        None, "--speed", help="Replay pace: 0 = as fast as possible (default), or 0.1 to 100 times the original timing."
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
    status: bool | None = typer.Option(
        None, "--status/--no-status", help="Live status view in the terminal (default: on a terminal; else a final summary)."
    ),
    yes: bool = typer.Option(False, "--yes", help="Live mode: confirm without typing the exchange name."),
    exchange_url: str | None = typer.Option(
        None, "--exchange-url", help="Paper/testnet: for a local test exchange, its base URL (http://127.0.0.1:PORT)."
    ),
    as_json: bool = JsonOption,
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Run a strategy through the event engine as a trading node: replay stored bars as a live feed (the same trades
    as `pivotal backtest` on the same bars), or trade the exchange's live feed (--mode paper: simulated fills;
    testnet: orders on the exchange), with an optional crash-safe journal and, with a risk table in the run
    configuration (--config), under the risk engine."""
    from pivotal.core.errors import PivotalError
    from pivotal.services import backtest as bt
    from pivotal.services import run as service

    overrides: dict[str, Any] = {
        "mode": mode, "strategy": strategy, "exchange": exchange, "symbols": None if symbol is None else [symbol],
        "timeframes": None if timeframe is None else [timeframe], "input": input_file, "start": start, "end": end,
        "speed": speed, "params_file": params_file, "capital": capital, "venue.fee": fee, "venue.slippage": slippage,
        "journal": journal, "trades_out": trades_out, "status": status, "venue.rest_url": exchange_url,
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
    if cfg.models or cfg.orchestrator:
        raise fail(
            "models and [orchestrator] in the run configuration are not wired into pivotal run yet; fix: remove them "
            "and name a rule strategy (strategy = ...)",
            code=2,
        )
    if len(cfg.symbols) > 1 or len(cfg.timeframes) > 1:
        raise fail(f"a run trades one symbol on one timeframe for now (got symbols {cfg.symbols}, timeframes {cfg.timeframes})")
    market = cfg.exchange or (cfg.venue_exchange if cfg.mode in service.LIVE_DATA else None)
    source = bt.CandleSource(cfg.input, market, cfg.symbol, cfg.timeframe, cfg.start, cfg.end)
    live_data = cfg.mode in service.LIVE_DATA
    settings = None if cfg.input is not None or live_data else settings_from(data_dir, store)
    show = (cfg.status if cfg.status is not None else console.is_terminal) and not as_json
    view = None
    try:
        from pivotal.runtime.runner import execute

        request = service.RunRequest(
            cfg.mode, cfg.strategy, source, cfg.params, cfg.params_file, cfg.speed, cfg.venue.fee, cfg.venue.slippage,
            cfg.capital, cfg.journal, cfg.risk_config(), cfg.audit_path(), cfg.venue_exchange, cfg.venue.rest_url,
            cfg.venue.ws_url,
        )  # fmt: skip
        prepared = service.prepare(request, settings)
        if show:
            from pivotal.runtime.status import StatusView

            view = StatusView(console, title=f"{cfg.mode} {cfg.strategy}", capital=cfg.capital)
            outcome = execute(prepared, observer=view.observe, on_start=view.attach)
        else:
            outcome = execute(prepared)
    except PivotalError as exc:
        raise fail(str(exc)) from None
    finally:
        if view is not None:
            view.close()
    written: list[Path] = []
    if cfg.trades_out is not None:
        outcome.run.result.trades.write(cfg.trades_out)
        written.append(cfg.trades_out)
    snap = outcome.snapshot
    extra = {"mode": outcome.mode, "events": outcome.events, "resumed_from": outcome.resumed_from,
             "journal": None if outcome.journal is None else str(outcome.journal),
             "audit": None if outcome.audit is None else str(outcome.audit),
             "status": None if snap is None else asdict(snap), "sent": outcome.sent}  # fmt: skip
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
    if snap is not None and view is None:  # headless: the status view's last frame as a summary
        from pivotal.runtime.status import render

        console.print(render(snap, title="final status"))
    if outcome.audit is not None:
        console.print(f"risk audit log: {outcome.audit}", highlight=False)
    for path in written:
        console.print(f"wrote {path}", highlight=False)


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
