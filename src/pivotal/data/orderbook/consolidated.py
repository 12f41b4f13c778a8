"""The consolidated (COBY) book: several venues' books of one instrument merged into one, with each venue's share.

Why: liquidity for BTC/USDT is spread over spot and perpetual venues; the best price to trade or the true depth at a
price is the union, and the cross-venue spread (best bid on one venue above the best ask on another) is a signal of
its own. Pure computation on the venues' top levels (``OrderBook.top``): no I/O, no clock; the caller (the runtime
consolidator) says when a venue's book is fresh enough to include.

Symbols are normalized to ``BASE/QUOTE`` (ccxt's ``BTC/USDT:USDT`` perpetual, Binance's ``BTCUSDT``, Coinbase's
``BTC-USD`` alike) so books of one instrument find each other; different quotes (USD vs USDT) are kept apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from pivotal.core.errors import UserInputError
from pivotal.data.symbols import split_pair

__all__ = ["BookLike", "ConsolidatedBook", "VenueTop", "consolidate", "normalize_symbol"]


class BookLike(Protocol):
    def top(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Best ``n`` levels per side as (k, 2) arrays of (price, qty): bids descending, asks ascending."""
        ...


def normalize_symbol(symbol: str) -> str:
    """``BTC/USDT:USDT`` / ``BTCUSDT`` / ``btc-usdt`` / ``BTC-USDT-SWAP`` / ``BTC/USDT`` → ``BTC/USDT``; ``BTC-USD`` →
    ``BTC/USD`` (the quote is kept: USD and USDT are different instruments)."""
    text = symbol.strip().upper()
    if "/" in text:
        base, _, rest = text.partition("/")
        quote = rest.split(":", 1)[0]
        if base and quote:
            return f"{base}/{quote}"
    elif "-" in text:  # venue ids: Coinbase BTC-USD, OKX BTC-USDT and its perpetual BTC-USDT-SWAP
        parts = text.split("-")
        shape_ok = len(parts) == 2 or (len(parts) == 3 and parts[2] == "SWAP")
        if shape_ok and parts[0].isalnum() and parts[1].isalnum():
            return f"{parts[0]}/{parts[1]}"
    else:
        try:
            base, quote = split_pair(text.replace("_", ""))
            return f"{base}/{quote}"
        except ValueError:
            pass
    raise UserInputError(f"consolidated book: cannot read symbol {symbol!r}; use BASE/QUOTE like BTC/USDT")


@dataclass(frozen=True)
class VenueTop:
    """One venue's best bid and ask (price, qty), None for an empty side."""

    bid: tuple[float, float] | None
    ask: tuple[float, float] | None


@dataclass(frozen=True)
class ConsolidatedBook:
    """``bids``/``asks``: (k, 2) arrays of (price, total qty), best first; ``bid_share``/``ask_share``: (k, n_venues)
    quantity each venue contributes at that price (columns in ``venues`` order)."""

    symbol: str
    venues: tuple[str, ...]
    bids: np.ndarray
    asks: np.ndarray
    bid_share: np.ndarray
    ask_share: np.ndarray
    tops: dict[str, VenueTop]

    @property
    def best_bid(self) -> tuple[float, float, str] | None:
        """(price, qty, venue) of the highest bid across venues (the venue with the most quantity there on a tie)."""
        return self._best(self.bids, self.bid_share)

    @property
    def best_ask(self) -> tuple[float, float, str] | None:
        return self._best(self.asks, self.ask_share)

    def _best(self, side: np.ndarray, share: np.ndarray) -> tuple[float, float, str] | None:
        if not len(side):
            return None
        return float(side[0, 0]), float(side[0, 1]), self.venues[int(np.argmax(share[0]))]

    @property
    def spread(self) -> float | None:
        """Best ask across venues minus best bid across venues; negative when the venues cross (arbitrage)."""
        bb, ba = self.best_bid, self.best_ask
        return None if bb is None or ba is None else ba[0] - bb[0]

    def cross_venue_spread(self) -> dict[tuple[str, str], float]:
        """(bid venue, ask venue) → ask price on the second minus bid price on the first, for every ordered pair of
        different venues with both sides; negative: buy on the ask venue, sell on the bid venue."""
        out: dict[tuple[str, str], float] = {}
        for vb, tb in self.tops.items():
            for va, ta in self.tops.items():
                if vb != va and tb.bid is not None and ta.ask is not None:
                    out[(vb, va)] = ta.ask[0] - tb.bid[0]
        return out

    def depth_share(self, side: str = "bid") -> dict[str, float]:
        """Each venue's fraction of the consolidated quantity on one side (over the levels held)."""
        share = self.bid_share if side == "bid" else self.ask_share
        total = float(share.sum())
        return {v: (float(share[:, i].sum()) / total if total else 0.0) for i, v in enumerate(self.venues)}


def _merge(levels: Sequence[np.ndarray], descending: bool, depth: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(levels)
    rows = [lv for lv in levels if len(lv)]
    if not rows:
        return np.empty((0, 2)), np.empty((0, n))
    prices = np.concatenate([lv[:, 0] for lv in levels])
    qtys = np.concatenate([lv[:, 1] for lv in levels])
    venue = np.concatenate([np.full(len(lv), i) for i, lv in enumerate(levels)])
    unique, inverse = np.unique(prices, return_inverse=True)
    share: np.ndarray = np.zeros((len(unique), n))
    np.add.at(share, (inverse, venue), qtys)
    order = np.arange(len(unique))[::-1] if descending else np.arange(len(unique))
    keep = order[:depth]
    return np.column_stack([unique[keep], share[keep].sum(axis=1)]), share[keep]


def consolidate(symbol: str, books: Mapping[str, BookLike], depth: int = 20) -> ConsolidatedBook:
    """Merge the top ``depth`` levels of each venue's book (``venue → book``, all of the same instrument) into the
    best ``depth`` consolidated levels per side, summing quantities at equal prices."""
    if depth < 1:
        raise UserInputError(f"consolidated book: depth must be at least 1 (got {depth})")
    venues = tuple(books)
    tops = [books[v].top(depth) for v in venues]
    bids, bid_share = _merge([t[0] for t in tops], True, depth)
    asks, ask_share = _merge([t[1] for t in tops], False, depth)
    venue_tops = {
        v: VenueTop((float(b[0, 0]), float(b[0, 1])) if len(b) else None, (float(a[0, 0]), float(a[0, 1])) if len(a) else None)
        for v, (b, a) in zip(venues, tops, strict=True)
    }
    return ConsolidatedBook(normalize_symbol(symbol), venues, bids, asks, bid_share, ask_share, venue_tops)
