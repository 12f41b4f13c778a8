"""A local Coinbase Advanced Trade server: ``GET /api/v3/brokerage/market/products`` (one real-format SPOT product)
and the ``level2`` WebSocket channel (``l2_data`` snapshot, then ``update`` events; ``sequence_num`` per connection),
for the unmodified ccxt.pro ``coinbase`` client (``client(server)``).

Data: ``venue_base.coinbase_book15_tape`` — the real Coinbase BTC-USD 15-level book (1-minute snapshots,
2021-04-17), its level2 updates DERIVED as the changes between consecutive real snapshots.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from aiohttp import web

from pivotal.data.orderbook.venues import number_text
from pivotal.testexchange.venue_base import BookStep, BookTape, Socket, VenueServer

__all__ = ["CoinbaseServer", "client"]


def _iso(ms: int) -> str:
    return pd.Timestamp(ms, unit="ms", tz="UTC").strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


class CoinbaseServer(VenueServer):
    ws_path = "/ws"
    name = "coinbase"

    def __init__(self, tape: BookTape, **options: Any) -> None:
        super().__init__(tape, **options)

    def rest_routes(self, app: web.Application) -> None:
        async def products(request: web.Request) -> web.Response:
            if request.query.get("product_type") == "FUTURE":
                return web.json_response({"products": [], "num_products": 0})
            base, quote = self.tape.symbol.split("-")
            product = {
                "product_id": self.tape.symbol, "price": number_text(float(self.tape.bids[0, 0])),
                "base_increment": "0.00000001", "quote_increment": "0.01", "quote_min_size": "1",
                "quote_max_size": "150000000", "base_min_size": "0.00000001", "base_max_size": "3400",
                "base_name": "Bitcoin", "quote_name": "US Dollar", "watched": False, "is_disabled": False,
                "new": False, "status": "online", "cancel_only": False, "limit_only": False, "post_only": False,
                "trading_disabled": False, "auction_mode": False, "product_type": "SPOT",
                "quote_currency_id": quote, "base_currency_id": base, "fcm_trading_session_details": None,
                "mid_market_price": "", "alias": "", "alias_to": [], "base_display_symbol": base,
                "quote_display_symbol": quote, "view_only": False, "price_increment": "0.01",
                "display_name": self.tape.symbol, "product_venue": "CBE",
            }  # fmt: skip
            return web.json_response({"products": [product], "num_products": 1})

        app.router.add_get("/api/v3/brokerage/market/products", products)

    def _envelope(self, sock: Socket, channel: str, events: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "channel": channel, "client_id": "", "timestamp": _iso(self.event_ms), "sequence_num": sock.sent,
            "events": events,
        }  # fmt: skip

    def on_text(self, sock: Socket, text: str) -> None:
        message = json.loads(text)
        if message.get("type") == "subscribe" and message.get("channel") == "level2":
            ids = list(message.get("product_ids") or [])
            self.send(sock, self._envelope(sock, "subscriptions", [{"subscriptions": {"level2": ids}}]))
            if self.tape.symbol in ids:
                self.subscribe(sock)
        elif message.get("type") == "unsubscribe" and message.get("channel") == "level2":
            sock.subscribed = False
            self.send(sock, self._envelope(sock, "subscriptions", [{"subscriptions": {}}]))

    @staticmethod
    def _rows(bids: Any, asks: Any, stamp: str) -> list[dict[str, str]]:
        rows = [
            {"side": "bid", "event_time": stamp, "price_level": number_text(p), "new_quantity": number_text(q)} for p, q in bids
        ]
        rows += [
            {"side": "offer", "event_time": stamp, "price_level": number_text(p), "new_quantity": number_text(q)} for p, q in asks
        ]
        return rows

    def snapshot_message(self, sock: Socket) -> dict[str, Any]:
        bids, asks = self.book.top(10**6)
        event = {"type": "snapshot", "product_id": self.tape.symbol, "updates": self._rows(bids, asks, _iso(self.event_ms))}
        return self._envelope(sock, "l2_data", [event])

    def step_message(self, sock: Socket, step: BookStep, prev_id: int, corrupt: bool) -> dict[str, Any]:
        event = {
            "type": "update",
            "product_id": self.tape.symbol,
            "updates": self._rows(step.bids, step.asks, _iso(step.event_ms)),
        }
        return self._envelope(sock, "l2_data", [event])


def client(server: CoinbaseServer, timeout_ms: int = 3000) -> Any:
    """The unmodified ccxt.pro ``coinbase`` client pointed at ``server`` (REST markets and the WebSocket)."""
    import ccxt.pro

    ex = ccxt.pro.coinbase({"timeout": timeout_ms, "has": {"fetchCurrencies": False}})
    ex.urls["api"]["rest"] = server.url
    ex.urls["api"]["ws"] = server.ws_url
    return ex
