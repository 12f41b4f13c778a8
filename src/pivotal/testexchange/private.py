"""Private REST with Binance's HMAC-SHA256 request signing: orders, open/all orders, my trades, account, and the
user-data-stream listen key.

Signing (Binance SIGNED endpoints): ``X-MBX-APIKEY`` carries the key; ``signature`` is the hex HMAC-SHA256, keyed by
the secret, of the query string concatenated with the request body (without the signature itself); ``timestamp``
must lie within ``recvWindow`` (default 5000 ms, at most 60000) of the server's *wall* clock — the replay clock is
years in the past and a client signs with its own clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import string
import time
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from pivotal.testexchange import wire
from pivotal.testexchange.matching import Reject
from pivotal.testexchange.public import binance_error, respond

FAULT = web.RequestKey("fault", str)  # the REST fault scheduled for this request (set by the server's middleware)


def _strip_signature(raw: str) -> tuple[str, str | None]:
    kept, signature = [], None
    for pair in raw.split("&") if raw else []:
        if pair.startswith("signature="):
            signature = pair[len("signature=") :]
        else:
            kept.append(pair)
    return "&".join(kept), signature


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def check_timestamp(params: dict[str, str]) -> Reject | None:
    try:
        ts = int(params["timestamp"])
        window = int(params.get("recvWindow", 5000))
    except (KeyError, ValueError):
        return Reject(400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.")
    if window > 60000:
        return Reject(400, -1131, "recvWindow must be less than 60000")
    wall = time.time_ns() // 1_000_000
    if ts > wall + 1000 or wall - ts > window:
        return Reject(400, -1021, "Timestamp for this request is outside of the recvWindow.")
    return None


def _client_order_id() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(22))


def _dec(params: dict[str, str], name: str) -> Decimal | None:
    if name not in params or params[name] == "":
        return None
    try:
        return Decimal(params[name])
    except InvalidOperation:
        raise Reject(
            400, -1100, f"Illegal characters found in parameter '{name}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'."
        ) from None


def _rejected(r: Reject) -> web.Response:
    return binance_error(r.status, r.code, r.msg)


class PrivateHandlers:
    def __init__(self, state: Any) -> None:
        self.state = state

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v3/order", self.new_order),
            web.get("/api/v3/order", self.get_order),
            web.delete("/api/v3/order", self.cancel_order),
            web.get("/api/v3/openOrders", self.open_orders),
            web.delete("/api/v3/openOrders", self.cancel_open_orders),
            web.get("/api/v3/allOrders", self.all_orders),
            web.get("/api/v3/myTrades", self.my_trades),
            web.get("/api/v3/account", self.account),
            web.post("/api/v3/userDataStream", self.new_listen_key),
            web.put("/api/v3/userDataStream", self.keep_listen_key),
            web.delete("/api/v3/userDataStream", self.close_listen_key),
        ]

    # --- authentication -------------------------------------------------------------------------------------------------
    def _key_error(self, request: web.Request) -> web.Response | None:
        key = request.headers.get("X-MBX-APIKEY")
        if not key:
            return binance_error(401, -2014, "API-key format invalid.")
        if not hmac.compare_digest(key, self.state.api_key):
            return binance_error(401, -2015, "Invalid API-key, IP, or permissions for action.")
        return None

    async def _signed(self, request: web.Request) -> dict[str, str] | web.Response:
        """The request's parameters once key, signature and timestamp check out; else Binance's error response."""
        error = self._key_error(request)
        if error is not None:
            return error
        body = await request.text() if request.can_read_body else ""
        query_part, sig_q = _strip_signature(request.query_string)
        body_part, sig_b = _strip_signature(body)
        signature = sig_b or sig_q
        if not signature:
            return binance_error(400, -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
        if not hmac.compare_digest(sign(self.state.api_secret, query_part + body_part), signature):
            return binance_error(400, -1022, "Signature for this request is not valid.")
        params = dict(request.query)
        if body:
            params.update(await request.post())  # type: ignore[arg-type]
        params = {k: str(v) for k, v in params.items()}
        late = check_timestamp(params)
        if late is not None:
            return _rejected(late)
        self.state.catch_up()
        return params

    def verify_ws_api(self, params: dict) -> str | None:
        """WebSocket API signing: HMAC of the key-sorted ``k=v&...`` of every parameter except ``signature``."""
        params = {k: str(v) for k, v in params.items()}
        if params.get("apiKey") != self.state.api_key:
            return json.dumps({"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."})
        payload = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "signature")
        if not hmac.compare_digest(sign(self.state.api_secret, payload), params.get("signature", "")):
            return json.dumps({"code": -1022, "msg": "Signature for this request is not valid."})
        late = check_timestamp(params)
        return json.dumps({"code": late.code, "msg": late.msg}) if late else None

    # --- orders -------------------------------------------------------------------------------------------------------
    async def new_order(self, request: web.Request) -> web.StreamResponse:
        params = await self._signed(request)
        if isinstance(params, web.Response):
            return params
        engine, now = self.state.engine, self.state.now()
        try:
            qty = _dec(params, "quantity")
            quote_qty = _dec(params, "quoteOrderQty")
            symbol, type_ = params.get("symbol", ""), params.get("type", "")
            if qty is None and quote_qty is not None and type_ == "MARKET" and symbol in self.state.rules:
                # quoteOrderQty: spend that much quote at the price the order will meet (approximated up front)
                step = self.state.rules[symbol].step_size
                qty = (quote_qty / engine.last_price(symbol, now)).quantize(step, rounding="ROUND_DOWN")
            if qty is None:
                raise Reject(400, -1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.")
            order = engine.place(
                symbol,
                params.get("side", ""),
                type_,
                qty,
                _dec(params, "price"),
                _dec(params, "stopPrice"),
                params.get("timeInForce", ""),
                params.get("newClientOrderId") or _client_order_id(),
                now,
            )
        except Reject as r:
            return _rejected(r)
        if request.get(FAULT) == "timeout_after_accept":
            await asyncio.sleep(self.state.faults.hold_s)  # the client times out; the order stays on the book
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=504)
        return respond(wire.new_order_response(order, now))

    def _find(self, params: dict[str, str]) -> Any:
        oid = params.get("orderId")
        return self.state.engine.find(params.get("symbol", ""), int(oid) if oid else None, params.get("origClientOrderId"))

    async def get_order(self, request: web.Request) -> web.Response:
        params = await self._signed(request)
        if isinstance(params, web.Response):
            return params
        try:
            return respond(wire.order_json(self._find(params)))
        except Reject as r:
            return _rejected(r)

    async def cancel_order(self, request: web.Request) -> web.Response:
        params = await self._signed(request)
        if isinstance(params, web.Response):
            return params
        oid = params.get("orderId")
        try:
            o = self.state.engine.cancel(
                params.get("symbol", ""), int(oid) if oid else None, params.get("origClientOrderId"), self.state.now()
            )
        except Reject as r:
            return _rejected(r)
        body = wire.order_json(o)
        body["origClientOrderId"] = o.client_id
        body["clientOrderId"] = params.get("newClientOrderId") or _client_order_id()
        body["transactTime"] = self.state.now()
        return respond(body)

    async def cancel_open_orders(self, request: web.Request) -> web.Response:
        params = await self._signed(request)
        if isinstance(params, web.Response):
            return params
        symbol = params.get("symbol", "")
        engine = self.state.engine
        open_ids = [o.order_id for o in engine.orders.values() if o.symbol == symbol and o.is_open]
        if not open_ids:
            return binance_error(400, -2011, "Unknown order sent.")
        done = [engine.cancel(symbol, oid, None, self.state.now()) for oid in open_ids]
        return respond([wire.order_json(o) | {"origClientOrderId": o.client_id} for o in done])

    async def open_orders(self, request: web.Request) -> web.Response:
        params = await self._signed(request)
        if isinstance(params, web.Response):
            return params
        symbol = params.get("symbol")
        rows = [o for o in self.state.engine.orders.values() if o.is_open and (symbol is None or o.symbol == symbol)]
        return respond([wire.order_json(o) for o in rows])

    async def all_orders(self, request: web.Request) -> web.Response:
        params = await self._signed(request)
        if isinstance(params, web.Response):
            return params
        symbol = params.get("symbol", "")
        if symbol not in self.state.markets:
            return binance_error(400, -1121, "Invalid symbol.")
        start, end = int(params.get("startTime", 0)), int(params.get("endTime", 2**62))
        from_id = int(params.get("orderId", 0))
        rows = [
            o
            for o in self.state.engine.orders.values()
            if o.symbol == symbol and o.order_id >= from_id and start <= o.time <= end
        ]
        return respond([wire.order_json(o) for o in rows[: int(params.get("limit", 500))]])

    async def my_trades(self, request: web.Request) -> web.Response:
        params = await self._signed(request)
        if isinstance(params, web.Response):
            return params
        symbol = params.get("symbol", "")
        if symbol not in self.state.markets:
            return binance_error(400, -1121, "Invalid symbol.")
        start, end = int(params.get("startTime", 0)), int(params.get("endTime", 2**62))
        order_id, from_id = params.get("orderId"), int(params.get("fromId", 0))
        rows = [
            f
            for f in self.state.engine.trades
            if f.symbol == symbol
            and f.trade_id >= from_id
            and start <= f.time <= end
            and (order_id is None or f.order_id == int(order_id))
        ]
        return respond([wire.my_trade_json(f, symbol) for f in rows[: int(params.get("limit", 500))]])

    async def account(self, request: web.Request) -> web.Response:
        params = await self._signed(request)
        if isinstance(params, web.Response):
            return params
        engine = self.state.engine
        assets = sorted(set(engine.free) | set(engine.locked))
        balances = [{"asset": a, "free": wire.s8(engine.balance(a)[0]), "locked": wire.s8(engine.balance(a)[1])} for a in assets]
        fee_bps = int(engine.taker_fee * 10000)
        return respond(
            {
                "makerCommission": int(engine.maker_fee * 10000),
                "takerCommission": fee_bps,
                "buyerCommission": 0,
                "sellerCommission": 0,
                "commissionRates": {
                    "maker": wire.s8(engine.maker_fee),
                    "taker": wire.s8(engine.taker_fee),
                    "buyer": "0.00000000",
                    "seller": "0.00000000",
                },
                "canTrade": True,
                "canWithdraw": False,
                "canDeposit": False,
                "brokered": False,
                "requireSelfTradePrevention": False,
                "preventSor": False,
                "updateTime": self.state.now(),
                "accountType": "SPOT",
                "balances": balances,
                "permissions": ["SPOT"],
                "uid": 1,
            }
        )

    # --- user data stream (listen key) ------------------------------------------------------------------------------------
    async def new_listen_key(self, request: web.Request) -> web.Response:
        error = self._key_error(request)
        if error is not None:
            return error
        key = secrets.token_hex(30)
        self.state.listen_keys.add(key)
        return respond({"listenKey": key})

    async def keep_listen_key(self, request: web.Request) -> web.Response:
        error = self._key_error(request)
        if error is not None:
            return error
        return respond({})

    async def close_listen_key(self, request: web.Request) -> web.Response:
        error = self._key_error(request)
        if error is not None:
            return error
        self.state.listen_keys.discard(request.query.get("listenKey", ""))
        return respond({})
