"""A local Bybit v5 server: ``GET /v5/market/instruments-info?category=spot`` (one real-format instrument) and the
public spot WebSocket (``/v5/public/spot``: ``subscribe`` → ``orderbook.50.<symbol>`` snapshot, then deltas with
``u`` + 1 each; ``ping``/``pong``), for the unmodified ccxt.pro ``bybit`` client (``client(server)``).

There is no Bybit depth data in ``../shared/data``: the tests replay the RECORDED BINANCE capture through this server
(``venue_base.binance_tape``) to test the Bybit *protocol* adapter; the venue is named so in every report and it is
never Bybit market data. ``seq`` carries the Binance ``u`` so each step can be matched to the recorded bookTicker.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from aiohttp import web

from pivotal.data.orderbook.venues import number_text
from pivotal.testexchange.venue_base import BookStep, Socket, VenueServer

__all__ = ["BybitServer", "client"]


class BybitServer(VenueServer):
    ws_path = "/v5/public/spot"
    name = "bybit"

    def rest_routes(self, app: web.Application) -> None:
        async def instruments(request: web.Request) -> web.Response:
            rows = []
            if request.query.get("category") == "spot":
                sym = self.tape.symbol
                rows.append({
                    "symbol": sym, "baseCoin": sym[:-4], "quoteCoin": sym[-4:], "innovation": "0", "status": "Trading",
                    "marginTrading": "both", "stTag": "0",
                    "lotSizeFilter": {"basePrecision": "0.000001", "quotePrecision": "0.00000001", "minOrderQty": "0.000048",
                                      "maxOrderQty": "71.73956243", "minOrderAmt": "1", "maxOrderAmt": "2000000"},
                    "priceFilter": {"tickSize": "0.01"}, "riskParameters": {"limitParameter": "0.03", "marketParameter": "0.03"},
                })  # fmt: skip
            body = {
                "retCode": 0, "retMsg": "OK",
                "result": {"category": request.query.get("category", ""), "list": rows, "nextPageCursor": ""},
                "retExtInfo": {}, "time": self.event_ms,
            }  # fmt: skip
            return web.json_response(body)

        app.router.add_get("/v5/market/instruments-info", instruments)

    def on_text(self, sock: Socket, text: str) -> None:
        message = json.loads(text)
        op = message.get("op")
        conn = sock.info.setdefault("conn_id", secrets.token_hex(8))
        if op == "ping":
            self.send(sock, {"success": True, "ret_msg": "pong", "conn_id": conn, "req_id": message.get("req_id"), "op": "ping"})
        elif op == "unsubscribe":
            sock.subscribed = False
            self.send(
                sock, {"success": True, "ret_msg": "", "conn_id": conn, "req_id": message.get("req_id"), "op": "unsubscribe"}
            )
        elif op == "subscribe":
            self.send(sock, {"success": True, "ret_msg": "", "conn_id": conn, "req_id": message.get("req_id"), "op": "subscribe"})
            topics = message.get("args") or []
            for topic in topics:
                if str(topic).startswith("orderbook.") and str(topic).endswith("." + self.tape.symbol):
                    sock.info["topic"] = topic
                    sock.info["u"] = 1  # Bybit's u: a per-topic update counter, 1 at the snapshot of a new subscription
                    self.subscribe(sock)

    @staticmethod
    def _rows(levels: Any) -> list[list[str]]:
        return [[number_text(p), number_text(q)] for p, q in levels]

    def snapshot_message(self, sock: Socket) -> dict[str, Any]:
        bids, asks = self.book.top(10**6)
        data = {"s": self.tape.symbol, "b": self._rows(bids), "a": self._rows(asks), "u": sock.info["u"], "seq": self.update_id}
        return {"topic": sock.info["topic"], "type": "snapshot", "ts": self.event_ms, "data": data, "cts": self.event_ms}

    def step_message(self, sock: Socket, step: BookStep, prev_id: int, corrupt: bool) -> dict[str, Any]:
        sock.info["u"] += 1
        data = {
            "s": self.tape.symbol,
            "b": self._rows(step.bids),
            "a": self._rows(step.asks),
            "u": sock.info["u"],
            "seq": step.update_id,
        }
        return {"topic": sock.info["topic"], "type": "delta", "ts": step.event_ms, "data": data, "cts": step.event_ms}

    def skip(self, sock: Socket) -> None:
        sock.sent += 1
        sock.info["u"] += 1


def client(server: BybitServer, timeout_ms: int = 3000) -> Any:
    """The unmodified ccxt.pro ``bybit`` client (spot markets only) pointed at ``server``."""
    import ccxt.pro

    ex = ccxt.pro.bybit(
        {"timeout": timeout_ms, "has": {"fetchCurrencies": False}, "options": {"fetchMarkets": {"types": ["spot"]}}}
    )
    ex.urls["api"]["public"] = server.url
    ex.urls["api"]["private"] = server.url
    ex.urls["api"]["ws"]["public"]["spot"] = server.ws_url
    return ex
