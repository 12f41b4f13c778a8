"""``CcxtVenue``: orders on a real exchange (testnet, live) through ccxt's unified API — the ``ExchangeVenue`` seam.

Why the synchronous ccxt client: the event engine and the trading node are synchronous (one bar → one decision →
its orders), an order's answer is needed before the next decision anyway, and sync ccxt's ``enableRateLimit``
throttles in the calling thread. The async feeds (ccxt.pro) run beside it; a caller on an event loop wraps a call
in ``asyncio.to_thread``. One venue is used from one thread at a time.

Guarantees:
- every order has a client order id (``OrderIdFactory`` when the request has none; Binance ``newClientOrderId``,
  sent through ccxt's ``clientOrderId`` param), and one id is never placed twice: a timeout, a connection lost or a
  5xx on placement (the exchange may have taken it) is **reconciled first** — the order is looked up by client id
  (Binance ``origClientOrderId``) and only if the exchange answers "no such order" is it sent again, with the same
  id; a "duplicate order" answer is reconciled the same way;
- amount and price are rounded with the market's precision (``amount_to_precision``, ``price_to_precision``) and an
  order under the minimum amount or notional is refused locally, with one line, before any request;
- 429 / 418 / 5xx and network errors are retried with exponential backoff and jitter, honouring ``Retry-After``;
  a wait longer than the policy allows is a ``VenueUnavailable`` instead of a hang;
- exchange refusals become ``Rejected`` results with the exchange's code and message;
- the API key and secret never appear in ``repr``, in an error, or in ccxt's debug log (requests carry the key in a
  header that ccxt logs at DEBUG: this venue routes ccxt's logger through a redactor).
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlparse

from pydantic import SecretStr

from pivotal.config import Settings
from pivotal.core.errors import UserInputError
from pivotal.core.ids import OrderIdFactory
from pivotal.core.orders import Fill
from pivotal.core.vocabulary import OrderSide, OrderStatus, OrderType
from pivotal.execution.exchange_venue import (
    Accepted,
    Balance,
    ExchangeOrder,
    OrderRequest,
    Reconciliation,
    Rejected,
    RejectReason,
    SubmitResult,
    VenueError,
    VenueUnavailable,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_STATUSES = frozenset({418, 429, 500, 502, 503, 504})
_BINANCE_STATUS = {
    "NEW": OrderStatus.NEW,
    "PENDING_NEW": OrderStatus.NEW,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELED,
    "PENDING_CANCEL": OrderStatus.CANCELED,
    "REJECTED": OrderStatus.REJECTED,
    "EXPIRED": OrderStatus.EXPIRED,
    "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
}
_CCXT_STATUS = {"closed": OrderStatus.FILLED, "canceled": OrderStatus.CANCELED, "expired": OrderStatus.EXPIRED,
                "rejected": OrderStatus.REJECTED}  # fmt: skip
_SIGNATURE = re.compile(r"(signature=)[0-9a-fA-F]+")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of transient failures (429/418/5xx, timeouts, lost connections): ``attempts`` tries in all, waiting
    ``base_delay_s * 2**n`` (capped at ``max_delay_s``, with up to ``jitter`` of it added at random) or the
    exchange's ``Retry-After`` when it sent one; a ``Retry-After`` above ``max_retry_after_s`` is not waited out."""

    attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    jitter: float = 0.25
    max_retry_after_s: float = 120.0
    reconcile_lookups: int = 2  # "no such order" answers needed before a lost placement is sent again

    def delay(self, retry: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        base = min(self.max_delay_s, self.base_delay_s * 2**retry)
        return base + random.uniform(0.0, self.jitter * base)


@dataclass(frozen=True, slots=True)
class _Failure:
    """A ccxt exception, classified: ``kind`` is transient (retry), lost (maybe accepted), or an answer."""

    kind: str  # "transient" | "lost" | "not_found" | "duplicate" | "rejected" | "auth" | "other"
    message: str
    code: int | None = None
    status: int | None = None
    retry_after: float | None = None
    reason: RejectReason = RejectReason.OTHER


class _RedactingLogger:
    """Stands in for ccxt's logger: formats the record, removes the key, the secret and request signatures, and
    passes one clean line on (ccxt logs request headers, ``X-MBX-APIKEY`` included, at DEBUG)."""

    def __init__(self, target: logging.Logger, scrub: Callable[[str], str]) -> None:
        self._target, self._scrub = target, scrub

    def _emit(self, level: int, msg: object, *args: object, **_: object) -> None:
        if self._target.isEnabledFor(level):
            try:
                text = str(msg) % args if args else str(msg)
            except (TypeError, ValueError):
                text = " ".join(map(str, (msg, *args)))
            self._target.log(level, "%s", self._scrub(text))

    def debug(self, msg: object, *args: object, **kw: object) -> None:
        self._emit(logging.DEBUG, msg, *args, **kw)

    def info(self, msg: object, *args: object, **kw: object) -> None:
        self._emit(logging.INFO, msg, *args, **kw)

    def warning(self, msg: object, *args: object, **kw: object) -> None:
        self._emit(logging.WARNING, msg, *args, **kw)

    def error(self, msg: object, *args: object, **kw: object) -> None:
        self._emit(logging.ERROR, msg, *args, **kw)

    def exception(self, msg: object, *args: object, **kw: object) -> None:
        self._emit(logging.ERROR, msg, *args, **kw)

    def isEnabledFor(self, level: int) -> bool:
        return self._target.isEnabledFor(level)


def point_rest(client: Any, rest_url: str) -> None:
    """Send every REST base URL of ``client`` (live, testnet and demo sets) to ``rest_url``'s host, keeping each
    path: how testnet mode reaches a local or proxied exchange that speaks the same wire format."""
    base = rest_url.rstrip("/")
    for section in ("api", "test", "demo"):
        table = client.urls.get(section)
        if isinstance(table, dict):
            for key, value in list(table.items()):
                if isinstance(value, str) and value.startswith("http"):
                    table[key] = base + urlparse(value).path


class CcxtVenue:
    """Orders through a synchronous ccxt exchange client (``ccxt.binance`` tested). Build it with
    ``CcxtVenue.from_settings`` (keys from the environment) or hand it a configured client."""

    def __init__(
        self,
        client: Any,
        *,
        ids: OrderIdFactory | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        secrets: Iterable[SecretStr | str] = (),
    ) -> None:
        """``secrets``: values to scrub from every message (the key and secret are taken from ``client`` as well).
        ``sleep`` is injected so tests can record the waits instead of sleeping."""
        self._client = client
        self.exchange = str(getattr(client, "id", "exchange"))
        self.ids = ids or OrderIdFactory("pv")
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        found = [getattr(client, "apiKey", ""), getattr(client, "secret", "")]
        values = [s.get_secret_value() if isinstance(s, SecretStr) else s for s in (*secrets, *found)]
        self._secrets: tuple[SecretStr, ...] = tuple(SecretStr(v) for v in values if v and len(v) >= 4)
        self._status: int | None = None
        self._headers: Mapping[str, str] = {}
        self._body = ""  # the last response's body (its JSON code and message are the exchange's own words)
        self._kinds: dict[str, str] = {}  # client id → fill kind of the orders this venue sent
        self._known: dict[str, str] = {}  # client id → exchange order id
        client.verbose = False  # verbose mode prints request headers (the key) to stdout
        client.logger = _RedactingLogger(logging.getLogger(f"{__name__}.ccxt"), self._scrub)
        original = client.on_rest_response

        def observe(code: Any, reason: Any, url: Any, method: Any, headers: Any, body: Any, *rest: Any) -> Any:
            self._status, self._headers, self._body = int(code), dict(headers or {}), str(body or "")[:2000]
            return original(code, reason, url, method, headers, body, *rest)

        client.on_rest_response = observe

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        exchange: str = "binance",
        *,
        sandbox: bool = False,
        rest_url: str | None = None,
        timeout_ms: int = 10_000,
        ids: OrderIdFactory | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        options: Mapping[str, Any] | None = None,
    ) -> CcxtVenue:
        """A spot venue on ``exchange`` with the API key and secret of ``settings`` (environment only:
        ``PIVOTAL_EXCHANGE_API_KEY`` / ``PIVOTAL_EXCHANGE_API_SECRET``). ``sandbox`` selects the exchange's testnet;
        ``rest_url`` sends the REST calls to another host speaking the same API (the local test exchange)."""
        import ccxt

        key, secret = settings.exchange_api_key, settings.exchange_api_secret
        missing = [n for n, v in (("PIVOTAL_EXCHANGE_API_KEY", key), ("PIVOTAL_EXCHANGE_API_SECRET", secret)) if not v]
        if missing or key is None or secret is None:
            raise UserInputError(f"exchange trading needs API keys in the environment: set {' and '.join(missing)}")
        if exchange not in ccxt.exchanges:
            raise UserInputError(f"unknown exchange {exchange!r} for order routing; ccxt knows e.g. binance, kraken, okx")
        config: dict[str, Any] = {
            "apiKey": key.get_secret_value(),
            "secret": secret.get_secret_value(),
            "enableRateLimit": True,
            "timeout": timeout_ms,
            "options": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}, "fetchMargins": False,
                        "fetchCurrencies": False, **(options or {})},
        }  # fmt: skip
        client = getattr(ccxt, exchange)(config)
        if sandbox:
            client.set_sandbox_mode(True)
        if rest_url:
            point_rest(client, rest_url)
        return cls(client, ids=ids, retry=retry, sleep=sleep, secrets=(key, secret))

    def __repr__(self) -> str:
        return f"CcxtVenue(exchange={self.exchange!r}, ids={self.ids.prefix!r}, keys=***)"

    # --- orders ---------------------------------------------------------------------------------------------------
    def submit(self, request: OrderRequest) -> SubmitResult:
        """Round, check the minimums, place once (reconciling a lost answer by client id), and report the order."""
        cid = request.client_order_id or self.ids.next()
        prepared = self._prepare(request, cid)
        if isinstance(prepared, Rejected):
            log.info("order %s refused before sending: %s", cid, prepared.message)
            return prepared
        type_, amount, price, params = prepared
        if cid in self._known:  # this venue placed it already: the same id is never sent twice
            found = self._lookup(request.symbol, cid)
            if found is not None:
                return self._same_or_mismatch(request, amount, found)
        self._kinds[cid] = request.fill_kind
        retries = 0
        while True:
            self._status, self._headers, self._body = None, {}, ""
            try:
                raw = self._client.create_order(request.symbol, type_, request.side.value, amount, price, params)
                order = self._order(raw, request.symbol)
                self._known[cid] = order.exchange_order_id
                return Accepted(order)
            except Exception as exc:  # every ccxt error is classified; nothing escapes unscrubbed
                failure = self._classify(exc)
            if failure.kind == "rejected":
                return Rejected(cid, failure.reason, failure.message, failure.code)
            if failure.kind == "auth":
                raise VenueError(f"{self.exchange} refused the API key or signature: {failure.message}") from None
            if failure.kind == "duplicate":
                found = self._reconcile_lost(request.symbol, cid)
                if found is None:  # the exchange says duplicate but cannot find it: do not guess
                    return Rejected(cid, RejectReason.OTHER, failure.message, failure.code)
                return self._same_or_mismatch(request, amount, found)
            if failure.kind == "transient" and failure.status in (418, 429):
                pass  # refused before processing: nothing to reconcile
            elif failure.kind in ("transient", "lost"):
                found = self._reconcile_lost(request.symbol, cid)
                if found is not None:
                    log.warning("order %s: placement answer lost (%s); found on %s", cid, failure.message, self.exchange)
                    return Accepted(found, reconciled=True)
            else:
                return Rejected(cid, RejectReason.OTHER, failure.message, failure.code)
            retries = self._wait_or_give_up(failure, retries, f"placing order {cid}")

    def cancel(self, symbol: str, client_order_id: str) -> ExchangeOrder | None:
        """Cancel by client id. An order that filled (or was canceled) first is returned as it ended."""
        with contextlib.suppress(_NotFound):  # unknown or already final (Binance -2011): report its state, if any
            self._call(lambda: self._client.cancel_order(None, symbol, {"origClientOrderId": client_order_id}),
                       f"canceling order {client_order_id}")  # fmt: skip
        return self._lookup(symbol, client_order_id)

    def fetch(self, symbol: str, client_order_id: str) -> ExchangeOrder | None:
        return self._lookup(symbol, client_order_id)

    def reconcile(self, sent: Iterable[tuple[str, str]]) -> Reconciliation:
        """Each (symbol, client id) looked up on the exchange; plus the open orders no pair names."""
        pairs = list(sent)
        found: dict[str, ExchangeOrder] = {}
        missing: list[str] = []
        for symbol, cid in pairs:
            order = self._lookup(symbol, cid)
            if order is None:
                missing.append(cid)
            else:
                found[cid] = order
                self._known[cid] = order.exchange_order_id
        named = {cid for _, cid in pairs}
        symbols = sorted({s for s, _ in pairs})
        open_now = [o for s in symbols for o in self.open_orders(s)] if symbols else self.open_orders()
        return Reconciliation(found, tuple(missing), tuple(o for o in open_now if o.client_order_id not in named))

    def open_orders(self, symbol: str | None = None) -> list[ExchangeOrder]:
        if symbol is None:  # Binance answers for every symbol, at a higher request weight; ccxt warns unless told
            self._client.options["warnOnFetchOpenOrdersWithoutSymbol"] = False
        rows = self._call(lambda: self._client.fetch_open_orders(symbol), "listing open orders")
        return [self._order(r, r.get("symbol") or symbol or "") for r in rows]

    def balances(self) -> dict[str, Balance]:
        raw = self._call(self._client.fetch_balance, "reading balances")
        skip = {"info", "free", "used", "total", "timestamp", "datetime", "debt"}
        return {
            asset: Balance(float(v.get("free") or 0), float(v.get("used") or 0), float(v.get("total") or 0))
            for asset, v in raw.items()
            if asset not in skip and isinstance(v, dict)
        }

    # --- precision and minimums ---------------------------------------------------------------------------------
    def market(self, symbol: str) -> dict[str, Any]:
        markets = self._call(self._client.load_markets, "loading markets")
        if symbol not in markets:
            raise KeyError(symbol)
        return dict(markets[symbol])

    def amount_step(self, symbol: str) -> float | None:
        """The smallest amount increment of ``symbol`` (Binance ``LOT_SIZE stepSize``) from ccxt's market precision,
        whichever precision mode the exchange's ccxt class uses; None when the market states none."""
        import ccxt

        try:
            precision = (self.market(symbol).get("precision") or {}).get("amount")
        except KeyError:
            raise UserInputError(f"{self.exchange} has no spot market {symbol}") from None
        if precision is None:
            return None
        mode = getattr(self._client, "precisionMode", ccxt.DECIMAL_PLACES)
        if mode == ccxt.TICK_SIZE:
            return float(precision)
        if mode == ccxt.DECIMAL_PLACES:
            return float(10.0 ** -int(precision))
        return None  # significant digits: no fixed step

    def _prepare(self, request: OrderRequest, cid: str) -> tuple[str, float, float | None, dict[str, Any]] | Rejected:
        """(ccxt type, rounded amount, rounded price, params), or the one-line reason it cannot be sent."""
        try:
            market = self.market(request.symbol)
        except KeyError:
            return Rejected(cid, RejectReason.UNKNOWN_SYMBOL, f"{self.exchange} has no spot market {request.symbol}")
        c = self._client
        otype = OrderType(request.order_type)
        if otype is not OrderType.MARKET and not (request.price and request.price > 0):
            return Rejected(cid, RejectReason.UNSUPPORTED, f"order {cid}: a {otype.value} order needs a limit price > 0")
        if otype is OrderType.STOP and not (request.stop_price and request.stop_price > 0):
            return Rejected(cid, RejectReason.UNSUPPORTED, f"order {cid}: a stop order needs a stop price > 0")
        try:
            amount = float(c.amount_to_precision(request.symbol, request.quantity))
        except Exception:  # ccxt refuses an amount that rounds to zero
            amount = 0.0
        price = float(c.price_to_precision(request.symbol, request.price)) if otype is not OrderType.MARKET else None
        limits = market.get("limits") or {}
        min_amount = (limits.get("amount") or {}).get("min")
        min_cost = (limits.get("cost") or {}).get("min")
        where = f"order {cid} {request.side.value} {request.symbol}"
        base, quote = market.get("base", ""), market.get("quote", "")
        if amount <= 0 or (min_amount and amount < min_amount):
            text = f"amount {request.quantity:g} rounds to {amount:g}, below the minimum {min_amount or 0:g} {base}"
            return Rejected(cid, RejectReason.BELOW_MINIMUM, f"{where}: {text}; no order sent")
        ref = price if price is not None else request.reference_price
        if ref is None and min_cost:
            ref = self._last_price(request.symbol)
        if min_cost and ref is not None and amount * ref < min_cost:
            text = f"notional {amount:g} x {ref:g} = {amount * ref:.8g} {quote}, below the minimum {min_cost:g} {quote}"
            return Rejected(cid, RejectReason.BELOW_MINIMUM, f"{where}: {text}; no order sent")
        params: dict[str, Any] = {"clientOrderId": cid}
        if otype is OrderType.LIMIT:
            params["timeInForce"] = request.time_in_force or "GTC"
            return "limit", amount, price, params
        if otype is OrderType.STOP:
            params["timeInForce"] = request.time_in_force or "GTC"
            params["stopPrice"] = float(c.price_to_precision(request.symbol, request.stop_price))
            return "STOP_LOSS_LIMIT", amount, price, params
        return "market", amount, None, params

    def _last_price(self, symbol: str) -> float | None:
        """The last closed 1m bar's close: the reference for a market order's notional when none was given."""
        rows = self._call(lambda: self._client.fetch_ohlcv(symbol, "1m", limit=1), "reading the last price")
        return float(rows[-1][4]) if rows else None

    # --- lookups and reconciliation ---------------------------------------------------------------------------------
    def _lookup(self, symbol: str, cid: str) -> ExchangeOrder | None:
        """The order by client id (Binance ``origClientOrderId``), None when the exchange says it has none."""
        try:
            raw = self._call(lambda: self._client.fetch_order(None, symbol, {"origClientOrderId": cid}), f"fetching order {cid}")
        except _NotFound:
            return None
        order = self._order(raw, symbol)
        self._known[cid] = order.exchange_order_id
        return order

    def _reconcile_lost(self, symbol: str, cid: str) -> ExchangeOrder | None:
        """After a placement whose answer was lost: the order if the exchange has it. None only after
        ``reconcile_lookups`` consecutive "no such order" answers (an order can still be on its way in)."""
        for n in range(self.retry.reconcile_lookups):
            found = self._lookup(symbol, cid)
            if found is not None:
                return found
            if n + 1 < self.retry.reconcile_lookups:
                self._sleep(self.retry.delay(n, None))
        return None

    def _same_or_mismatch(self, request: OrderRequest, amount: float, found: ExchangeOrder) -> SubmitResult:
        """The order a reused client id names, if it is this request's order; otherwise a refusal (never a second)."""
        if found.symbol != request.symbol or found.side is not request.side or abs(found.quantity - amount) > 1e-12:
            return Rejected(found.client_order_id, RejectReason.DUPLICATE_MISMATCH,
                            f"client order id {found.client_order_id} already names a {found.side.value} order of "
                            f"{found.quantity:g} {found.symbol} ({found.status.value}); nothing sent")  # fmt: skip
        return Accepted(found, reconciled=True)

    # --- conversion ---------------------------------------------------------------------------------------------------
    def _order(self, raw: Mapping[str, Any], symbol: str) -> ExchangeOrder:
        info = raw.get("info") or {}
        cid = str(raw.get("clientOrderId") or info.get("clientOrderId") or "")
        side = OrderSide(raw["side"])
        filled = float(raw.get("filled") or 0)
        status = _BINANCE_STATUS.get(str(info.get("status", "")).upper())
        if status is None:
            status = _CCXT_STATUS.get(str(raw.get("status")), OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.NEW)
        fills: tuple[Fill, ...] = ()
        fees: dict[str, float] = {}
        oid = str(raw["id"])
        if filled > 0:
            fills, fees = self._fills(symbol, oid, cid, side)
        return ExchangeOrder(
            client_order_id=cid,
            exchange_order_id=oid,
            symbol=str(raw.get("symbol") or symbol),
            side=side,
            order_type=str(raw.get("type") or ""),
            quantity=float(raw.get("amount") or 0),
            price=float(raw["price"]) if raw.get("price") else None,
            status=status,
            filled=filled,
            average=float(raw["average"]) if raw.get("average") else None,
            ts=int(raw.get("timestamp") or info.get("transactTime") or 0),
            fills=fills,
            fees=fees,
        )

    def _fills(self, symbol: str, oid: str, cid: str, side: OrderSide) -> tuple[tuple[Fill, ...], dict[str, float]]:
        """The order's executions (Binance ``myTrades?orderId``), fee converted to quote at the fill price."""
        trades = self._call(lambda: self._client.fetch_my_trades(symbol, params={"orderId": oid}), f"fetching fills of {cid}")
        base, quote = [*symbol.split("/"), ""][:2]
        kind = self._kinds.get(cid) or ("entry" if side is OrderSide.BUY else "exit")
        out: list[Fill] = []
        fees: dict[str, float] = {}
        for t in sorted(trades, key=lambda t: (t.get("timestamp") or 0, str(t.get("id")))):
            price, qty = float(t["price"]), float(t["amount"])
            fee = t.get("fee") or {}
            cost, asset = float(fee.get("cost") or 0), str(fee.get("currency") or "")
            if asset:
                fees[asset] = fees.get(asset, 0.0) + cost
            quote_fee = cost if asset == quote else cost * price if asset == base else 0.0
            out.append(Fill(kind, side.sign, -1, int(t["timestamp"]), price, None, symbol, qty, quote_fee, cid))  # type: ignore[arg-type]
        return tuple(out), fees

    # --- calls, errors, retries ---------------------------------------------------------------------------------------
    def _call(self, fn: Callable[[], T], what: str) -> T:
        """A read or an idempotent write, retried on transient failures; answers become typed errors."""
        retries = 0
        while True:
            self._status, self._headers, self._body = None, {}, ""
            try:
                return fn()
            except Exception as exc:
                failure = self._classify(exc)
            if failure.kind == "not_found":
                raise _NotFound(failure.message)
            if failure.kind == "auth":
                raise VenueError(f"{self.exchange} refused the API key or signature while {what}: {failure.message}") from None
            if failure.kind not in ("transient", "lost"):
                raise VenueError(f"{self.exchange} error while {what}: {failure.message}") from None
            retries = self._wait_or_give_up(failure, retries, what)

    def _wait_or_give_up(self, failure: _Failure, retries: int, what: str) -> int:
        if retries + 1 >= self.retry.attempts:
            raise VenueUnavailable(
                f"{self.exchange} still failing after {retries + 1} tries while {what}: {failure.message}"
            ) from None
        if failure.retry_after is not None and failure.retry_after > self.retry.max_retry_after_s:
            raise VenueUnavailable(
                f"{self.exchange} asks to wait {failure.retry_after:g} s while {what} (limit "
                f"{self.retry.max_retry_after_s:g} s): {failure.message}"
            ) from None
        wait = self.retry.delay(retries, failure.retry_after)
        log.warning("%s: %s; retry %d in %.2f s", what, failure.message, retries + 1, wait)
        self._sleep(wait)
        return retries + 1

    def _classify(self, exc: Exception) -> _Failure:
        """HTTP status (seen by the response hook) and the exchange's JSON code first, ccxt's class second."""
        import ccxt

        status, headers, body = self._status, self._headers, self._body
        self._status, self._headers, self._body = None, {}, ""
        code, msg = _exchange_message(body) if status is not None else (None, "")
        if code is None:
            code, msg = _exchange_message(str(exc))
        message = self._scrub(f"{code}: {msg}" if code is not None else (msg or type(exc).__name__))
        retry_after = _retry_after(headers)
        if status in RETRY_STATUSES or code in (-1003, -1001, -1008, -1006, -1007):
            return _Failure("transient", message, code, status, retry_after)
        if isinstance(exc, ccxt.NetworkError) and not isinstance(exc, ccxt.DDoSProtection | ccxt.RateLimitExceeded):
            # no answer (or a broken one): the request may have been processed
            return _Failure("lost", message or f"{type(exc).__name__} (no answer)", code, status)
        if isinstance(exc, ccxt.DDoSProtection | ccxt.RateLimitExceeded | ccxt.ExchangeNotAvailable):
            return _Failure("transient", message, code, status, retry_after)
        if code in (-2013,) or isinstance(exc, ccxt.OrderNotFound) or (code == -2011 and "Unknown order" in msg):
            return _Failure("not_found", message, code, status)
        if code in (-2014, -2015, -1022) or isinstance(exc, ccxt.AuthenticationError | ccxt.PermissionDenied):
            return _Failure("auth", message, code, status)
        if "duplicate order" in msg.lower():
            return _Failure("duplicate", message, code, status)
        if isinstance(exc, ccxt.InsufficientFunds) or "insufficient balance" in msg.lower():
            return _Failure("rejected", message, code, status, reason=RejectReason.INSUFFICIENT_BALANCE)
        if code == -1013 or "filter failure" in msg.lower():
            return _Failure("rejected", message, code, status, reason=RejectReason.FILTER_FAILURE)
        if code == -1121 or isinstance(exc, ccxt.BadSymbol):
            return _Failure("rejected", message, code, status, reason=RejectReason.UNKNOWN_SYMBOL)
        if isinstance(exc, ccxt.InvalidOrder | ccxt.BadRequest):
            return _Failure("rejected", message, code, status)
        return _Failure("other", message, code, status)

    def _scrub(self, text: str) -> str:
        text = _SIGNATURE.sub(r"\1***", text)
        for s in self._secrets:
            text = text.replace(s.get_secret_value(), "***")
        return " ".join(text.split())


class _NotFound(Exception):
    """The exchange says it has no such order (internal to the venue: callers get None)."""


def _exchange_message(text: str) -> tuple[int | None, str]:
    """Binance-style ``{"code": -2010, "msg": "..."}`` inside a ccxt message, else the message itself."""
    start = text.find("{")
    if start >= 0:
        try:
            body = json.loads(text[start : text.rfind("}") + 1])
            if isinstance(body, dict) and "msg" in body:
                code = body.get("code")
                return (int(code) if isinstance(code, int | str) and str(code).lstrip("-").isdigit() else None), str(body["msg"])
        except ValueError:
            pass
    return None, text


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None
