"""OKX v5 ``books`` read from ccxt.pro ``okx``'s raw messages.

Wire format (https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-order-book-channel): ``{"arg":
{"channel": "books", "instId"}, "action": "snapshot" | "update", "data": [{"asks": [[price, size, "0", orders]],
"bids", "ts", "checksum", "seqId", "prevSeqId"}]}``. An update must carry ``prevSeqId`` = the previous ``seqId``,
and ``checksum`` (CRC32 of the top 25 levels, ``data.orderbook.venues.okx_checksum``) must match the book after it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pivotal.data.orderbook.venues import BookUpdate
from pivotal.runtime.venues.base import Parsed

__all__ = ["OkxProtocol"]


def _levels(rows: Any) -> np.ndarray:
    return np.asarray([(float(r[0]), float(r[1])) for r in rows or []], np.float64).reshape(-1, 2)


class OkxProtocol:
    exchange_id = "okx"
    connection_sequence = False
    client_resyncs_gaps = True  # ccxt.pro okx raises InvalidNonce and resubscribes on its own
    handler = "handle_order_book"

    def parse(self, client: Any, message: Any) -> Parsed:
        if not isinstance(message, dict):
            return Parsed([])
        arg = message.get("arg") or {}
        if not str(arg.get("channel", "")).startswith("books") or message.get("action") not in ("snapshot", "update"):
            return Parsed([])
        snapshot = message["action"] == "snapshot"
        updates = []
        for d in message.get("data") or []:
            checksum = d.get("checksum")
            updates.append(
                BookUpdate(
                    str(arg.get("instId")),
                    snapshot,
                    int(d["seqId"]),
                    None if snapshot else int(d["prevSeqId"]),
                    _levels(d.get("bids")),
                    _levels(d.get("asks")),
                    None if d.get("ts") is None else int(d["ts"]),
                    None if checksum is None else int(checksum),
                )
            )
        return Parsed(updates)
