"""data.binance.vision kline dumps: ``BTCUSDT-1m-2024-01.csv`` or ``.zip`` (12 columns, with or without header).

Since 2025 the spot dumps carry microsecond open times; each value is converted to ms by magnitude.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from pathlib import Path

import pandas as pd

from pivotal.core.timeframes import TIMEFRAMES
from pivotal.data.candles import Candles
from pivotal.data.importers.base import CandleBatch, ImportFormatError, numeric_column, timestamp_column
from pivotal.data.symbols import unified_symbol

KLINE_COLUMNS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
)
_NAME_RE = re.compile(r"^(?P<raw>[A-Z0-9]+)-(?P<tf>\w+?)-(?P<date>\d{4}-\d{2}(?:-\d{2})?)\.(?:csv|zip)$")
# ccxt exchange ids whose Binance dumps are perpetual futures (unified as BASE/QUOTE:QUOTE).
LINEAR_EXCHANGES = {"binanceusdm"}


def is_binance_dump(path: Path) -> bool:
    m = _NAME_RE.match(path.name)
    return m is not None and m["tf"] in TIMEFRAMES


def read_binance_dump(
    path: Path, exchange: str | None = None, symbol: str | None = None, timeframe: str | None = None
) -> CandleBatch:
    """Parse one dump file; exchange defaults to ``binance`` (spot), symbol/timeframe come from the file name."""
    exchange = exchange or "binance"
    symbol, timeframe = _series_of(path, exchange, symbol, timeframe)
    source = str(path)
    text = read_dump_text(path)
    return CandleBatch(parse_klines_csv(text, source, exchange, symbol, timeframe), source)


def _series_of(path: Path, exchange: str, symbol: str | None, timeframe: str | None) -> tuple[str, str]:
    m = _NAME_RE.match(path.name)
    if m is None and (symbol is None or timeframe is None):
        raise ImportFormatError(
            f"{path}: file name is not a Binance dump name like BTCUSDT-1m-2024-01.zip; pass --symbol and --timeframe"
        )
    if symbol is None:
        market = "linear" if exchange in LINEAR_EXCHANGES else "spot"
        try:
            symbol = unified_symbol(market, m["raw"])  # type: ignore[index]
        except ValueError as exc:
            raise ImportFormatError(f"{path}: {exc}; pass --symbol") from None
    timeframe = timeframe or m["tf"]  # type: ignore[index]
    if timeframe not in TIMEFRAMES:
        raise ImportFormatError(f"{path}: timeframe {timeframe!r} is not supported; use one of {' '.join(TIMEFRAMES)}")
    return symbol, timeframe


def read_dump_text(path: Path) -> str:
    """The CSV text of a dump, from the .csv itself or the single .csv inside its .zip.

    A damaged archive (bad CRC, broken deflate stream, truncated member) or non-UTF-8 text is an ``ImportFormatError``
    naming the file, so one bad download does not stop the files after it.
    """
    try:
        if path.suffix.lower() != ".zip":
            return path.read_bytes().decode()
        if not zipfile.is_zipfile(path):
            raise ImportFormatError(f"{path}: not a readable zip archive (truncated download?)")
        with zipfile.ZipFile(path) as archive:
            members = [n for n in archive.namelist() if n.lower().endswith(".csv")]
            if len(members) != 1:
                raise ImportFormatError(f"{path}: expected exactly one .csv inside the zip, found {len(members)}")
            return archive.read(members[0]).decode()
    except UnicodeDecodeError as exc:
        raise ImportFormatError(f"{path}: not UTF-8 text (byte {exc.start}); fix: a Binance dump is plain ASCII CSV") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError) as exc:
        if isinstance(exc, ImportFormatError):
            raise
        raise ImportFormatError(
            f"{path}: damaged zip archive ({type(exc).__name__}: {exc}); fix: download the file again"
        ) from None


def read_csv_text(text: str, source: str, skiprows: int) -> pd.DataFrame:
    """All cells as text; a ragged or empty CSV is named instead of surfacing pandas' tokenizer error."""
    try:
        return pd.read_csv(io.StringIO(text), header=None, skiprows=skiprows, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise ImportFormatError(f"{source}: no rows; fix: the file is empty or holds only a header") from None
    except pd.errors.ParserError as exc:
        raise ImportFormatError(f"{source}: not a well-formed CSV: {str(exc).strip()}") from None


def parse_klines_csv(text: str, source: str, exchange: str, symbol: str, timeframe: str) -> Candles:
    """12-column kline CSV text -> Candles (only the OHLCV fields are kept)."""
    first = text.lstrip().split("\n", 1)[0]
    has_header = not first[:1].isdigit()
    frame = read_csv_text(text, source, 1 if has_header else 0)
    if frame.shape[1] != len(KLINE_COLUMNS):
        raise ImportFormatError(f"{source}: expected {len(KLINE_COLUMNS)} kline columns, found {frame.shape[1]}")
    frame.columns = list(KLINE_COLUMNS)
    first_line = 2 if has_header else 1
    return Candles(
        ts=timestamp_column(frame, "open_time", source, first_line),
        open=numeric_column(frame, "open", "open", source, first_line),
        high=numeric_column(frame, "high", "high", source, first_line),
        low=numeric_column(frame, "low", "low", source, first_line),
        close=numeric_column(frame, "close", "close", source, first_line),
        volume=numeric_column(frame, "volume", "volume", source, first_line),
        exchange=exchange,
        symbol=symbol,
        timeframe=timeframe,
    )
