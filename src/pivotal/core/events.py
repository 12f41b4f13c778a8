"""Market events: what a feed emits, historical or live, in one vocabulary.

Every event carries ``known_at`` (epoch ms): the first moment the event could be known. A closed bar is known at its
close (``bar.close_ts``), a trade at its trade time, an order-book update at its exchange event time. Feeds emit
events in ``known_at`` order, so a consumer never sees a value before it existed. The bar itself is
:class:`pivotal.core.orders.Bar` (the type the engine and strategies already use); ``BarClosed`` adds the exchange and
the known-at time. Events are named tuples: a replay creates one per bar/trade.
"""

from __future__ import annotations

from typing import NamedTuple

from pivotal.core.orders import Bar

# Tie order at equal ``known_at`` (lower first): a bar closed at t is known before a trade printed at t (that trade
# belongs to the next bar), and trades before book updates of the same millisecond.
RANK_BAR, RANK_TRADE, RANK_BOOK = 0, 1, 2


class BarClosed(NamedTuple):
    """A closed bar of ``bar.symbol`` on ``exchange``; ``known_at`` equals ``bar.close_ts``."""

    known_at: int
    bar: Bar
    exchange: str = ""

    @property
    def symbol(self) -> str:
        return self.bar.symbol

    @property
    def timeframe(self) -> str:
        return self.bar.timeframe


class TradeTick(NamedTuple):
    """One trade print; ``is_buyer_maker`` True means the aggressor sold (Binance ``m``). ``known_at`` = ``ts``."""

    known_at: int
    exchange: str
    symbol: str
    ts: int
    trade_id: int
    price: float
    amount: float
    is_buyer_maker: bool


class BookUpdate(NamedTuple):
    """Order-book levels changed at ``known_at``: ``bids``/``asks`` are (price, new absolute quantity) pairs, quantity
    0 removes the level; ``snapshot`` True means the levels replace the whole book. Update ids as the exchange numbers
    them (0 when unknown)."""

    known_at: int
    exchange: str
    symbol: str
    bids: tuple[tuple[float, float], ...]
    asks: tuple[tuple[float, float], ...]
    snapshot: bool = False
    first_update_id: int = 0
    final_update_id: int = 0


MarketEvent = BarClosed | TradeTick | BookUpdate


def event_rank(event: MarketEvent) -> int:
    """The tie rank of an event's kind (see ``RANK_*``)."""
    if isinstance(event, BarClosed):
        return RANK_BAR
    if isinstance(event, TradeTick):
        return RANK_TRADE
    return RANK_BOOK
