"""Large text inputs read in chunks, so parsing memory is bounded by the chunk and not by the file.

A CSV (plain, or the one member of a Binance dump zip, read as a stream: never unpacked or decoded whole) goes
through pandas' chunked reader ``chunk_rows`` rows at a time; each chunk is parsed into compact columns (a candle is
48 bytes: int64 time and five float64) by the same functions, with the same file line numbers in their messages, as a
whole-file read. The file is then written by one store call (one transaction): a bad row in any chunk, or a failure
while writing, leaves the store unchanged. See docs/ingest.md, "Memory".
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from pivotal.data.importers.base import ImportFormatError

CHUNK_ROWS = 100_000
"""Rows parsed at a time: ~70 MB of pandas text cells for a 12-column kline dump, the parsing part of the bound."""

_PEEK_BYTES = 1 << 16


@contextmanager
def dump_errors(path: Path, fix: str = "a Binance dump is plain ASCII CSV") -> Iterator[None]:
    """Damaged archives, non-UTF-8 text and malformed CSV become one ``ImportFormatError`` line naming the file.

    They can surface in any chunk (a zip's CRC is checked when its member's last bytes are read), so the whole
    streamed parse runs inside this.
    """
    try:
        yield
    except UnicodeDecodeError as exc:
        raise ImportFormatError(f"{path}: not UTF-8 text ({exc.reason}); fix: {fix}") from None
    except pd.errors.EmptyDataError:
        raise ImportFormatError(f"{path}: no rows; fix: the file is empty or holds only a header") from None
    except pd.errors.ParserError as exc:
        raise ImportFormatError(f"{path}: not a well-formed CSV: {str(exc).strip()}") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError) as exc:
        if isinstance(exc, ImportFormatError) or path.suffix.lower() != ".zip":
            raise
        raise ImportFormatError(
            f"{path}: damaged zip archive ({type(exc).__name__}: {exc}); fix: download the file again"
        ) from None


@contextmanager
def open_dump(path: Path) -> Iterator[IO[bytes]]:
    """The bytes of a dump: the .csv itself, or a stream of the single .csv inside its .zip."""
    if path.suffix.lower() != ".zip":
        with open(path, "rb") as handle:
            yield handle
        return
    if not zipfile.is_zipfile(path):
        raise ImportFormatError(f"{path}: not a readable zip archive (truncated download?)")
    with zipfile.ZipFile(path) as archive:
        members = [n for n in archive.namelist() if n.lower().endswith(".csv")]
        if len(members) != 1:
            raise ImportFormatError(f"{path}: expected exactly one .csv inside the zip, found {len(members)}")
        with archive.open(members[0]) as member:
            yield member


def first_char(path: Path) -> str:
    """The first non-whitespace character of a dump's text ('' when there is none): a digit means no header row."""
    with dump_errors(path), open_dump(path) as stream:
        while block := stream.read(_PEEK_BYTES):
            text = block.lstrip()
            if text:
                return text[:1].decode("utf-8", errors="replace")
    return ""


def csv_chunks(
    stream: IO[bytes] | Path, *, chunk_rows: int = CHUNK_ROWS, **read_csv: Any
) -> Iterator[tuple[int, pd.DataFrame]]:
    """``(row offset, frame)`` for each chunk of a CSV, all cells as text (pandas' ``read_csv`` options pass through).

    ``chunk_rows <= 0`` reads the whole file as one chunk (the pre-streaming behaviour, kept for the benchmark).
    """
    options: dict[str, Any] = {"dtype": str, "keep_default_na": False, "encoding": "utf-8", **read_csv}
    if chunk_rows <= 0:
        yield 0, pd.read_csv(stream, **options)
        return
    offset = 0
    with pd.read_csv(stream, chunksize=chunk_rows, **options) as reader:
        for frame in reader:
            yield offset, frame.reset_index(drop=True)
            offset += len(frame)


class Columns:
    """Compact per-field arrays collected chunk by chunk and joined once at the end."""

    def __init__(self) -> None:
        self._parts: dict[str, list[np.ndarray]] = {}

    def add(self, **arrays: np.ndarray) -> None:
        for name, values in arrays.items():
            self._parts.setdefault(name, []).append(values)

    def join(self, name: str, dtype: type | np.dtype[Any]) -> np.ndarray:
        """One contiguous array of the field (empty when no chunk had rows); frees the parts."""
        parts = self._parts.pop(name, [])
        if not parts:
            return np.empty(0, dtype)
        out = np.concatenate(parts).astype(dtype, copy=False) if len(parts) > 1 else np.asarray(parts[0], dtype)
        return np.ascontiguousarray(out)
