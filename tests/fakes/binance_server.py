"""A local HTTP server speaking Binance's public spot REST wire format, serving REAL candles from ../shared/data.

It answers what ccxt's ``binance`` needs for ``load_markets`` + ``fetch_ohlcv`` (/api/v3/ping, /time, /exchangeInfo,
/klines) and can inject faults on a schedule, keyed by the 1-based number of the /klines request:

- ``"429"``: HTTP 429 with ``Retry-After`` (Binance's rate-limit answer)
- ``"500"``: Binance's JSON internal error (code -1001); ``"503"``: the gateway's plain-text Service Unavailable
- ``"slow"``: answers after ``slow_s`` seconds, longer than the client's timeout
- ``"drop"``: sends the headers and part of the body, then closes the connection
- ``"400"``: a permanent client error (Binance code -1100), which must not be retried
- ``"418"``: Binance's IP ban answer (after ignoring 429s), with ``Retry-After``
- ``"html502"``: a proxy's HTML 502 Bad Gateway page; ``"html200"``: status 200 with an HTML body (not JSON)
- ``"empty"``: status 200 with ``[]`` although bars exist (a transient empty page)
- ``"badrow"``: the page's second bar has high and low swapped (high < low), the rest is served as recorded
- ``"duprow"``: the page's second bar is served twice

``time_faults`` and ``exchange_info_faults`` inject ``"500"``, ``"503"``, ``"html502"``, ``"html200"`` or ``"slow"`` into
``/api/v3/time`` and ``/api/v3/exchangeInfo`` the same way (keyed by that endpoint's request number).

The rate limiter is really on when ``min_interval_s > 0``: a request arriving sooner than that after the previous
one is answered 429 with ``Retry-After`` (fractional seconds) and counted in ``rate_limited``; ``ccxt_client`` sets
ccxt's own limiter so that a well-behaved client is never limited.

/klines semantics follow Binance: ``startTime``/``endTime`` bound the bar open time (inclusive), ``limit`` defaults
to 500 (max 1000), only bars opened at or before the server clock ``now_ms`` exist, and the bar containing ``now_ms``
is returned although it is still open. Only the OHLCV fields come from the data; the trade count and quote/taker
volumes, which ccxt ignores, are "0".
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np

from pivotal.core.timeframes import TIMEFRAMES
from pivotal.data.candles import Candles

MAX_LIMIT = 1000
DEFAULT_LIMIT = 500
# ccxt charges each Binance endpoint a cost (a fraction of ``rateLimit`` for /klines, /time); the client's
# rateLimit is scaled so that the cheapest endpoint still waits the server's minimum interval.
RATE_LIMIT_MARGIN = 10.0


@dataclass
class FaultPlan:
    """Faults by /klines request number (1-based); every request is logged in ``requests``."""

    klines_faults: dict[int, str] = field(default_factory=dict)
    slow_s: float = 2.0
    retry_after_s: float = 0
    klines_requests: int = 0
    requests: list[str] = field(default_factory=list)
    served_faults: list[str] = field(default_factory=list)
    time_faults: dict[int, str] = field(default_factory=dict)
    exchange_info_faults: dict[int, str] = field(default_factory=dict)
    time_requests: int = 0
    exchange_info_requests: int = 0
    min_interval_s: float = 0.0
    rate_limited: int = 0
    last_request_at: float | None = None


class FakeBinance:
    """``with FakeBinance({("BTCUSDT", "1m"): candles}) as fake: client = fake.ccxt_client()``."""

    def __init__(
        self,
        series: Mapping[tuple[str, str], Candles],
        now_ms: int | None = None,
        plan: FaultPlan | None = None,
        halted: Collection[str] = (),
    ):
        """``halted``: symbols listed with status BREAK (trading stopped), whose served data may end before ``now_ms``."""
        self.series = dict(series)
        self.halted = set(halted)
        self.now_ms = now_ms if now_ms is not None else max(int(c.ts[-1]) + TIMEFRAMES[tf] for (_, tf), c in series.items())
        self.plan = plan or FaultPlan()
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-binance", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeBinance:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def ccxt_client(self, timeout_ms: int = 1000, rate_limit_ms: int | None = None) -> Any:
        """The real ccxt client; its limiter spaces requests by the server's ``min_interval_s`` unless told otherwise."""
        if rate_limit_ms is None:
            rate_limit_ms = max(1, int(self.plan.min_interval_s * 1000 * RATE_LIMIT_MARGIN))
        return ccxt_client_for(self.url, timeout_ms, rate_limit_ms)

    # --- wire format ------------------------------------------------------------------------------
    def exchange_info(self) -> dict:
        symbols = sorted({sym for sym, _ in self.series})
        return {
            "timezone": "UTC",
            "serverTime": self.now_ms,
            "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}],
            "exchangeFilters": [],
            "symbols": [_symbol_info(s, "BREAK" if s in self.halted else "TRADING") for s in symbols],
        }

    def klines(self, query: Mapping[str, str]) -> tuple[int, object]:
        symbol, interval = query.get("symbol"), query.get("interval")
        if (symbol, interval) not in self.series:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        candles = self.series[(symbol, interval)]
        limit = min(int(query.get("limit", DEFAULT_LIMIT)), MAX_LIMIT)
        ts = candles.ts
        hi = int(np.searchsorted(ts, min(int(query.get("endTime", self.now_ms)), self.now_ms), side="right"))
        if "startTime" in query:
            lo = int(np.searchsorted(ts, int(query["startTime"]), side="left"))
            rows = range(lo, min(hi, lo + limit))
        else:
            rows = range(max(0, hi - limit), hi)
        step = TIMEFRAMES[interval]
        return 200, [_kline(candles, i, step) for i in rows]


def ccxt_client_for(url: str, timeout_ms: int = 1000, rate_limit_ms: int = 1) -> Any:
    """The real ccxt binance client, every REST base URL pointed at ``url``, public spot endpoints only."""
    import ccxt

    client = ccxt.binance(
        {
            "enableRateLimit": True,
            "rateLimit": rate_limit_ms,
            "timeout": timeout_ms,
            "options": {"fetchMarkets": {"types": ["spot"]}, "fetchMargins": False, "fetchCurrencies": False},
        }
    )
    for key, value in list(client.urls["api"].items()):
        client.urls["api"][key] = url + urlparse(value).path
    return client


def _symbol_info(symbol: str, status: str = "TRADING") -> dict:
    base, quote = symbol[:-4], symbol[-4:]  # the fake serves USDT pairs only
    return {
        "symbol": symbol,
        "status": status,
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "orderTypes": ["LIMIT", "MARKET"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "permissions": ["SPOT"],
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000", "tickSize": "0.01000000"},
            {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
            {"filterType": "NOTIONAL", "minNotional": "5.00000000", "maxNotional": "9000000.00000000"},
        ],
    }


def _kline(c: Candles, i: int, step: int) -> list:
    # repr() is the shortest string that parses back to the same float, so served values equal the file exactly.
    t = int(c.ts[i])
    prices = [repr(float(a[i])) for a in (c.open, c.high, c.low, c.close, c.volume)]
    return [t, *prices, t + step - 1, "0", 0, "0", "0", "0"]


BAD_GATEWAY_HTML = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
MAINTENANCE_HTML = "<!DOCTYPE html><html><body>Scheduled maintenance, back soon.</body></html>"


def _damage(rows: list, fault: str) -> list:
    """The page's second bar damaged as an exchange might: high/low swapped, or the bar repeated."""
    if len(rows) < 2:
        return rows
    rows = [list(r) for r in rows]
    if fault == "duprow":
        return [rows[0], rows[1], rows[1], *rows[2:]]
    bar = rows[1]
    bar[2], bar[3] = bar[3], bar[2]  # high <-> low: the served high is below the served low (the real bar has high > low)
    return rows


def _handler_for(fake: FakeBinance) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            return

        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            with fake.lock:
                fake.plan.requests.append(self.path)
                limited = self._rate_limited()
            if limited:
                self._json(429, {"code": -1003, "msg": "Too many requests."}, {"Retry-After": str(fake.plan.min_interval_s)})
            elif url.path == "/api/v3/ping":
                self._json(200, {})
            elif url.path == "/api/v3/time":
                self._endpoint_fault("time", lambda: {"serverTime": fake.now_ms})
            elif url.path == "/api/v3/exchangeInfo":
                self._endpoint_fault("exchange_info", fake.exchange_info)
            elif url.path == "/api/v3/klines":
                self._klines(query)
            else:
                self._json(404, {"code": -1, "msg": f"fake Binance does not serve {url.path}"})

        def _rate_limited(self) -> bool:
            """Called under the lock: is this request too soon after the previous one?"""
            now = time.monotonic()
            plan = fake.plan
            too_soon = (
                plan.min_interval_s > 0 and plan.last_request_at is not None and now - plan.last_request_at < plan.min_interval_s
            )
            plan.last_request_at = now
            if too_soon:
                plan.rate_limited += 1
                plan.served_faults.append("429-rate-limit")
            return too_soon

        def _endpoint_fault(self, name: str, body: Any) -> None:
            with fake.lock:
                count = getattr(fake.plan, f"{name}_requests") + 1
                setattr(fake.plan, f"{name}_requests", count)
                fault = getattr(fake.plan, f"{name}_faults").get(count)
                if fault:
                    fake.plan.served_faults.append(f"{name}:{fault}")
            if fault == "slow":
                time.sleep(fake.plan.slow_s)
            if fault and fault != "slow":
                self._common_fault(fault)
            else:
                self._json(200, body())

        def _common_fault(self, fault: str) -> None:
            if fault == "500":
                self._json(500, {"code": -1001, "msg": "Internal error; unable to process your request."})
            elif fault == "503":
                self._text(503, "Service Unavailable")
            elif fault == "html502":
                self._text(502, BAD_GATEWAY_HTML, "text/html")
            elif fault == "html200":
                self._text(200, MAINTENANCE_HTML, "text/html")
            else:
                raise ValueError(f"unknown fault {fault!r}")

        def _klines(self, query: dict[str, str]) -> None:
            with fake.lock:
                fake.plan.klines_requests += 1
                fault = fake.plan.klines_faults.get(fake.plan.klines_requests)
                if fault:
                    fake.plan.served_faults.append(fault)
            if fault in ("429", "418"):
                body = {"code": -1003, "msg": "Too many requests." if fault == "429" else "Way too many requests; IP banned."}
                self._json(int(fault), body, {"Retry-After": str(fake.plan.retry_after_s)})
            elif fault in ("500", "503", "html502", "html200"):
                self._common_fault(fault)
            elif fault == "empty":
                self._json(200, [])
            elif fault in ("badrow", "duprow"):
                status, rows = fake.klines(query)
                self._json(status, _damage(rows, fault) if isinstance(rows, list) else rows)
            elif fault == "400":
                self._json(400, {"code": -1100, "msg": "Illegal characters found in parameter 'symbol'."})
            elif fault == "slow":
                time.sleep(fake.plan.slow_s)
                self._json(*fake.klines(query))
            elif fault == "drop":
                self._drop(fake.klines(query)[1])
            else:
                self._json(*fake.klines(query))

        def _json(self, status: int, body: object, headers: Mapping[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                self.wfile.write(data)

        def _text(self, status: int, text: str, content_type: str = "text/plain") -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _drop(self, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 3])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)

    return Handler
