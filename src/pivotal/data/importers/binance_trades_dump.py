"""data.binance.vision trade dumps: ``BTCUSDT-trades-2024-01.csv`` or ``.zip``.

Spot: ``id, price, qty, quote_qty, time, is_buyer_maker, is_best_match`` without header (time in µs since 2025);
USD-M futures: ``id, price, qty, quote_qty, time, is_buyer_maker`` with a header.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from pivotal.data.importers.base import ImportFormatError, TradeBatch, numeric_column, timestamp_column
from pivotal.data.importers.binance_dump import LINEAR_EXCHANGES
from pivotal.data.importers.streaming import CHUNK_ROWS, Columns, dump_chunks
from pivotal.data.symbols import unified_symbol
from pivotal.data.trades import Trades

TRADE_COLUMNS = ("id", "price", "qty", "quote_qty", "time", "is_buyer_maker", "is_best_match")
_NAME_RE = re.compile(r"^(?P<raw>[A-Z0-9]+)-trades-(?P<date>\d{4}-\d{2}(?:-\d{2})?)\.(?:csv|zip)$")
_BOOL = {"true": True, "false": False}


def is_binance_trades_dump(path: Path) -> bool:
    return _NAME_RE.match(path.name) is not None


def read_binance_trades_dump(
    path: Path, exchange: str | None = None, symbol: str | None = None, chunk_rows: int = CHUNK_ROWS
) -> TradeBatch:
    """Parse one trades dump, streamed in chunks of ``chunk_rows`` rows (a trade is 33 bytes once parsed)."""
    exchange = exchange or "binance"
    if symbol is None:
        m = _NAME_RE.match(path.name)
        if m is None:
            raise ImportFormatError(f"{path}: not a Binance trades dump name like BTCUSDT-trades-2024-01.zip; pass --symbol")
        symbol = unified_symbol("linear" if exchange in LINEAR_EXCHANGES else "spot", m["raw"])
    columns = Columns()
    with dump_chunks(path, chunk_rows) as (first_line, chunks):
        for offset, frame in chunks:
            columns.add(**_trade_columns(frame, str(path), first_line + offset))
    trades = Trades(
        ts=columns.join("ts", np.int64),
        trade_id=columns.join("trade_id", np.int64),
        price=columns.join("price", np.float64),
        amount=columns.join("amount", np.float64),
        is_buyer_maker=columns.join("is_buyer_maker", np.bool_),
        exchange=exchange,
        symbol=symbol,
    )
    return TradeBatch(trades, str(path))


def _trade_columns(frame: pd.DataFrame, source: str, first_line: int) -> dict[str, np.ndarray]:
    """The stored fields of one chunk of trade rows; ``first_line`` is the file line of its first row."""
    if frame.shape[1] not in (6, 7):
        raise ImportFormatError(f"{source}: expected 6 or 7 trade columns ({', '.join(TRADE_COLUMNS)}), found {frame.shape[1]}")
    frame.columns = list(TRADE_COLUMNS[: frame.shape[1]])
    ids = numeric_column(frame, "id", "trade_id", source, first_line)
    if np.isnan(ids).any():
        raise ImportFormatError(f"{source}: line {first_line + int(np.flatnonzero(np.isnan(ids))[0])}, field trade_id: empty")
    return {
        "ts": timestamp_column(frame, "time", source, first_line, exact=False),  # µs trade times: the store keeps ms
        "trade_id": ids.astype(np.int64),
        "price": numeric_column(frame, "price", "price", source, first_line),
        "amount": numeric_column(frame, "qty", "amount", source, first_line),
        "is_buyer_maker": _booleans(frame["is_buyer_maker"], source, first_line),
    }


def _booleans(text: pd.Series, source: str, first_line: int) -> np.ndarray:
    mapped = text.str.strip().str.lower().map(_BOOL)
    if mapped.isna().any():
        i = int(np.flatnonzero(mapped.isna().to_numpy())[0])
        raise ImportFormatError(f"{source}: line {first_line + i}, field is_buyer_maker: {text.iloc[i]!r} is not True/False")
    return mapped.to_numpy(bool)
