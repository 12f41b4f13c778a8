"""Walk files and folders, pick an importer per file, and write each file as one atomic store batch.

A bad file is reported (file, row, field) and does not stop the others unless ``strict``; since every file
is a single store write, a failing file leaves nothing behind. CSV inputs are parsed in chunks (``streaming``) into
compact columns before that one write, so memory follows the rows, not the text.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pivotal.data.importers.base import ImportBatch, ImportFormatError, UnsupportedFile
from pivotal.data.importers.binance_dump import is_binance_dump, read_binance_dump
from pivotal.data.importers.binance_trades_dump import is_binance_trades_dump, read_binance_trades_dump
from pivotal.data.importers.freqtrade import is_freqtrade_file, read_freqtrade
from pivotal.data.importers.generic_csv import read_generic_csv
from pivotal.data.importers.shared_parquet import is_shared_file, read_shared
from pivotal.data.importers.streaming import CHUNK_ROWS
from pivotal.data.store import MarketStore

FORMATS = ("auto", "shared", "binance-dump", "freqtrade", "csv")
_EXTENSIONS = (".parquet", ".csv", ".zip", ".feather", ".json")


@dataclass(frozen=True)
class ImportOptions:
    """What the user told us; anything left None is taken from the file's name or folder."""

    fmt: str = "auto"
    exchange: str | None = None
    symbol: str | None = None
    timeframe: str | None = None
    mapping: dict[str, str] | None = None
    strict: bool = False
    chunk_rows: int = CHUNK_ROWS  # CSV rows parsed at a time (memory bound); <= 0 reads each file whole


@dataclass(frozen=True)
class FileResult:
    path: str
    status: str  # 'ok' | 'skipped' | 'error' | 'not attempted'
    series: str = ""
    rows_read: int = 0
    rows_written: int = 0
    message: str = ""


@dataclass
class ImportReport:
    files: list[FileResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.status in ("error", "not attempted") for f in self.files)

    @property
    def errors(self) -> list[FileResult]:
        return [f for f in self.files if f.status == "error"]

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def rows_written(self) -> int:
        return sum(f.rows_written for f in self.files)


Progress = Callable[[FileResult], None]


def import_path(
    store: MarketStore,
    paths: Path | str | Iterable[Path | str],
    options: ImportOptions | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import every supported file under ``paths``; returns per-file rows read/written or the error."""
    options = options or ImportOptions()
    if options.fmt not in FORMATS:
        raise ValueError(f"unknown format {options.fmt!r}; use one of {', '.join(FORMATS)}")
    files = list(iter_files([paths] if isinstance(paths, str | Path) else paths))
    report = ImportReport()
    for i, path in enumerate(files):
        result = import_file(store, path, options)
        report.files.append(result)
        if progress is not None:
            progress(result)
        if result.status == "error" and options.strict:
            report.files.extend(FileResult(str(p), "not attempted", message="stopped by --strict") for p in files[i + 1 :])
            break
    return report


def iter_files(paths: Iterable[Path | str]) -> Iterator[Path]:
    """Files given explicitly, and the supported files inside given folders (recursively, in name order)."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in _EXTENSIONS)
        elif path.exists():
            yield path
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")


# Set while a file's one transaction is being written. A Ctrl-C handler defers its interrupt until the write returns:
# raised inside the write, the interrupt can land after the commit, and the file would be stored but reported as not.
WRITING = threading.Event()


def import_file(store: MarketStore, path: Path, options: ImportOptions) -> FileResult:
    """One file -> one result line; never raises for a bad file, so the files after it are still imported.

    Known problems (format, validation, I/O) give their message; anything else is reported as an internal error
    naming the exception (the fuzz tests assert none occur), never a traceback. Ctrl-C still stops the run.
    """
    try:
        batch = parse_file(path, options)
    except UnsupportedFile as exc:
        return FileResult(str(path), "skipped", message=str(exc))
    except (ImportFormatError, ValueError, OSError) as exc:
        return FileResult(str(path), "error", message=_message(path, exc))
    except Exception as exc:  # a parser bug must not stop the other files
        return FileResult(str(path), "error", message=_internal(path, exc))
    WRITING.set()
    try:
        written = batch.write(store)
    except (ValueError, OSError) as exc:  # the store's ValidationError is a ValueError
        return FileResult(str(path), "error", batch.series, batch.rows, message=_message(path, exc))
    except Exception as exc:  # one transaction per file: nothing of it was written
        return FileResult(str(path), "error", batch.series, batch.rows, message=_internal(path, exc))
    finally:
        WRITING.clear()
    return FileResult(str(path), "ok", batch.series, batch.rows, written)


INTERNAL_ERROR = "internal error"


def _internal(path: Path, exc: BaseException) -> str:
    first_line = (str(exc).splitlines() or [""])[0][:200]
    return f"{path}: {INTERNAL_ERROR} {type(exc).__name__}: {first_line}; nothing of this file was written (please report it)"


def parse_file(path: Path, options: ImportOptions) -> ImportBatch:
    """Pick the importer by the requested format, or by layout and extension."""
    fmt = options.fmt if options.fmt != "auto" else detect_format(path, options)
    ex, sym, tf = options.exchange, options.symbol, options.timeframe
    if fmt == "shared":
        return read_shared(path)
    if fmt == "binance-dump":
        if is_binance_trades_dump(path):
            return read_binance_trades_dump(path, ex, sym, options.chunk_rows)
        return read_binance_dump(path, ex, sym, tf, options.chunk_rows)
    if fmt == "freqtrade":
        return read_freqtrade(path, ex, sym, tf)
    return read_generic_csv(path, ex, sym, tf, options.mapping, options.chunk_rows)


def detect_format(path: Path, options: ImportOptions) -> str:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        if is_shared_file(path):
            return "shared"
        raise ImportFormatError(f"{path}: Parquet file outside the shared layout <venue>/<SYMBOL>-<kind>.parquet")
    if suffix in (".csv", ".zip") and (is_binance_dump(path) or is_binance_trades_dump(path)):
        return "binance-dump"
    if suffix in (".feather", ".json") and is_freqtrade_file(path):
        return "freqtrade"
    if suffix == ".csv" and options.mapping is not None:
        return "csv"
    raise ImportFormatError(f"{path}: cannot tell the format; pass --format (and for a plain CSV --map and the series flags)")


def _message(path: Path, exc: BaseException) -> str:
    """One line: a multi-line exception text (pandas, pyarrow) keeps its first line only."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return text if str(path) in text else f"{path}: {text}"
