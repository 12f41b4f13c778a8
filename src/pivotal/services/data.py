"""Use cases of the market-data lake (``pivotal data download|import|info|gaps|export``, later the HTTP API).

Each opens the configured store, does one thing, closes it, and returns plain results; errors a user can cause are
``PivotalError``s with one line (the CLI prints them).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pivotal.config import Settings
from pivotal.core.errors import DataNotFound, PivotalError, UserInputError
from pivotal.core.timeframes import parse_timeframes
from pivotal.data.backends import open_store
from pivotal.data.candles import Candles
from pivotal.data.export import write_parquet
from pivotal.data.importers import FORMATS, FileResult, ImportOptions, ImportReport, import_path
from pivotal.data.importers.dispatch import WRITING
from pivotal.data.loaders import check_range, check_timeframe, load_candles
from pivotal.data.sql import range_filter
from pivotal.data.store import Gap, Holding, Problem, SeriesInfo

if TYPE_CHECKING:
    from pivotal.data.download import PageEvent, SeriesResult


def import_files(
    settings: Settings,
    paths: Sequence[Path],
    options: ImportOptions,
    progress: Callable[[FileResult], None] | None = None,
) -> ImportReport:
    """Import every supported file under ``paths``; a bad file is reported in the result, not raised."""
    if options.fmt not in FORMATS:
        raise UserInputError(f"unknown --format {options.fmt!r}; use one of {', '.join(FORMATS)}")
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise UserInputError(f"{missing[0]}: no such file or folder")
    from pivotal.data.importers.dispatch import iter_files

    files = [str(p) for p in iter_files(paths)]
    done: list[FileResult] = []
    interrupted = threading.Event()

    def on_file(result: FileResult) -> None:
        if interrupted.is_set():
            # Ctrl-C came during this file. Pressed while it was written, the interrupt waited for the write, which
            # committed: the file is imported and counts. Pressed inside a library while parsing, it can surface as
            # this file's "error": nothing of it was written.
            if result.status == "ok":
                done.append(result)
            raise KeyboardInterrupt
        done.append(result)
        if progress is not None:
            progress(result)

    store = open_store(settings)
    try:
        with _noting_sigint(interrupted):
            return import_path(store, list(paths), options, progress=on_file)
    except KeyboardInterrupt:
        raise ImportInterrupted(_interrupted(files, done)) from None
    finally:
        store.close()


@contextmanager
def _noting_sigint(flag: threading.Event) -> Iterator[None]:
    """Record that Ctrl-C was pressed (then behave as before: KeyboardInterrupt). Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum: int, frame: Any) -> None:
        flag.set()
        if WRITING.is_set():  # finish the file's transaction first; the import stops right after it (on_file)
            return
        if callable(previous):
            previous(signum, frame)
        else:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class ImportInterrupted(PivotalError):
    """Ctrl-C during an import: the message says which files are stored and which are not."""


def _interrupted(files: list[str], done: list[FileResult]) -> str:
    """One line: what was imported, what was not (the file in progress was rolled back: one transaction per batch)."""
    ok = [f for f in done if f.status == "ok"]
    finished = {f.path for f in done}
    pending = [f for f in files if f not in finished]
    names = ", ".join(Path(f).name for f in pending[:3]) + (", ..." if len(pending) > 3 else "")
    return (
        f"interrupted: {len(ok)} file(s) imported ({sum(f.rows_written for f in ok):,} rows), "
        f"{len(pending)} not imported ({names or 'none'}; the file in progress was rolled back); "
        "run the same command again to import the rest"
    )


def download(
    settings: Settings,
    exchange: str,
    symbols: Sequence[str],
    timeframes: str,
    since: int,
    until: int | None = None,
    progress: Callable[[PageEvent], None] | None = None,
) -> list[SeriesResult]:
    """Download closed candles through ccxt into the store; resumes after the newest stored bar."""
    from pivotal.data.download import DownloadError, download_candles  # ccxt: only when downloading

    try:
        tfs = parse_timeframes(timeframes)
    except ValueError as exc:
        raise UserInputError(str(exc)) from None
    check_range(since, until)
    store = open_store(settings)
    try:
        return download_candles(store, exchange, list(symbols), tfs, since, until, progress=progress)
    except (ValueError, DownloadError) as exc:
        raise UserInputError(str(exc)) from None
    finally:
        store.close()


def series(settings: Settings) -> list[SeriesInfo]:
    """Coverage of every stored candle series."""
    store = open_store(settings)
    try:
        return store.series()
    finally:
        store.close()


def gaps(
    settings: Settings, exchange: str | None = None, symbol: str | None = None, timeframe: str | None = None
) -> list[tuple[SeriesInfo, list[Gap]]]:
    """The missing spans of each stored series matching the filter; ``DataNotFound`` when none matches."""
    store = open_store(settings)
    try:
        chosen = [
            s
            for s in store.series()
            if (exchange is None or s.exchange == exchange)
            and (symbol is None or s.symbol == symbol)
            and (timeframe is None or s.timeframe == timeframe)
        ]
        if not chosen:
            raise DataNotFound("no stored series match the filter; see `pivotal data info` for what is stored")
        return [(s, store.gaps(s.exchange, s.symbol, s.timeframe)) for s in chosen]
    finally:
        store.close()


def export(
    settings: Settings,
    exchange: str,
    symbol: str,
    timeframe: str,
    out: Path,
    start: int | None = None,
    end: int | None = None,
) -> Candles:
    """Write one stored series (``start <= ts < end``) to a Parquet file; the candles written."""
    check_timeframe(timeframe)
    store = open_store(settings)
    try:
        candles = load_candles(store, exchange, symbol, timeframe, start=start, end=end)
    finally:
        store.close()
    write_parquet(candles, out)
    return candles


def holdings(settings: Settings) -> tuple[list[SeriesInfo], list[Holding]]:
    """Everything stored: candle series, and trades / depth snapshots / depth updates per market."""
    store = open_store(settings)
    try:
        return store.series(), store.holdings()
    finally:
        store.close()


def bars_to_delete(
    settings: Settings, exchange: str, symbol: str, timeframe: str, start: int | None = None, end: int | None = None
) -> int:
    """How many bars ``delete_candles`` would remove (for the confirmation); ``DataNotFound`` naming what is stored."""
    check_timeframe(timeframe)
    check_range(start, end)
    store = open_store(settings)
    try:
        stored = {(s.exchange, s.symbol, s.timeframe) for s in store.series()}
        if (exchange, symbol, timeframe) not in stored:
            have = ", ".join(sorted(" ".join(key) for key in stored)) or "nothing"
            raise DataNotFound(f"no stored series {exchange} {symbol} {timeframe}; stored: {have}")
        where, bounds = range_filter(start, end)
        sql_text = f"SELECT COUNT(*) FROM candles WHERE exchange = ? AND symbol = ? AND timeframe = ?{where}"
        return int(store.query(sql_text, [exchange, symbol, timeframe, *bounds])[0][0])
    finally:
        store.close()


def delete_candles(
    settings: Settings, exchange: str, symbol: str, timeframe: str, start: int | None = None, end: int | None = None
) -> int:
    """Delete one stored series, or its bars with ``start <= ts < end``, in one transaction; returns bars deleted."""
    check_timeframe(timeframe)
    check_range(start, end)
    store = open_store(settings)
    try:
        return store.delete_candles(exchange, symbol, timeframe, start, end)
    finally:
        store.close()


def verify(settings: Settings) -> tuple[int, list[Problem]]:
    """(series checked, broken invariants) of the whole store; an empty list means every series is sound."""
    store = open_store(settings)
    try:
        checked = len(store.query("SELECT id FROM candle_series"))
        return checked, store.verify()
    finally:
        store.close()
