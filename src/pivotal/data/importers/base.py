"""What every importer produces: parsed batches ready for one atomic store write, and the errors it raises.

Importers are pure (file -> batch); the dispatcher writes each batch through the ``MarketStore``, whose
validation rejects bad rows naming source, row and field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow as pa

from pivotal.data.candles import Candles
from pivotal.data.store import MarketStore
from pivotal.data.trades import Trades


class ImportFormatError(ValueError):
    """A file cannot be parsed; the message names the file, the line/row and the field."""


class UnsupportedFile(Exception):
    """A recognised file that pivotal deliberately does not import; the message says why."""


class Batch(Protocol):
    """One parsed file, written by one atomic store call."""

    source: str

    @property
    def rows(self) -> int: ...

    @property
    def series(self) -> str: ...

    def write(self, store: MarketStore) -> int: ...


@dataclass(frozen=True)
class CandleBatch:
    candles: Candles
    source: str

    @property
    def rows(self) -> int:
        return len(self.candles)

    @property
    def series(self) -> str:
        c = self.candles
        return f"{c.exchange} {c.symbol} {c.timeframe}"

    def write(self, store: MarketStore) -> int:
        return store.write_candles(self.candles, source=self.source)


@dataclass(frozen=True)
class TradeBatch:
    trades: Trades
    source: str

    @property
    def rows(self) -> int:
        return len(self.trades)

    @property
    def series(self) -> str:
        return f"{self.trades.exchange} {self.trades.symbol} trades"

    def write(self, store: MarketStore) -> int:
        return store.write_trades(self.trades, source=self.source)


@dataclass(frozen=True)
class DepthBatch:
    """Binance L2 rows: ``kind`` is 'book_snapshot' or 'depth_updates' (columns as in the store protocol)."""

    exchange: str
    symbol: str
    kind: str
    frame: pd.DataFrame
    source: str

    @property
    def rows(self) -> int:
        return len(self.frame)

    @property
    def series(self) -> str:
        return f"{self.exchange} {self.symbol} {self.kind}"

    def write(self, store: MarketStore) -> int:
        if self.kind == "book_snapshot":
            return store.write_depth_snapshot(self.exchange, self.symbol, self.frame, source=self.source)
        return store.write_depth_updates(self.exchange, self.symbol, self.frame, source=self.source)


def require_columns(names: list[str], needed: tuple[str, ...], source: str) -> None:
    missing = [c for c in needed if c not in names]
    if missing:
        raise ImportFormatError(f"{source}: missing column(s) {', '.join(missing)}; found {', '.join(names)}")


def require_no_nulls(table: pa.Table, columns: tuple[str, ...], source: str) -> None:
    """Nulls would silently become garbage integers; name the first one instead."""
    for name in columns:
        col = table.column(name)
        if col.null_count:
            row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
            raise ImportFormatError(f"{source}: row {row}, field {name}: empty value")


def numeric_column(frame: pd.DataFrame, column: str, field: str, source: str, first_line: int) -> np.ndarray:
    """Parse one text column as float64; an unparsable cell raises naming file line and field.

    ``first_line`` is the 1-based file line of the frame's first row. Literal 'nan' parses (the store rejects it).
    """
    text = frame[column]
    values = pd.to_numeric(text, errors="coerce").to_numpy(np.float64)
    bad = np.isnan(values) & ~text.astype(str).str.strip().str.lower().isin(("nan",)).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ImportFormatError(f"{source}: line {first_line + i}, field {field}: cannot parse {text.iloc[i]!r} as a number")
    return values


def epoch_ms(values: np.ndarray) -> np.ndarray:
    """Epoch timestamps in s, ms, µs or ns -> ms, unit decided per value by magnitude.

    Binance spot dumps switched from ms to µs in 2025; a 2020s date is ~1.7e9 s, 1.7e12 ms, 1.7e15 µs, 1.7e18 ns.
    """
    v = values.astype(np.int64)
    out = v.copy()
    out = np.where(v < 10**11, v * 1000, out)
    out = np.where((v >= 10**14) & (v < 10**17), v // 1000, out)
    out = np.where(v >= 10**17, v // 1_000_000, out)
    return out.astype(np.int64)


def timestamp_column(frame: pd.DataFrame, column: str, source: str, first_line: int) -> np.ndarray:
    """Numeric epoch timestamps (any unit, see ``epoch_ms``) -> int64 ms; NaN/empty raises naming the line."""
    values = numeric_column(frame, column, "ts", source, first_line)
    if np.isnan(values).any():
        i = int(np.flatnonzero(np.isnan(values))[0])
        raise ImportFormatError(f"{source}: line {first_line + i}, field ts: missing timestamp")
    return epoch_ms(values)
