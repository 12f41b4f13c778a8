"""`pivotal parity`: argument parsing and printing over ``pivotal.runtime.parity`` (the same strategy and bars through
the backtest use case and a replay through a trading node, with ``--paper`` a paper session against a local test
exchange this command starts on 127.0.0.1 streaming the same recorded data, plus trade lists from files, compared
trade by trade). Exit code 0 when every trade list is identical, 3 when they differ (the report says where and why).
The test exchange is started here, not in the runtime: the runtime reaches an exchange only through its URL."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from pivotal.cli.backtest import STRATEGIES
from pivotal.cli.common import DataDirOption, JsonOption, StoreOption, console, emit_json, fail, parse_time, settings_from

if TYPE_CHECKING:
    from pivotal.runtime.parity import ParityReport
    from pivotal.services.run import PreparedRun

DIFFERENT = 3


def parity(
    strategy: str = typer.Option(
        "liquidity_sweep", "--strategy", help=f"Registered strategy: {', '.join(STRATEGIES)} (or one you registered)."
    ),
    exchange: str | None = typer.Option(None, "--exchange", "-e", help="Stored series: exchange, e.g. binance."),
    symbol: str | None = typer.Option(None, "--symbol", "-s", help="Stored series: symbol (with --input: its label)."),
    timeframe: str | None = typer.Option(None, "--timeframe", "-t", help="Stored series: timeframe (with --input: override)."),
    input_file: Path | None = typer.Option(None, "--input", "-i", help="Candle file instead of a stored series."),
    start: str | None = typer.Option(None, "--start", help="First bar (UTC date/time or epoch ms), inclusive."),
    end: str | None = typer.Option(None, "--end", help="End (UTC date/time or epoch ms), exclusive."),
    params_file: Path | None = typer.Option(None, "--params", help="JSON object of strategy parameters (--param overrides)."),
    param: list[str] = typer.Option([], "--param", "-p", help="Strategy parameter key=value; repeat for several."),
    fee: float = typer.Option(0.001, "--fee", help="Fee per side, fraction of notional (0.001 = 0.1 %)."),
    slippage: float = typer.Option(0.0005, "--slippage", help="Adverse slippage per side, fraction of price."),
    paper_trades: Path | None = typer.Option(
        None, "--paper-trades", help="Trade list of a paper run on the same bars (pivotal run --mode paper --trades-out)."
    ),
    trades: list[Path] = typer.Option([], "--trades", help="Another trade list (.csv/.json) to compare; repeat for several."),
    paper: bool = typer.Option(
        False,
        "--paper",
        help="Also run a paper session against a local test exchange streaming the same recorded "
        "Binance data (needs --paper-data, or --input under <data>/binance/).",
    ),
    paper_data: Path | None = typer.Option(
        None, "--paper-data", help="Folder the test exchange replays for --paper (holds binance/<SYMBOL>-<tf>*.parquet)."
    ),
    report_out: Path | None = typer.Option(None, "--report-out", help="Write the full JSON report to this file."),
    limit: int = typer.Option(10, "--limit", help="Differing rows printed per comparison."),
    as_json: bool = JsonOption,
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Backtest = replay (= paper): run the strategy both ways on the same bars and compare the trades; name the first
    divergence and why."""
    import json

    from pivotal.core.errors import PivotalError
    from pivotal.runtime.parity import load_trade_list, run_parity
    from pivotal.services.backtest import CandleSource, parse_param_pairs
    from pivotal.services.run import RunRequest, prepare

    source = CandleSource(input_file, exchange, symbol, timeframe, parse_time(start), parse_time(end))
    settings = None if input_file is not None else settings_from(data_dir, store)
    try:
        file_name = "paper_trades" if paper else "paper"
        extra = {} if paper_trades is None else {file_name: load_trade_list(paper_trades).trades}
        for path in trades:
            extra[path.stem if path.stem not in extra else str(path)] = load_trade_list(path).trades
        request = RunRequest("backtest", strategy, source, parse_param_pairs(param), params_file, fee_rate=fee, slippage=slippage)
        prepared = prepare(request, settings)
        data_dir_for_paper = (paper_data or _data_of(input_file)) if paper else None
        report = run_parity(prepared, extra) if data_dir_for_paper is None else _with_paper(prepared, extra, data_dir_for_paper)
    except PivotalError as exc:
        raise fail(str(exc)) from None
    data = report.to_dict()
    if report_out is not None:
        report_out.write_text(json.dumps(data, indent=1, allow_nan=True))
    if as_json:
        emit_json(data)
    else:
        console.print(report.text(limit), highlight=False, markup=False, soft_wrap=True)
        if report_out is not None:
            console.print(f"wrote {report_out}", highlight=False)
    if not report.identical:
        raise typer.Exit(DIFFERENT)


def _data_of(input_file: Path | None) -> Path:
    """The recorded-data folder of a candle file under ``<data>/binance/`` (what the test exchange replays)."""
    from pivotal.core.errors import UserInputError

    if input_file is not None and input_file.resolve().parent.name == "binance":
        return input_file.resolve().parent.parent
    raise UserInputError(
        "--paper needs --paper-data DIR: the folder the test exchange replays (binance/<SYMBOL>-<tf>*.parquet, "
        "e.g. ../shared/data)"
    )


def _with_paper(prepared: PreparedRun, extra: dict[str, Any], data: Path) -> ParityReport:
    """Start the local test exchange at the first bar's open, replaying ``data`` at speed 0 (as fast as the feed
    reads), run the parity harness with its paper session against it, and stop it."""
    from pivotal.core.errors import UserInputError
    from pivotal.runtime.parity import run_parity
    from pivotal.testexchange import TestExchange

    bars = prepared.bars
    if bars.exchange != "binance":
        raise UserInputError(
            f"--paper: the local test exchange speaks Binance and replays {data}/binance; the series is {bars.exchange!r} "
            "(give -e binance with a Binance series)"
        )
    if "/" not in bars.symbol:
        raise UserInputError(f"--paper: give the market of the series with -s (e.g. -s BTC/USDT; got {bars.symbol!r})")
    if not len(bars):
        raise UserInputError("--paper: the series has no bars in the window")
    with TestExchange(data, [bars.symbol], timeframes=(bars.timeframe,), start=int(bars.ts[0]), speed=0.0) as ex:
        return run_parity(prepared, extra, paper_url=ex.url)
