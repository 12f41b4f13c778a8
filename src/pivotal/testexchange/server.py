"""The aiohttp application and ``TestExchange``: the exchange on its own event loop in a background thread, usable
as ``with TestExchange(...) as ex`` or ``async with TestExchange(...) as ex``; it hands out its base URLs and
configured ccxt / ccxt.pro clients."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Future
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from pivotal.core.errors import UserInputError
from pivotal.core.timeframes import TIMEFRAMES
from pivotal.testexchange.clock import ReplayClock
from pivotal.testexchange.faults import Faults
from pivotal.testexchange.markets import market_id, rules_for
from pivotal.testexchange.private import FAULT, PrivateHandlers
from pivotal.testexchange.public import PublicHandlers, binance_error, respond
from pivotal.testexchange.state import ExchangeState
from pivotal.testexchange.streams import StreamHandlers
from pivotal.testexchange.tape import SymbolData, default_start, load_symbol

T = TypeVar("T")
CLOCK_PATH = "/testexchange/v1/clock"
VENUES = {"spot": "binance", "usdm": "binance-usdm"}  # venue -> the shared/data folder it replays
_AVOID_BANS = "Please use WebSocket Streams for live updates to avoid bans."
REST_ERRORS = {
    "429": (
        429,
        -1003,
        f"Too many requests; current limit of IP(127.0.0.1) request weight per 1 MINUTE is 6000. {_AVOID_BANS}",
    ),
    "418": (
        418,
        -1003,
        f"Way too many requests; IP(127.0.0.1) banned until 4102444800000. {_AVOID_BANS}",
    ),
    "500": (500, -1001, "Internal error; unable to process your request. Please try again."),
    "503": (503, -1008, "Server is currently overloaded with other requests. Please try again in a few minutes."),
    "insufficient": (400, -2010, "Account has insufficient balance for requested action."),
    "filter": (400, -1013, "Filter failure: LOT_SIZE"),
}


def build_app(state: ExchangeState, venue: str = "spot") -> web.Application:
    private = PrivateHandlers(state)
    streams = StreamHandlers(state, private.verify_ws_api)

    @web.middleware
    async def faults(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await handler(request)
        fault = state.faults.rest_fault(request.method, request.path)
        if fault in REST_ERRORS:
            status, code, msg = REST_ERRORS[fault]
            headers = {"Retry-After": str(state.faults.retry_after_s)} if status in (429, 418, 503) else None
            return binance_error(status, code, msg, headers)
        request[FAULT] = fault or ""
        try:
            return await handler(request)
        except web.HTTPNotFound:
            return binance_error(404, -1, f"test exchange does not serve {request.method} {request.path}")
        except web.HTTPMethodNotAllowed:
            return binance_error(405, -1, f"test exchange does not serve {request.method} {request.path}")

    async def clock(request: web.Request) -> web.Response:
        """Not Binance: the replay clock for harnesses and people (GET: status; POST: ?advance_to=ms, ?advance=ms,
        ?speed=x, ?pause=1, ?resume=1). A lock-step harness pauses at speed 0 and advances after each decision."""
        q = request.query
        try:
            if request.method == "POST":
                if "speed" in q:
                    state.clock.set_speed(float(q["speed"]))
                if q.get("pause"):
                    state.clock.pause()
                if q.get("resume"):
                    state.clock.resume()
                if "advance" in q:
                    state.advance_to(state.now() + int(q["advance"]))
                if "advance_to" in q:
                    state.advance_to(int(q["advance_to"]))
        except ValueError as exc:
            return binance_error(400, -1100, f"test exchange clock: {exc}")
        nxt = state.tape.peek()
        status = {
            "now": state.now(),
            "speed": state.clock.speed,
            "paused": state.clock.paused,
            "next_event": nxt.time if nxt else None,
        }
        return respond(status)

    app = web.Application(middlewares=[faults])
    app.add_routes([web.get(CLOCK_PATH, clock), web.post(CLOCK_PATH, clock)])
    app.add_routes(PublicHandlers(state).routes())
    if venue == "usdm":  # USD-M market data: /fapi/v1 REST and the /public|/market/ws socket paths ccxt 4.5 dials
        app.add_routes(PublicHandlers(state).usdm_routes())
        for category in ("public", "market"):
            app.add_routes([web.get(f"/{category}/ws", streams.raw), web.get(f"/{category}/ws/{{tail:.*}}", streams.raw)])
    app.add_routes(private.routes())
    app.add_routes(
        [
            web.get("/ws", streams.raw),
            web.get("/ws/{tail:.*}", streams.raw),
            web.get("/stream", streams.combined),
            web.get("/ws-api/v3", streams.ws_api),
        ]
    )
    return app


def parse_time(value: int | str | None) -> int | None:
    """Epoch ms, or an ISO date/time (UTC)."""
    if value is None or isinstance(value, int):
        return value
    if value.isdigit():
        return int(value)
    import pandas as pd

    try:
        return int(pd.Timestamp(value, tz="UTC").value // 1_000_000)
    except ValueError:
        raise UserInputError(
            f"test exchange: cannot read start time {value!r}; give epoch ms or an ISO date like 2024-08-08T23:55"
        ) from None


async def start_site(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on ``host:port`` (0: a free port) for a local exchange; the runner (``cleanup()`` to stop) and
    the port actually bound, which tests need before they connect."""
    runner = web.AppRunner(app, shutdown_timeout=0.5, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = getattr(site, "_server", None)
    sockets = getattr(server, "sockets", None) or []
    return runner, int(sockets[0].getsockname()[1])


class TestExchange:
    """A Binance-speaking exchange on 127.0.0.1 replaying ``data_dir`` (the ``shared/data`` folder)."""

    __test__ = False  # not a pytest class

    def __init__(
        self,
        data_dir: str | Path,
        symbols: Sequence[str] = ("BTC/USDT",),
        timeframes: Sequence[str] = ("1m", "1h"),
        start: int | str | None = None,
        speed: float = 0.0,
        faults: Faults | None = None,
        balances: Mapping[str, float | str | Decimal] | None = None,
        taker_fee: float | str = "0.001",
        maker_fee: float | str = "0.001",
        api_key: str | None = None,
        api_secret: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        preloaded: Mapping[str, SymbolData] | None = None,
        venue: str = "spot",
    ) -> None:
        """``preloaded``: recorded markets already read by ``tape.load_symbol`` (tests share them; they are read-only).
        ``venue``: ``spot`` (``binance/``) or ``usdm`` (``binance-usdm/``: USD-M perpetuals, market data only — depth
        snapshots and diffs with ``pu``, trades; no klines were recorded and orders are not matched there)."""
        if venue not in VENUES:
            raise UserInputError(f"test exchange: unknown venue {venue!r}; use one of: {' '.join(VENUES)}")
        self.venue = venue
        for tf in timeframes:
            if tf not in TIMEFRAMES:
                raise UserInputError(f"test exchange: unknown timeframe {tf!r}; use one of: {' '.join(TIMEFRAMES)}")
        for s in symbols:
            rules_for(s)  # an unknown symbol is refused by the name the user gave
        ids = [market_id(s) for s in symbols]
        pre = preloaded or {}
        folder = VENUES[venue]
        self.markets = {s: pre[s] if s in pre else load_symbol(Path(data_dir), s, tuple(timeframes), folder) for s in ids}
        parsed = parse_time(start)
        self.start_ms: int = parsed if parsed is not None else default_start(self.markets)
        self.speed = speed
        self.faults = faults or Faults()
        quote_default = {"USDT": "10000"} | {rules_for(s).base: "0" for s in ids}
        self.balances = {a: Decimal(str(v)) for a, v in (balances or quote_default).items()}
        self.fees = Decimal(str(taker_fee)), Decimal(str(maker_fee))
        # the local exchange's own credentials: given, or made for this instance (never a constant in the repo)
        self.api_key: str = api_key or secrets.token_hex(16)
        self.api_secret: str = api_secret or secrets.token_hex(32)
        self.host, self.port = host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.state: ExchangeState | None = None

    # --- lifecycle ----------------------------------------------------------------------------------------------------
    def start(self) -> dict[str, str]:
        self._thread = threading.Thread(target=self._serve, name="pivotal-testexchange", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self.urls

    def _serve(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # surfaced to the starting thread
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _main(self) -> None:
        clock = ReplayClock(self.start_ms, self.speed)
        state = self.state = ExchangeState(
            self.markets, clock, self.faults, self.balances, *self.fees, self.api_key, self.api_secret
        )
        runner, self.port = await start_site(build_app(state, self.venue), self.host, self.port)
        self._stop = asyncio.Event()
        driver = asyncio.create_task(state.run())
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            state.stop()
            await driver
            for sub in list(state.hub.subscribers):
                await sub.ws.close()
            await runner.cleanup()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)

    def __enter__(self) -> TestExchange:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> TestExchange:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    # --- addresses and clients --------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def urls(self) -> dict[str, str]:
        ws = f"ws://{self.host}:{self.port}"
        return {"rest": self.url, "ws": f"{ws}/ws", "stream": f"{ws}/stream", "ws_api": f"{ws}/ws-api/v3"}

    def ccxt_client(self, timeout_ms: int = 3000, **config: Any) -> Any:
        from pivotal.testexchange.clients import ccxt_client

        key, secret = config.pop("apiKey", self.api_key), config.pop("secret", self.api_secret)
        return ccxt_client(self.urls, key, secret, timeout_ms, **config)

    def ccxt_pro_client(self, timeout_ms: int = 3000, **config: Any) -> Any:
        from pivotal.testexchange.clients import ccxt_pro_client

        key, secret = config.pop("apiKey", self.api_key), config.pop("secret", self.api_secret)
        return ccxt_pro_client(self.urls, key, secret, timeout_ms, venue=self.venue, **config)

    # --- control from the test's thread ---------------------------------------------------------------------------------
    def call(self, fn: Callable[[ExchangeState], T]) -> T:
        """Run ``fn(state)`` on the exchange's loop and return its result (state is only touched there)."""
        assert self._loop is not None and self.state is not None, "start the test exchange first"
        state = self.state

        async def run() -> T:
            return fn(state)

        future: Future[T] = asyncio.run_coroutine_threadsafe(run(), self._loop)
        return future.result(10)

    def now_ms(self) -> int:
        return self.call(lambda s: s.now())

    def advance_to(self, t_ms: int) -> None:
        """Move the replay clock forward to ``t_ms``; every recorded event up to then is replayed (fills included)."""
        self.call(lambda s: s.advance_to(t_ms))

    def advance(self, delta_ms: int) -> None:
        self.call(lambda s: s.advance_to(s.now() + delta_ms))

    def set_speed(self, speed: float) -> None:
        self.call(lambda s: s.clock.set_speed(speed))

    def pause(self) -> None:
        """Stop the clock (also at speed 0: then only ``advance``/``advance_to`` move it — lock-step replay)."""
        self.call(lambda s: s.clock.pause())

    def resume(self) -> None:
        self.call(lambda s: s.clock.resume())
