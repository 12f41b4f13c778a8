"""The historical feed: stored candles of several symbols and timeframes (and trades where present) as one stream
of market events in time order — what a replay session paces and a node trades on.

Order: by ``known_at`` (a bar's close time, a trade's time). Ties, deterministic: bars before trades (a trade printed
at t belongs to the bar that opens at t); among bars the shorter timeframe first (a 1m bar closing at 10:00 before
the 1h bar closing then, so the coarser decision sees the finer bar), then the order the series were given; trades
of one market keep their (time, trade id) order, and markets follow the order given. Within one series the order is
the stored order. Bars keep their index in their loaded series, also after a seek.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from functools import partial
from itertools import count, repeat

import numpy as np

from pivotal.core.errors import UserInputError
from pivotal.core.events import RANK_BAR, RANK_TRADE, BarClosed, MarketEvent, TradeTick
from pivotal.core.orders import Bar
from pivotal.core.timeframes import TIMEFRAMES
from pivotal.data.candles import Candles
from pivotal.data.loaders import load_candles
from pivotal.data.store import MarketStore
from pivotal.data.trades import Trades


class HistoricalFeed:
    """Events of ``candles`` (each with exchange, symbol and timeframe set) and ``trades``, merged in time order."""

    def __init__(self, candles: Sequence[Candles], trades: Sequence[Trades] = ()) -> None:
        self.candles = list(candles)
        self.trades = [t for t in trades if len(t)]
        seen: set[tuple[str, str, str]] = set()
        for c in self.candles:
            if c.timeframe not in TIMEFRAMES:
                raise UserInputError(
                    f"{c.exchange} {c.symbol}: candles need a known timeframe for their close time (got {c.timeframe!r})"
                )
            key = (c.exchange, c.symbol, c.timeframe)
            if key in seen:
                raise UserInputError(f"{' '.join(key)} is given twice; pass each series once")
            seen.add(key)
        self._close_ts = [np.asarray(c.ts, np.int64) + TIMEFRAMES[c.timeframe] for c in self.candles]

    @classmethod
    def from_store(
        cls,
        store: MarketStore,
        exchange: str,
        symbols: Sequence[str],
        timeframes: Sequence[str],
        *,
        start: int | None = None,
        end: int | None = None,
        with_trades: bool = False,
    ) -> HistoricalFeed:
        """Every (symbol, timeframe) pair from the store (bars opening in ``[start, end)``, ``data.loaders``), plus
        each symbol's stored trades in that range when ``with_trades`` (none stored: none emitted)."""
        candles = [load_candles(store, exchange, s, tf, start=start, end=end) for s in symbols for tf in timeframes]
        trades = [store.trades(exchange, s, start, end) for s in symbols] if with_trades else []
        return cls(candles, [t if t.symbol else _named(t, exchange, s) for t, s in zip(trades, symbols, strict=False)])

    # -- Feed -----------------------------------------------------------------------------------------------------
    def span(self) -> tuple[int, int] | None:
        firsts = [int(ct[0]) for ct in self._close_ts if ct.size] + [int(t.ts[0]) for t in self.trades]
        lasts = [int(ct[-1]) for ct in self._close_ts if ct.size] + [int(t.ts[-1]) for t in self.trades]
        return (min(firsts), max(lasts)) if firsts else None

    def count(self, start: int | None = None) -> int:
        n = 0
        for ct in self._close_ts:
            n += ct.size - (0 if start is None else int(np.searchsorted(ct, start, "left")))
        for t in self.trades:
            n += len(t) - (0 if start is None else int(np.searchsorted(t.ts, start, "left")))
        return n

    def events(self, start: int | None = None) -> Iterator[MarketEvent]:
        if len(self.candles) == 1 and not self.trades:  # one bar series: its events as they are, no merge keys
            ct = self._close_ts[0]
            return _bar_events(self.candles[0], ct, 0 if start is None else int(np.searchsorted(ct, start, "left")))
        sources: list[Iterator[tuple[int, int, int, int, MarketEvent]]] = []
        order = 0
        for c, ct in zip(self.candles, self._close_ts, strict=True):
            lo = 0 if start is None else int(np.searchsorted(ct, start, "left"))
            sources.append(_bars(c, ct, lo, TIMEFRAMES[c.timeframe], order))
            order += 1
        for t in self.trades:
            lo = 0 if start is None else int(np.searchsorted(t.ts, start, "left"))
            sources.append(_trades(t, lo, order))
            order += 1
        if len(sources) == 1:
            return (item[4] for item in sources[0])
        return (item[4] for item in heapq.merge(*sources))


def _named(trades: Trades, exchange: str, symbol: str) -> Trades:
    return Trades(trades.ts, trades.trade_id, trades.price, trades.amount, trades.is_buyer_maker, exchange, symbol)


def _bar_events(c: Candles, close_ts: np.ndarray, lo: int) -> Iterator[BarClosed]:
    """``BarClosed`` per bar from row ``lo``, built by ``map``/``zip`` over the columns as Python lists (converted once):
    no Python frame per bar; what is left is allocating the bar and its event (~0.4 us a bar)."""
    cols = [a.tolist() for a in (c.ts[lo:], c.open[lo:], c.high[lo:], c.low[lo:], c.close[lo:], c.volume[lo:])]
    cts = close_ts[lo:].tolist()
    bars = map(partial(tuple.__new__, Bar), zip(count(lo), *cols, repeat(c.symbol), repeat(c.timeframe), cts))
    return map(partial(tuple.__new__, BarClosed), zip(cts, bars, repeat(c.exchange)))


def _bars(c: Candles, close_ts: np.ndarray, lo: int, tf_ms: int, order: int) -> Iterator[tuple[int, int, int, int, MarketEvent]]:
    """(known_at, rank, timeframe ms, series order, event) per bar from row ``lo``: the merge key is the prefix (a
    sequence number would break ties inside one series; its keys are already strictly increasing)."""
    events = _bar_events(c, close_ts, lo)
    return zip(close_ts[lo:].tolist(), repeat(RANK_BAR), repeat(tf_ms), repeat(order), events)


def _trades(t: Trades, lo: int, order: int) -> Iterator[tuple[int, int, int, int, MarketEvent]]:
    ts, ids, px, amt, m = (a[lo:].tolist() for a in (t.ts, t.trade_id, t.price, t.amount, t.is_buyer_maker))
    exchange, symbol = t.exchange, t.symbol
    for i in range(len(ts)):
        yield (ts[i], RANK_TRADE, 0, order, TradeTick(ts[i], exchange, symbol, ts[i], ids[i], px[i], amt[i], m[i]))
