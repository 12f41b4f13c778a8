"""Public REST: ping, time, exchangeInfo, klines, depth, trades — replayed from the recorded data as of the replay
clock. Only closed bars are served (the recorded values of a still-open bar would reveal its future)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from aiohttp import web

from pivotal.core.timeframes import TIMEFRAMES
from pivotal.testexchange import wire
from pivotal.testexchange.markets import USDM_RULES, symbol_info, usdm_symbol_info


def _compact(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"))


def respond(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """JSON as Binance writes it (compact)."""
    return web.json_response(body, status=status, headers=headers, dumps=_compact)


def binance_error(status: int, code: int, msg: str, headers: dict[str, str] | None = None) -> web.Response:
    return respond({"code": code, "msg": msg}, status, headers)


def _limit(query: Any, default: int, maximum: int) -> int:
    return max(1, min(int(query.get("limit", default)), maximum))


class PublicHandlers:
    def __init__(self, state: Any) -> None:
        self.state = state

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/v3/ping", self.ping),
            web.get("/api/v3/time", self.time),
            web.get("/api/v3/exchangeInfo", self.exchange_info),
            web.get("/api/v3/klines", self.klines),
            web.get("/api/v3/depth", self.depth),
            web.get("/api/v3/trades", self.trades),
        ]

    def usdm_routes(self) -> list[web.RouteDef]:
        """USD-M (``/fapi/v1``): the market-data endpoints ccxt's ``binanceusdm`` needs to load markets, take depth
        snapshots and read recent trades (no orders: that venue replays market data only)."""
        return [
            web.get("/fapi/v1/ping", self.ping),
            web.get("/fapi/v1/time", self.time),
            web.get("/fapi/v1/exchangeInfo", self.usdm_exchange_info),
            web.get("/fapi/v1/depth", self.usdm_depth),
            web.get("/fapi/v1/trades", self.trades),
        ]

    async def usdm_exchange_info(self, request: web.Request) -> web.Response:
        rules = [USDM_RULES[s] for s in self.state.markets if s in USDM_RULES]
        return respond(
            {
                "timezone": "UTC",
                "serverTime": self.state.now(),
                "futuresType": "U_MARGINED",
                "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400}],
                "exchangeFilters": [],
                "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
                "symbols": [usdm_symbol_info(r) for r in rules],
            }
        )

    async def usdm_depth(self, request: web.Request) -> web.Response:
        """As ``/api/v3/depth`` plus the message time ``E`` and transaction time ``T`` of the book served (the last
        replayed diff's, else the recorded snapshot's)."""
        response = await self.depth(request)
        if response.status != 200 or response.text is None:
            return response
        body = json.loads(response.text)
        book = self.state.books[request.query["symbol"]]
        d = book.depth
        i = getattr(book, "applied", -1)
        if i >= 0 and d.msg_tx is not None:
            event, tx = int(d.msg_ts[i]), int(d.msg_tx[i])
        else:
            event, tx = d.snapshot_event_ms or d.snapshot_ms, d.snapshot_tx_ms or d.snapshot_ms
        return respond({"lastUpdateId": body["lastUpdateId"], "E": event, "T": tx, "bids": body["bids"], "asks": body["asks"]})

    async def ping(self, request: web.Request) -> web.Response:
        return respond({})

    async def time(self, request: web.Request) -> web.Response:
        return respond({"serverTime": self.state.now()})

    async def exchange_info(self, request: web.Request) -> web.Response:
        wanted = {request.query["symbol"]} if "symbol" in request.query else set(json.loads(request.query.get("symbols", "[]")))
        if wanted - set(self.state.rules):
            return binance_error(400, -1121, "Invalid symbol.")
        return respond(
            {
                "timezone": "UTC",
                "serverTime": self.state.now(),
                "rateLimits": [
                    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
                    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                ],
                "exchangeFilters": [],
                "symbols": [symbol_info(r) for r in self.state.rules.values() if not wanted or r.symbol in wanted],
            }
        )

    def _symbol(self, request: web.Request) -> str | None:
        symbol = request.query.get("symbol", "")
        return symbol if symbol in self.state.markets else None

    async def klines(self, request: web.Request) -> web.Response:
        q = request.query
        symbol, interval = self._symbol(request), q.get("interval", "")
        if symbol is None:
            return binance_error(400, -1121, "Invalid symbol.")
        data = self.state.markets[symbol]
        if interval not in TIMEFRAMES:
            return binance_error(400, -1120, "Invalid interval.")
        if interval not in data.klines:
            served = ", ".join(data.klines)
            return binance_error(400, -1120, f"Invalid interval. (the test exchange replays only recorded {served} klines)")
        self.state.catch_up()
        c = data.klines[interval]
        limit = _limit(q, 500, 1000)
        closed_by = self.state.now() - TIMEFRAMES[interval]  # a bar is closed once ts + timeframe <= now
        end = min(int(q.get("endTime", closed_by)), closed_by)
        hi = int(np.searchsorted(c.ts, end, side="right"))
        if "startTime" in q:
            lo = int(np.searchsorted(c.ts, int(q["startTime"]), side="left"))
            rows = range(lo, min(hi, lo + limit))
        else:
            rows = range(max(0, hi - limit), hi)
        return respond([wire.kline_row(c, i, interval) for i in rows])

    async def depth(self, request: web.Request) -> web.Response:
        symbol = self._symbol(request)
        if symbol is None:
            return binance_error(400, -1121, "Invalid symbol.")
        self.state.catch_up()
        book = self.state.books.get(symbol)
        if book is None or self.state.now() < book.depth.snapshot_ms:
            return binance_error(400, -1, f"test exchange: no recorded {symbol} order book at replay time {self.state.now()}")
        limit = _limit(request.query, 100, 5000)
        bids = sorted(book.bids.items(), reverse=True)[:limit]
        asks = sorted(book.asks.items())[:limit]
        return respond(
            {
                "lastUpdateId": book.last_update_id,
                "bids": [[wire.num(p), wire.num(q)] for p, q in bids],
                "asks": [[wire.num(p), wire.num(q)] for p, q in asks],
            }
        )

    async def trades(self, request: web.Request) -> web.Response:
        symbol = self._symbol(request)
        if symbol is None:
            return binance_error(400, -1121, "Invalid symbol.")
        tr = self.state.markets[symbol].trades
        if tr is None:
            return respond([])
        hi = int(np.searchsorted(tr.ts, self.state.now(), side="right"))
        recent = int(np.searchsorted(tr.ts, self.state.now() - 3_600_000, side="left"))  # not trades of another capture
        lo = max(recent, hi - _limit(request.query, 500, 1000))
        return respond([wire.trade_rest(tr, i) for i in range(lo, hi)])
