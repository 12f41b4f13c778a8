"""Coinbase Advanced Trade ``level2`` (``l2_data`` messages) read from ccxt.pro ``coinbase``'s raw messages.

Wire format (https://docs.cdp.coinbase.com/advanced-trade/docs/ws-channels, level2): ``{"channel": "l2_data",
"timestamp", "sequence_num", "events": [{"type": "snapshot" | "update", "product_id", "updates": [{"side": "bid" |
"offer", "event_time", "price_level", "new_quantity"}]}]}``. ``sequence_num`` counts every message of the connection
(subscription replies and heartbeats included), so the tap wraps ``handle_message`` (all channels) and checks it
there; a jump is a gap for every book of that connection. After a gap the chain goes on from the number received
(the resubscription's snapshot restores the book).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pivotal.data.orderbook.venues import BookUpdate, iso_ms
from pivotal.runtime.venues.base import Parsed

__all__ = ["CoinbaseProtocol"]


class CoinbaseProtocol:
    exchange_id = "coinbase"
    connection_sequence = True
    client_resyncs_gaps = False
    handler = "handle_message"

    def __init__(self) -> None:
        self._last: dict[int, int] = {}  # id(ccxt client) -> last sequence_num on that connection

    def parse(self, client: Any, message: Any) -> Parsed:
        if not isinstance(message, dict) or "sequence_num" not in message:
            return Parsed([])
        seq = int(message["sequence_num"])
        key = id(client)
        last = self._last.get(key)
        self._last[key] = seq  # each connection (client) has its own chain
        gap = None if last is None or seq == last + 1 else (last + 1, seq)
        if message.get("channel") != "l2_data":
            return Parsed([], gap)
        stamp = message.get("timestamp")
        event_ms = iso_ms(stamp) if isinstance(stamp, str) else None
        updates = []
        for event in message.get("events") or []:
            rows = event.get("updates") or []
            bids = [(float(r["price_level"]), float(r["new_quantity"])) for r in rows if r.get("side") == "bid"]
            asks = [(float(r["price_level"]), float(r["new_quantity"])) for r in rows if r.get("side") != "bid"]
            updates.append(
                BookUpdate(
                    str(event.get("product_id")),
                    event.get("type") == "snapshot",
                    seq,
                    None,
                    np.asarray(bids, np.float64).reshape(-1, 2),
                    np.asarray(asks, np.float64).reshape(-1, 2),
                    event_ms,
                )
            )
        return Parsed(updates, gap)
