"""Per-venue order-book adapters of the consolidator (one wire format per file; ``base.SocketBookFeed`` runs them)."""

from __future__ import annotations

from pivotal.runtime.venues.base import FeedState, Parsed, SocketBookFeed, VenueProtocol
from pivotal.runtime.venues.bybit import BybitProtocol
from pivotal.runtime.venues.coinbase import CoinbaseProtocol
from pivotal.runtime.venues.okx import OkxProtocol

PROTOCOLS: dict[str, type[CoinbaseProtocol] | type[BybitProtocol] | type[OkxProtocol]] = {
    "coinbase": CoinbaseProtocol,
    "bybit": BybitProtocol,
    "okx": OkxProtocol,
}

__all__ = [
    "PROTOCOLS",
    "BybitProtocol",
    "CoinbaseProtocol",
    "FeedState",
    "OkxProtocol",
    "Parsed",
    "SocketBookFeed",
    "VenueProtocol",
]
