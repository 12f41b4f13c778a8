"""Columnar candle series: one numpy array per field, no per-candle Python objects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

FIELDS = ("ts", "open", "high", "low", "close", "volume")


@dataclass(frozen=True)
class Candles:
    """OHLCV bars sorted by open time ``ts`` (UTC epoch ms); prices in quote, volume in base units.

    ``close_ts`` of bar i is ``ts[i] + timeframe_ms``: a candle is *closed* at time t iff close_ts <= t.
    """

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    exchange: str = ""
    symbol: str = ""
    timeframe: str = ""
    meta: dict[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        n = len(self.ts)
        for name in FIELDS[1:]:
            if len(getattr(self, name)) != n:
                raise ValueError(f"Candles.{name} has {len(getattr(self, name))} rows, ts has {n}")

    def __len__(self) -> int:
        return len(self.ts)

    @classmethod
    def from_columns(cls, columns: Sequence[np.ndarray], exchange: str = "", symbol: str = "", timeframe: str = "") -> Candles:
        """From arrays in ``FIELDS`` order (ts, open, high, low, close, volume)."""
        ts, open_, high, low, close, volume = columns
        return cls(ts, open_, high, low, close, volume, exchange=exchange, symbol=symbol, timeframe=timeframe)

    @classmethod
    def empty(cls, exchange: str = "", symbol: str = "", timeframe: str = "") -> Candles:
        z = np.empty(0)
        return cls(np.empty(0, np.int64), z, z, z, z, z, exchange, symbol, timeframe)

    @classmethod
    def from_frame(cls, df: pd.DataFrame, exchange: str = "", symbol: str = "", timeframe: str = "") -> Candles:
        """From a DataFrame with columns ts (or timestamp), open, high, low, close, volume."""
        ts_col = "ts" if "ts" in df.columns else "timestamp"
        return cls(
            ts=np.ascontiguousarray(df[ts_col].to_numpy(np.int64)),
            open=np.ascontiguousarray(df["open"].to_numpy(np.float64)),
            high=np.ascontiguousarray(df["high"].to_numpy(np.float64)),
            low=np.ascontiguousarray(df["low"].to_numpy(np.float64)),
            close=np.ascontiguousarray(df["close"].to_numpy(np.float64)),
            volume=np.ascontiguousarray(df["volume"].to_numpy(np.float64)),
            exchange=exchange,
            symbol=symbol,
            timeframe=timeframe,
        )

    @classmethod
    def from_arrow(cls, table: pa.Table, exchange: str = "", symbol: str = "", timeframe: str = "") -> Candles:
        ts_col = "ts" if "ts" in table.column_names else "timestamp"

        def col(name: str, dtype: type) -> np.ndarray:
            return np.ascontiguousarray(table.column(name).to_numpy().astype(dtype, copy=False))

        return cls(
            col(ts_col, np.int64),
            col("open", np.float64),
            col("high", np.float64),
            col("low", np.float64),
            col("close", np.float64),
            col("volume", np.float64),
            exchange,
            symbol,
            timeframe,
        )

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({name: getattr(self, name) for name in FIELDS})

    def to_arrow(self) -> pa.Table:
        return pa.table({name: getattr(self, name) for name in FIELDS})

    def slice(self, start: int, stop: int) -> Candles:
        """Rows [start, stop) as views (no copy)."""
        return Candles.from_columns(
            [getattr(self, name)[start:stop] for name in FIELDS],
            exchange=self.exchange,
            symbol=self.symbol,
            timeframe=self.timeframe,
        )

    def equals(self, other: Candles) -> bool:
        return all(np.array_equal(getattr(self, f), getattr(other, f)) for f in FIELDS)
