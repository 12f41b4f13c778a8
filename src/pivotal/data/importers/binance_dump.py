"""data.binance.vision kline dumps: ``BTCUSDT-1m-2024-01.csv`` or ``.zip`` (12 columns, with or without header).

Since 2025 the spot dumps carry microsecond open times; each value is converted to ms by magnitude. Files are read
as a stream in chunks (``streaming``): memory grows with the compact candles, not with the CSV text.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from pivotal.core.timeframes import TIMEFRAMES
from pivotal.data.candles import Candles
from pivotal.data.importers.base import CandleBatch, ImportFormatError, numeric_column, timestamp_column
from pivotal.data.importers.streaming import CHUNK_ROWS, Columns, dump_chunks
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
    path: Path,
    exchange: str | None = None,
    symbol: str | None = None,
    timeframe: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> CandleBatch:
    """Parse one dump file, streamed in chunks of ``chunk_rows`` rows; exchange defaults to ``binance`` (spot),
    symbol/timeframe come from the file name."""
    exchange = exchange or "binance"
    symbol, timeframe = _series_of(path, exchange, symbol, timeframe)
    return CandleBatch(stream_klines(path, exchange, symbol, timeframe, chunk_rows), str(path))


def stream_klines(path: Path, exchange: str, symbol: str, timeframe: str, chunk_rows: int = CHUNK_ROWS) -> Candles:
    """A kline dump (csv or zip) -> Candles, parsed ``chunk_rows`` rows at a time (only the OHLCV fields are kept)."""
    source = str(path)
    columns = Columns()
    with dump_chunks(path, chunk_rows) as (first_line, chunks):
        for offset, frame in chunks:
            columns.add(**_kline_columns(frame, source, first_line + offset))
    return columns.candles(exchange, symbol, timeframe)


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


def _kline_columns(frame: pd.DataFrame, source: str, first_line: int) -> dict[str, np.ndarray]:
    """The OHLCV columns of one chunk of kline rows; ``first_line`` is the file line of its first row (for messages)."""
    if frame.shape[1] != len(KLINE_COLUMNS):
        raise ImportFormatError(f"{source}: expected {len(KLINE_COLUMNS)} kline columns, found {frame.shape[1]}")
    frame.columns = list(KLINE_COLUMNS)
    return {
        "ts": timestamp_column(frame, "open_time", source, first_line),
        **{name: numeric_column(frame, name, name, source, first_line) for name in ("open", "high", "low", "close", "volume")},
    }
