"""The Parquet layout of ``../shared/data`` (see its PROVENANCE.md): candles, trades and Binance L2 captures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pivotal.data import sql, validation
from pivotal.data.candles import Candles
from pivotal.data.importers.base import (
    CandleBatch,
    DepthBatch,
    ImportBatch,
    ImportFormatError,
    TradeBatch,
    UnsupportedFile,
    arrow_epoch_ms,
    require_columns,
    require_no_nulls,
)
from pivotal.data.symbols import SharedFile, parse_shared_path
from pivotal.data.trades import Trades

CANDLE_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
TRADE_COLUMNS = ("timestamp", "trade_id", "price", "qty", "is_buyer_maker")
# The shared order-book files hold exactly the columns the store keeps (snapshot files have no transaction time).
SNAPSHOT_COLUMNS = validation.SNAPSHOT_COLUMNS
UPDATE_COLUMNS = sql.UPDATE_ROW


def is_shared_file(path: Path) -> bool:
    try:
        parse_shared_path(path)
    except ValueError:
        return False
    return True


def read_shared(path: Path) -> ImportBatch:
    """Parse one file of the shared layout into a batch; raises UnsupportedFile for data the store has no table for."""
    try:
        info = parse_shared_path(path)
    except ValueError as exc:
        raise ImportFormatError(str(exc)) from None
    source = str(path)
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ImportFormatError(f"{path}: not a readable Parquet file ({first}); fix: write or download it again") from None
    if info.kind == "candles":
        return _candles(table, info, source)
    if info.kind == "trades":
        return _trades(table, info, source)
    if info.kind == "book_snapshot":
        return _depth(table, info, source, SNAPSHOT_COLUMNS)
    if info.kind == "depth_updates":
        return _depth(table, info, source, UPDATE_COLUMNS)
    raise UnsupportedFile(f"{info.kind} files are not stored yet (no table for them in the store); skipped")


def _volume_unit(table: pa.Table) -> str:
    raw = (table.schema.metadata or {}).get(b"volume_unit")
    return json.loads(raw) if raw else ""


def _candles(table: pa.Table, info: SharedFile, source: str) -> CandleBatch:
    require_columns(table.column_names, CANDLE_COLUMNS, source)
    unit = _volume_unit(table)
    if "quote" in unit.lower():
        # Exact base volume cannot be recovered from 1m bars (no VWAP); storing an estimate would fabricate data.
        raise UnsupportedFile(
            f"volume is in quote units ({unit!r}, Parquet metadata volume_unit) but pivotal stores base units; "
            "the exact base volume cannot be derived from bars, so this file is not imported"
        )
    require_no_nulls(table, CANDLE_COLUMNS, source)
    ts = arrow_epoch_ms(table.column("timestamp"), source, "timestamp")  # converts Arrow timestamp[us|ns] by unit
    prices = {name: _floats(table, name, source) for name in CANDLE_COLUMNS[1:]}
    o, h, lo, c, v = (prices[name] for name in CANDLE_COLUMNS[1:])
    candles = Candles(ts, o, h, lo, c, v, exchange=info.exchange, symbol=info.symbol, timeframe=info.timeframe or "")
    return CandleBatch(candles, source)


def _floats(table: pa.Table, name: str, source: str) -> np.ndarray:
    """A numeric column as float64; a text or nested column is named instead of failing deep inside numpy."""
    column = table.column(name)
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_decimal(column.type)):
        raise ImportFormatError(f"{source}: field {name}: type {column.type} is not numeric; fix: store {name} as float64")
    return np.ascontiguousarray(column.to_numpy().astype(np.float64))


def _trades(table: pa.Table, info: SharedFile, source: str) -> TradeBatch:
    require_columns(table.column_names, TRADE_COLUMNS, source)
    require_no_nulls(table, TRADE_COLUMNS, source)

    def col(name: str, dtype: type) -> np.ndarray:
        return np.ascontiguousarray(table.column(name).to_numpy().astype(dtype, copy=False))

    trades = Trades(
        arrow_epoch_ms(table.column("timestamp"), source, "timestamp", exact=False),  # trades: kept at ms resolution
        col("trade_id", np.int64),
        col("price", np.float64),
        col("qty", np.float64),
        col("is_buyer_maker", bool),
        info.exchange,
        info.symbol,
    )
    return TradeBatch(trades, source)


def _depth(table: pa.Table, info: SharedFile, source: str, columns: tuple[str, ...]) -> DepthBatch:
    require_columns(table.column_names, columns, source)
    # Keep nullable integer columns (e.g. spot has no transaction time) as integers, not floats.
    frame = table.select(list(columns)).to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    return DepthBatch(info.exchange, info.symbol, info.kind, frame, source)
