"""Tiny hand-written bars and a scripted strategy for the risk tests."""

from __future__ import annotations

import numpy as np

from pivotal.core.orders import Bar, Fill, Order
from pivotal.data.candles import Candles
from pivotal.strategies.base import BarContext

MIN = 60_000
HOUR = 3_600_000


def bar(i: int, close: float, *, symbol: str = "BTC/USDT", tf: str = "1m", step: int = MIN, t0: int = 0) -> Bar:
    """Bar ``i`` of a gapless series (open time ``t0 + i*step``); OHLC all equal to ``close`` unless said."""
    ts = t0 + i * step
    return Bar(i, ts, close, close, close, close, 1.0, symbol, tf, ts + step)


def candles(closes: list[float], *, symbol: str = "", tf: str = "1h", step: int = HOUR) -> Candles:
    """Bars whose open is the previous close (gapless); high/low span open and close."""
    c = np.asarray(closes, dtype=np.float64)
    o = np.r_[c[:1], c[:-1]]
    ts = np.arange(len(c), dtype=np.int64) * step
    return Candles(ts, o, np.maximum(o, c), np.minimum(o, c), c, np.ones(len(c)), symbol=symbol, timeframe=tf)


def fill(kind: str, direction: int, price: float, qty: float = 1.0, *, symbol: str = "BTC/USDT", ts: int = 0) -> Fill:
    return Fill(kind, direction, 0, ts, price, None, symbol, qty)  # type: ignore[arg-type]


class Scripted:
    """Places given orders at given bar indices."""

    def __init__(self, orders: dict[int, list[Order]]) -> None:
        self.orders = orders
        self.fills: list[Fill] = []

    def on_bar(self, ctx: BarContext) -> list[Order]:
        return self.orders.get(ctx.bar.index, [])

    def on_fill(self, f: Fill) -> None:
        self.fills.append(f)
