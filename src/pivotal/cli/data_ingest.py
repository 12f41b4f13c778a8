"""`pivotal data download` (ccxt) and `pivotal data import` (files and folders)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from pivotal.cli.common import DataDirOption, StoreOption, console, fail, parse_time, settings_from

if TYPE_CHECKING:
    from pivotal.data.download import PageEvent
    from pivotal.data.importers import FileResult, ImportReport

# A copy of pivotal.data.importers.FORMATS (which loads ccxt, pandas, pyarrow) so `--help` stays fast;
# tests/cli/test_startup.py asserts the two are equal.
FORMATS = ("auto", "shared", "binance-dump", "freqtrade", "csv")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `data` app."""
    app.command("download")(download)
    app.command("import")(import_files)


def download(
    exchange: str = typer.Option("binance", "--exchange", help="ccxt exchange id."),
    symbols: str = typer.Option(..., "--symbols", help="Comma-separated ccxt unified symbols, e.g. BTC/USDT,ETH/USDT."),
    timeframes: str = typer.Option("1m", "--timeframes", help="Comma-separated timeframes, e.g. 1m,1h (1s where offered)."),
    since: str = typer.Option(..., "--since", help="First bar open time: YYYY-MM-DD[THH:MM] UTC or epoch ms."),
    until: str | None = typer.Option(None, "--until", help="Stop before this open time (default: now; open bars are skipped)."),
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Download closed candles through ccxt into the store; re-running resumes after the newest stored bar."""
    from pivotal.data.backends import open_store
    from pivotal.data.download import DownloadError, download_candles  # ccxt: lazy, only when downloading
    from pivotal.core.timeframes import parse_timeframes

    try:
        tfs = parse_timeframes(timeframes)
    except ValueError as exc:
        raise fail(str(exc)) from None
    names = [s.strip() for s in symbols.split(",") if s.strip()]
    start, end = parse_time(since), parse_time(until)
    if start is None:
        raise fail("--since is required")
    market_store = open_store(settings_from(data_dir, store))
    try:
        with _download_progress() as bars:
            tasks: dict[tuple[str, str], int] = {}

            def on_page(event: PageEvent) -> None:
                key = (event.symbol, event.timeframe)
                if key not in tasks:
                    label = f"{event.symbol} {event.timeframe}"
                    tasks[key] = bars.add_task(label, total=max(1, event.end - event.start), rows=0)
                bars.update(tasks[key], completed=event.cursor - event.start, rows=event.series_rows)

            results = download_candles(market_store, exchange, names, tfs, start, end, progress=on_page)
    except (ValueError, DownloadError) as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail("interrupted; every finished page is stored, run the same command again to resume", 130) from None
    finally:
        market_store.close()
    table = Table("symbol", "timeframe", "resumed from (UTC)", "pages", "rows written", "retries", title=f"{exchange} download")
    for r in results:
        table.add_row(r.symbol, r.timeframe, _utc(r.resumed_from), str(r.pages), str(r.rows_written), str(r.retries))
    console.print(table)


def import_files(
    paths: list[Path] = typer.Argument(..., help="Files or folders (folders are walked recursively)."),
    fmt: str = typer.Option("auto", "--format", help=f"One of: {', '.join(FORMATS)}."),
    exchange: str | None = typer.Option(None, "--exchange", help="ccxt exchange id (needed for csv; overrides names)."),
    symbol: str | None = typer.Option(None, "--symbol", help="Unified symbol, e.g. BTC/USDT (needed for csv)."),
    timeframe: str | None = typer.Option(None, "--timeframe", help="Timeframe, e.g. 1m (needed for csv)."),
    mapping: str | None = typer.Option(
        None, "--map", help="csv column mapping, e.g. ts=time,open=o,high=h,low=l,close=c,volume=v"
    ),
    strict: bool = typer.Option(False, "--strict", help="Stop at the first bad file (files already imported stay)."),
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Import candle, trade and order-book files: the ../shared/data Parquet layout, Binance dumps, freqtrade, CSV."""
    from pivotal.data.backends import open_store
    from pivotal.data.importers import ImportOptions, import_path
    from pivotal.data.importers.dispatch import iter_files
    from pivotal.data.importers.generic_csv import parse_mapping

    try:
        options = ImportOptions(fmt, exchange, symbol, timeframe, parse_mapping(mapping) if mapping else None, strict)
        if fmt not in FORMATS:
            raise ValueError(f"unknown --format {fmt!r}; use one of {', '.join(FORMATS)}")
    except ValueError as exc:
        raise fail(str(exc)) from None
    market_store = open_store(settings_from(data_dir, store))
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console) as bar:
            task = bar.add_task("importing", total=len(list(iter_files(paths))))

            def on_file(result: FileResult) -> None:
                bar.update(task, advance=1, description=f"importing {Path(result.path).name}")

            report = import_path(market_store, paths, options, progress=on_file)
    except FileNotFoundError as exc:
        raise fail(str(exc)) from None
    finally:
        market_store.close()
    console.print(_report_table(report))
    if not report.ok:
        raise fail(f"{len(report.errors)} file(s) failed; nothing of those files was written")


def _report_table(report: ImportReport) -> Table:
    table = Table("file", "status", "series", "rows read", "rows written", "message", title="import", show_lines=False)
    colours = {"ok": "green", "skipped": "yellow", "error": "red", "not attempted": "red"}
    for f in report.files:
        status = f"[{colours[f.status]}]{f.status}[/]"
        table.add_row(f.path, status, f.series, str(f.rows_read), str(f.rows_written), f.message)
    table.add_row("total", "", "", str(report.rows_read), str(report.rows_written), "", end_section=True)
    return table


def _download_progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[rows]} rows"),
        TimeRemainingColumn(),
        console=console,
    )


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")
