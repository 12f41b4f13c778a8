"""`pivotal run`: argument parsing and printing over ``pivotal.services.run`` (validation, bars) and
``pivotal.runtime.runner`` (the replay through a trading node). Modes not built yet exit 2 with a plain message."""

from __future__ import annotations

from pathlib import Path

import typer

from pivotal.cli.common import DataDirOption, JsonOption, StoreOption, console, emit_json, fail, parse_time, settings_from

# Same list as services.run.MODES (asserted in tests/runtime/test_cli_run.py); the services module is not imported
# at start-up so `--help` stays fast.
MODES = ("backtest", "replay", "paper", "testnet", "live")
STRATEGIES = ("liquidity_sweep", "sma_cross")


def run(
    mode: str = typer.Option("replay", "--mode", help=f"Trading mode: {', '.join(MODES)} (paper, testnet, live: not built yet)."),
    strategy: str = typer.Option(
        "liquidity_sweep", "--strategy", help=f"Registered strategy: {', '.join(STRATEGIES)} (or one you registered)."
    ),
    exchange: str | None = typer.Option(None, "--exchange", "-e", help="Stored series: exchange, e.g. binance."),
    symbol: str | None = typer.Option(None, "--symbol", "-s", help="Stored series: symbol, e.g. BTC/USDT."),
    timeframe: str | None = typer.Option(None, "--timeframe", "-t", help="Stored series: timeframe (with --input: override)."),
    input_file: Path | None = typer.Option(None, "--input", "-i", help="Candle file instead of a stored series."),
    start: str | None = typer.Option(None, "--start", help="First bar (UTC date/time or epoch ms), inclusive."),
    end: str | None = typer.Option(None, "--end", help="End (UTC date/time or epoch ms), exclusive."),
    speed: float = typer.Option(
        0.0, "--speed", help="Replay pace: 0 = as fast as possible, or 0.1 to 100 times the original timing."
    ),
    params_file: Path | None = typer.Option(None, "--params", help="JSON object of strategy parameters (--param overrides)."),
    param: list[str] = typer.Option([], "--param", "-p", help="Strategy parameter key=value; repeat for several."),
    capital: float = typer.Option(10_000.0, "--capital", help="Starting capital in quote currency (for the printout)."),
    fee: float = typer.Option(0.001, "--fee", help="Fee per side, fraction of notional (0.001 = 0.1 %)."),
    slippage: float = typer.Option(0.0005, "--slippage", help="Adverse slippage per side, fraction of price."),
    journal: Path | None = typer.Option(
        None, "--journal", help="Write-ahead journal file (JSON lines); an existing one resumes its run after a crash."
    ),
    trades_out: Path | None = typer.Option(None, "--trades-out", help="Write the trade list (.csv or .json), as backtest."),
    as_json: bool = JsonOption,
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Run a strategy through the event engine as a trading node: replay stored bars as a live feed (the same trades
    as `pivotal backtest` on the same bars), with an optional crash-safe journal."""
    from pivotal.core.errors import PivotalError
    from pivotal.services import backtest as bt
    from pivotal.services import run as service

    try:
        service.check_mode(mode)
    except service.ModeNotBuilt as exc:
        raise fail(str(exc), code=2) from None
    except PivotalError as exc:
        raise fail(str(exc)) from None
    if trades_out is not None and trades_out.suffix.lower() not in (".csv", ".json"):
        raise fail(f"{trades_out}: unsupported trade export format {trades_out.suffix!r}; use .csv or .json")
    source = bt.CandleSource(input_file, exchange, symbol, timeframe, parse_time(start), parse_time(end))
    settings = None if input_file is not None else settings_from(data_dir, store)
    try:
        from pivotal.runtime.replay import check_speed
        from pivotal.runtime.runner import execute

        request = service.RunRequest(
            mode, strategy, source, bt.parse_param_pairs(param), params_file, check_speed(speed), fee, slippage, capital,
            journal,
        )  # fmt: skip
        outcome = execute(service.prepare(request, settings))
    except PivotalError as exc:
        raise fail(str(exc)) from None
    written: list[Path] = []
    if trades_out is not None:
        outcome.run.result.trades.write(trades_out)
        written.append(trades_out)
    extra = {"mode": outcome.mode, "events": outcome.events, "resumed_from": outcome.resumed_from,
             "journal": None if outcome.journal is None else str(outcome.journal)}  # fmt: skip
    if as_json:
        emit_json({**outcome.run.report(), **extra, "written": [str(p) for p in written]})
        return
    from pivotal.cli.backtest import print_run

    if outcome.mode == "replay":
        note = f" (resumed after the journal's last event {outcome.resumed_from})" if outcome.resumed_from is not None else ""
        console.print(f"replay: {outcome.events} events at speed {speed:g}{note}", highlight=False)
    print_run(outcome.run)
    for path in written:
        console.print(f"wrote {path}", highlight=False)
