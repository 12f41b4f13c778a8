"""Columnar trade prints."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

TRADE_FIELDS = ("ts", "trade_id", "price", "amount", "is_buyer_maker")


@dataclass(frozen=True)
class Trades:
    """Trades sorted by (ts, trade_id). ``is_buyer_maker`` True means the aggressor sold (Binance ``m``)."""

    ts: np.ndarray  # int64 epoch ms
    trade_id: np.ndarray  # int64
    price: np.ndarray  # float64, quote
    amount: np.ndarray  # float64, base
    is_buyer_maker: np.ndarray  # bool
    exchange: str = ""
    symbol: str = ""

    def __len__(self) -> int:
        return len(self.ts)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({name: getattr(self, name) for name in TRADE_FIELDS})

    @classmethod
    def from_frame(cls, df: pd.DataFrame, exchange: str = "", symbol: str = "") -> Trades:
        return cls(
            np.ascontiguousarray(df["ts"].to_numpy(np.int64)),
            np.ascontiguousarray(df["trade_id"].to_numpy(np.int64)),
            np.ascontiguousarray(df["price"].to_numpy(np.float64)),
            np.ascontiguousarray(df["amount"].to_numpy(np.float64)),
            np.ascontiguousarray(df["is_buyer_maker"].to_numpy(bool)),
            exchange,
            symbol,
        )
