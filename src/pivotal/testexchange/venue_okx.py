"""A local OKX v5 server: ``GET /api/v5/public/instruments?instType=SPOT`` (one real-format instrument) and the
public WebSocket (``/ws/v5/public``: ``subscribe`` to ``books`` → snapshot, then updates with ``seqId``/``prevSeqId``
and the CRC32 ``checksum`` of the top 25 levels; text ``ping``/``pong``), for the unmodified ccxt.pro ``okx`` client
(``client(server)``).

There is no OKX depth data in ``../shared/data``: the tests replay the RECORDED BINANCE capture through this server
(``venue_base.binance_tape``) to test the OKX *protocol* adapter; the venue is named so in every report and it is
never OKX market data. ``seqId`` is the Binance ``u``.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from aiohttp import web

from pivotal.data.orderbook.venues import number_text, okx_checksum
from pivotal.testexchange.venue_base import BookStep, Socket, VenueServer

__all__ = ["OkxServer", "client"]


class OkxServer(VenueServer):
    ws_path = "/ws/v5/public"
    name = "okx"

    def rest_routes(self, app: web.Application) -> None:
        async def instruments(request: web.Request) -> web.Response:
            rows = []
            if request.query.get("instType") == "SPOT":
                base, quote = self.tape.symbol.split("-")
                rows.append({
                    "alias": "", "baseCcy": base, "category": "1", "ctMult": "", "ctType": "", "ctVal": "", "ctValCcy": "",
                    "expTime": "", "instFamily": "", "instId": self.tape.symbol, "instType": "SPOT", "lever": "10",
                    "listTime": "1548133413000", "lotSz": "0.00000001", "maxIcebergSz": "9999999999", "maxLmtAmt": "1000000",
                    "maxLmtSz": "9999999999", "maxMktAmt": "1000000", "maxMktSz": "", "maxStopSz": "", "maxTriggerSz": "",
                    "maxTwapSz": "", "minSz": "0.00001", "optType": "", "quoteCcy": quote, "settleCcy": "", "state": "live",
                    "stk": "", "tickSz": "0.1", "uly": "", "ruleType": "normal",
                })  # fmt: skip
            return web.json_response({"code": "0", "data": rows, "msg": ""})

        app.router.add_get("/api/v5/public/instruments", instruments)

    def on_text(self, sock: Socket, text: str) -> None:
        if text == "ping":
            self.send(sock, "pong")
            return
        message = json.loads(text)
        conn = sock.info.setdefault("conn_id", secrets.token_hex(4))
        for arg in message.get("args") or []:
            if message.get("op") == "unsubscribe":
                sock.subscribed = False
                self.send(sock, {"event": "unsubscribe", "arg": arg, "connId": conn})
            elif message.get("op") == "subscribe":
                self.send(sock, {"event": "subscribe", "arg": arg, "connId": conn})
                if arg.get("channel") == "books" and arg.get("instId") == self.tape.symbol:
                    self.subscribe(sock)

    @staticmethod
    def _rows(levels: Any) -> list[list[str]]:
        return [[number_text(p), number_text(q), "0", "1"] for p, q in levels]

    def _message(self, action: str, bids: Any, asks: Any, seq: int, prev: int, ts: int, corrupt: bool) -> dict[str, Any]:
        top_b, top_a = self.book.top(25)
        checksum = okx_checksum(top_b, top_a) ^ (1 if corrupt else 0)
        data = {
            "asks": self._rows(asks), "bids": self._rows(bids), "ts": str(ts), "checksum": checksum,
            "prevSeqId": prev, "seqId": seq,
        }  # fmt: skip
        return {"arg": {"channel": "books", "instId": self.tape.symbol}, "action": action, "data": [data]}

    def snapshot_message(self, sock: Socket) -> dict[str, Any]:
        bids, asks = self.book.top(10**6)
        return self._message("snapshot", bids, asks, self.update_id, -1, self.event_ms, False)

    def step_message(self, sock: Socket, step: BookStep, prev_id: int, corrupt: bool) -> dict[str, Any]:
        return self._message("update", step.bids, step.asks, step.update_id, prev_id, step.event_ms, corrupt)


def client(server: OkxServer, timeout_ms: int = 3000) -> Any:
    """The unmodified ccxt.pro ``okx`` client (spot markets only) pointed at ``server``."""
    import ccxt.pro

    ex = ccxt.pro.okx(
        {"timeout": timeout_ms, "has": {"fetchCurrencies": False}, "options": {"fetchMarkets": {"types": ["spot"]}}}
    )
    ex.urls["api"]["rest"] = server.url
    ex.urls["api"]["ws"] = server.url.replace("http://", "ws://") + "/ws/v5"
    return ex
