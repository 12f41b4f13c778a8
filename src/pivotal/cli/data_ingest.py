"""`pivotal data download` (ccxt) and `pivotal data import` (files and folders)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
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
    exchange: str = typer.Option("binance", "--exchange", "-e", help="ccxt exchange id."),
    symbols: str = typer.Option(..., "--symbols", "-s", help="Comma-separated ccxt unified symbols, e.g. BTC/USDT,ETH/USDT."),
    timeframes: str = typer.Option("1m", "--timeframes", "-t", help="Comma-separated timeframes, e.g. 1m,1h (1s where offered)."),
    since: str = typer.Option(..., "--since", help="First bar open time: YYYY-MM-DD[THH:MM] UTC or epoch ms."),
    until: str | None = typer.Option(None, "--until", help="Stop before this open time (default: now; open bars are skipped)."),
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Download closed candles through ccxt into the store; re-running resumes after the newest stored bar."""
    from pivotal.core.errors import PivotalError
    from pivotal.services.data import download as download_series  # ccxt, pandas: lazy, only when downloading

    names = [s.strip() for s in symbols.split(",") if s.strip()]
    start, end = parse_time(since), parse_time(until)
    if start is None:
        raise fail("--since is required")
    try:
        with _download_progress() as bars:
            tasks: dict[tuple[str, str], TaskID] = {}

            def on_page(event: PageEvent) -> None:
                key = (event.symbol, event.timeframe)
                if key not in tasks:
                    label = f"{event.symbol} {event.timeframe}"
                    tasks[key] = bars.add_task(label, total=max(1, event.end - event.start), rows=0)
                bars.update(tasks[key], completed=event.cursor - event.start, rows=event.series_rows)

            results = download_series(settings_from(data_dir, store), exchange, names, timeframes, start, end, on_page)
    except PivotalError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail("interrupted; every finished page is stored, run the same command again to resume", 130) from None
    columns = ("symbol", "timeframe", "resumed from (UTC)", "pages", "rows written", "retries", "quarantined")
    table = Table(*columns, title=f"{exchange} download")
    for r in results:
        row = (r.symbol, r.timeframe, _utc(r.resumed_from), str(r.pages), str(r.rows_written), str(r.retries), str(r.quarantined))
        table.add_row(*row)
    console.print(table)
    bad = sum(r.quarantined for r in results)
    if bad:
        console.print(
            f"{bad} bad bar(s) from {exchange} were quarantined (kept with the reason, not stored as candles); "
            "see the quarantine in docs/ingest.md"
        )


def import_files(
    paths: list[Path] = typer.Argument(..., help="Files or folders (folders are walked recursively)."),
    fmt: str = typer.Option("auto", "--format", help=f"One of: {', '.join(FORMATS)}."),
    exchange: str | None = typer.Option(None, "--exchange", "-e", help="ccxt exchange id (needed for csv; overrides names)."),
    symbol: str | None = typer.Option(None, "--symbol", "-s", help="Unified symbol, e.g. BTC/USDT (needed for csv)."),
    timeframe: str | None = typer.Option(None, "--timeframe", "-t", help="Timeframe, e.g. 1m (needed for csv)."),
    mapping: str | None = typer.Option(
        None, "--map", help="csv column mapping, e.g. ts=time,open=o,high=h,low=l,close=c,volume=v"
    ),
    strict: bool = typer.Option(False, "--strict", help="Stop at the first bad file (files already imported stay)."),
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Import candle, trade and order-book files: the ../shared/data Parquet layout, Binance dumps, freqtrade, CSV."""
    from pivotal.core.errors import PivotalError
    from pivotal.data.importers import ImportOptions
    from pivotal.data.importers.dispatch import iter_files
    from pivotal.data.importers.generic_csv import parse_mapping
    from pivotal.services.data import import_files as import_paths

    try:
        options = ImportOptions(fmt, exchange, symbol, timeframe, parse_mapping(mapping) if mapping else None, strict)
        total = len(list(iter_files(paths)))
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console) as bar:
            task = bar.add_task("importing", total=total)

            def on_file(result: FileResult) -> None:
                bar.update(task, advance=1, description=f"importing {Path(result.path).name}")

            report = import_paths(settings_from(data_dir, store), paths, options, on_file)
    except (PivotalError, ValueError, FileNotFoundError) as exc:  # parse_mapping / iter_files name the bad argument
        raise fail(str(exc)) from None
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
