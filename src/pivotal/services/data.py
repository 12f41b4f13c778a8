"""Use cases of the market-data lake (``pivotal data download|import|info|gaps|export``, later the HTTP API).

Each opens the configured store, does one thing, closes it, and returns plain results; errors a user can cause are
``PivotalError``s with one line (the CLI prints them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pivotal.config import Settings
from pivotal.core.errors import DataNotFound, UserInputError
from pivotal.core.timeframes import parse_timeframes
from pivotal.data.backends import open_store
from pivotal.data.candles import Candles
from pivotal.data.export import write_parquet
from pivotal.data.importers import FORMATS, FileResult, ImportOptions, ImportReport, import_path
from pivotal.data.loaders import check_range, check_timeframe, load_candles
from pivotal.data.store import Gap, SeriesInfo

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
    store = open_store(settings)
    try:
        return import_path(store, list(paths), options, progress=progress)
    finally:
        store.close()


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
