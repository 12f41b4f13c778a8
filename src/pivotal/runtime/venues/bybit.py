"""Bybit v5 ``orderbook.{depth}.{symbol}`` read from ccxt.pro ``bybit``'s raw messages.

Wire format (https://bybit-exchange.github.io/docs/v5/websocket/public/orderbook): ``{"topic", "type": "snapshot" |
"delta", "ts", "data": {"s", "b": [[price, size]], "a": [...], "u", "seq"}, "cts"}``; size 0 removes a level. A
delta must carry ``u`` = previous ``u`` + 1; a snapshot (also ``u`` = 1 after a service restart) replaces the book.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pivotal.data.orderbook.venues import BookUpdate
from pivotal.runtime.venues.base import Parsed

__all__ = ["BybitProtocol"]


def _levels(rows: Any) -> np.ndarray:
    return np.asarray([(float(p), float(q)) for p, q, *_ in rows or []], np.float64).reshape(-1, 2)


class BybitProtocol:
    exchange_id = "bybit"
    connection_sequence = False
    client_resyncs_gaps = False
    handler = "handle_order_book"

    def parse(self, client: Any, message: Any) -> Parsed:
        if not isinstance(message, dict) or not str(message.get("topic", "")).startswith("orderbook."):
            return Parsed([])
        data = message.get("data") or {}
        ts = message.get("ts")
        update = BookUpdate(
            str(data.get("s")),
            message.get("type") == "snapshot",
            int(data["u"]),
            None,
            _levels(data.get("b")),
            _levels(data.get("a")),
            None if ts is None else int(ts),
        )
        return Parsed([update])
