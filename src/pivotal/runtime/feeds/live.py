"""The live feed: ccxt.pro ``watch_ohlcv`` / ``watch_trades`` for several symbols and timeframes, as the same market
events the historical feed emits (``BarClosed``, ``TradeTick``), with reconnects that lose and repeat nothing.

Why each rule (docs/runtime.md, "Live feed"):

- **Closed only.** A candle is emitted when it is *final* — the exchange marked it closed (Binance's kline ``x``,
  read from the raw message because ccxt's unified candle drops it) or, on a stream whose messages carry no such
  flag, a later candle of the same stream was seen on the same connection — *and* its close time is <= the exchange
  clock as last observed (event times, candle open times, trade times, ``fetch_time``). Where the flag exists it is
  the only proof: a candle superseded before its ``x: true`` arrived (an out-of-order message) holds the values of an
  in-progress update, so it waits for its mark or is taken over REST when the next closed candle shows the gap.
  Candles fetched over REST are kept only if they closed by ``fetch_time``.
- **Exactly once, in order.** Each (symbol, timeframe) stream keeps ``next_close``, the close time of the next bar it
  may emit: a candle closing earlier is a duplicate (dropped, counted); one closing later means a gap, filled from
  REST (``fetch_ohlcv`` since the last emitted close) before it. Per symbol, bars of all timeframes and trades pass a
  merge gate, so they leave in ``known_at`` order with the historical feed's ties (bars first, finer timeframe first).
- **Reconnect.** A network error on a stream: wait ``backoff_delay`` (1, 2, 4 … 60 s, each shortened by up to
  ``jitter`` at random; sleeper and RNG injected), resynchronise (``fetch_time``, REST backfill) and watch again. Before
  the exchange's 24-hour connection limit (``max_connection_ms``, 23 h by default, on the injected clock) the feed
  closes its WebSocket connections itself and every stream resynchronises the same way.
- **Backpressure.** A bounded queue sits between the ccxt.pro tasks and the consumer; when it is full the producing
  stream waits (counted in ``queue_waits``): nothing is ever dropped. A stream that waits long enough that the
  exchange drops it is recovered by the backfill.
- Trades are not backfilled (Binance's REST trade history is not a replay of the stream); a trade is emitted once,
  in trade-id order; ids missing after ``trade_hold_s`` are skipped and counted (``trade_gaps``).

The runtime never imports the test exchange: the caller passes a ccxt.pro exchange instance or a factory of one.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import queue
import random
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pivotal.core.clock import Clock, WallClock
from pivotal.core.errors import PivotalError, UserInputError
from pivotal.core.events import RANK_BAR, RANK_TRADE, BarClosed, MarketEvent, TradeTick
from pivotal.core.orders import Bar
from pivotal.core.timeframes import TIMEFRAMES

HOUR_MS = 3_600_000
DEFAULT_MAX_CONNECTION_MS = 23 * HOUR_MS  # Binance closes a connection after 24 h; reconnect an hour before
WEEK_ORIGIN_MS = 4 * 86_400_000  # Monday 1970-01-05 00:00 UTC: exchanges open weekly candles on Mondays
Sleeper = Callable[[float], Awaitable[None]]


class _RollOver(Exception):
    """Raised inside a stream task that closed the connections for the 24-hour rollover: resynchronise."""


class LiveFeedError(PivotalError):
    """The live feed stopped on an error it cannot recover from (bad symbol, rejected keys, ...)."""


def backoff_delay(attempt: int, rng: random.Random, base_s: float = 1.0, cap_s: float = 60.0, jitter: float = 0.2) -> float:
    """Seconds to wait before reconnect ``attempt`` (0-based): ``min(cap, base * 2**attempt)`` shortened by up to
    ``jitter`` (a fraction) at random, so that many clients do not reconnect in lock-step."""
    return min(cap_s, base_s * 2.0**attempt) * (1.0 - jitter * rng.random())


@dataclass
class FeedHealth:
    """A snapshot for the risk engine's stale-data breaker and the status view. Times: ``last_message_ms`` on the
    feed's clock, per stream (``"BTC/USDT 1m"``, ``"BTC/USDT trades"``); ``exchange_time_ms`` the exchange clock as
    last observed."""

    last_message_ms: dict[str, int] = field(default_factory=dict)
    last_bar_close_ms: dict[str, int] = field(default_factory=dict)
    reconnects: int = 0
    rollovers: int = 0
    backfilled_bars: int = 0
    duplicates_dropped: int = 0
    trade_gaps: int = 0
    late_trades: int = 0
    queue_waits: int = 0
    queued: int = 0
    exchange_time_ms: int = 0
    running: bool = False
    error: str | None = None

    def stale_streams(self, max_age_ms: int, now_ms: int) -> list[str]:
        """Streams with no message for longer than ``max_age_ms`` at ``now_ms`` (never heard from counts as stale)."""
        return [s for s, t in self.last_message_ms.items() if now_ms - t > max_age_ms]


@dataclass
class _BarStream:
    symbol: str
    timeframe: str
    tf_ms: int
    name: str
    order: int = 0  # tie rank among streams at the same close: the order the series were given
    origin: int = 0  # where the timeframe's grid starts (weeks open on Monday 00:00 UTC, epoch 0 is a Thursday)
    next_close: int | None = None  # close time of the next bar this stream may emit (None before the first sync)
    pending: dict[int, list[float]] = field(default_factory=dict)  # open ts -> latest values on this connection
    final: set[int] = field(default_factory=set)
    emitted: int = 0


class LiveFeed:
    """Closed bars (and trades) of ``symbols`` × ``timeframes`` from a ccxt.pro exchange, as a :class:`Feed`.

    ``exchange``: a ccxt.pro instance (the feed uses it on its own thread and closes it at ``stop``) or a
    zero-argument factory of one (called on that thread). ``events(start)`` starts the feed and yields events until
    ``stop()``; with ``start`` the bars closing at or after it are first fetched over REST (a restarted node resumes).
    """

    def __init__(
        self,
        exchange: Any,
        symbols: Sequence[str],
        timeframes: Sequence[str] = ("1m",),
        *,
        trades: bool = False,
        clock: Clock | None = None,
        sleep: Sleeper | None = None,
        rng: random.Random | None = None,
        queue_size: int = 10_000,
        max_connection_ms: int = DEFAULT_MAX_CONNECTION_MS,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 60.0,
        jitter: float = 0.2,
        trade_hold_s: float = 0.5,
        backfill_limit: int = 1000,
        order: str = "global",
    ) -> None:
        if not symbols:
            raise UserInputError("live feed: give at least one symbol")
        for tf in timeframes:
            if tf not in TIMEFRAMES:
                raise UserInputError(f"live feed: unknown timeframe {tf!r}; use one of: {' '.join(TIMEFRAMES)}")
        if queue_size < 1:
            raise UserInputError(f"live feed: queue_size must be at least 1 (got {queue_size})")
        self._exchange_arg = exchange
        self.symbols, self.timeframes, self.with_trades = list(symbols), list(timeframes), trades
        self.clock: Clock = clock or WallClock()
        self._sleep: Sleeper = sleep or asyncio.sleep
        self.rng = rng or random.Random()
        self.max_connection_ms = max_connection_ms
        self._backoff = (backoff_base_s, backoff_cap_s, jitter)
        self.trade_hold_s, self.backfill_limit = trade_hold_s, backfill_limit
        self._queue: queue.Queue[MarketEvent] = queue.Queue(queue_size)
        self._health = FeedHealth()
        self._streams = {
            s: [_BarStream(s, tf, TIMEFRAMES[tf], f"{s} {tf}", WEEK_ORIGIN_MS if tf == "1w" else 0) for tf in self.timeframes]
            for s in self.symbols
        }
        if order not in ("global", "symbol"):
            raise UserInputError(f"live feed: order must be 'global' or 'symbol' (got {order!r})")
        # the merge gate: one group (global order, what a node needs) or one per symbol; ties as the historical feed's
        self._group = {s: ("" if order == "global" else s) for s in self.symbols}
        self._group_streams: dict[str, list[_BarStream]] = {}
        for i, sym in enumerate(self.symbols):
            for j, st in enumerate(self._streams[sym]):
                st.order = i * len(self.timeframes) + j
                self._group_streams.setdefault(self._group[sym], []).append(st)
        self._trade_order = {sym: len(self.symbols) * len(self.timeframes) + i for i, sym in enumerate(self.symbols)}
        self._heaps: dict[str, list[tuple[tuple[int, int, int, int], int, str, MarketEvent]]] = {}
        self._seq = 0
        self._locks: dict[str, asyncio.Lock] = {}
        self._trade_horizon: dict[str, int] = {}  # no trade older than this will still be emitted, per symbol
        self._stop_requested = threading.Event()
        self._marks: set[tuple[str, str, int]] = set()  # (market id, interval, open ts) the exchange marked closed
        self._marked_values: dict[tuple[str, str, int], list[float]] = {}  # the closed message's o h l c v per mark
        self._flagged: set[tuple[str, str]] = set()  # (market id, interval) whose kline messages carry the closed flag
        self._start: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._stopped = threading.Event()
        self._error: BaseException | None = None
        self._session_start = 0
        self._exchange: Any = None
        self._name = ""

    # -- Feed ---------------------------------------------------------------------------------------------------------
    def span(self) -> tuple[int, int] | None:
        return None

    def count(self, start: int | None = None) -> int | None:
        return None

    def events(self, start: int | None = None) -> Iterator[MarketEvent]:
        """Events as they close, until ``stop()`` (then the iterator ends) or an unrecoverable error (raised)."""
        self.start(start)
        try:
            while True:
                event = self.poll(0.1)
                if event is not None:
                    yield event
                elif self._stopped.is_set() and self._queue.empty():
                    self._raise_error()
                    return
        finally:
            self.stop()

    def poll(self, timeout_s: float | None = None) -> MarketEvent | None:
        """The next event, or None when none arrived within ``timeout_s`` (raises if the feed failed). Starts the
        feed (from now) if ``start``/``events`` did not."""
        if self._thread is None:
            self.start()
        try:
            return self._queue.get(timeout=timeout_s)
        except queue.Empty:
            self._raise_error()
            return None

    # -- lifecycle ----------------------------------------------------------------------------------------------------
    def start(self, start: int | None = None) -> LiveFeed:
        """Start the feed's thread (once): bars closing at or after ``start`` (from the next close when None)."""
        if self._thread is None:
            self._start = start
            self._thread = threading.Thread(target=self._run_thread, name="pivotal-live-feed", daemon=True)
            self._thread.start()
        elif start != self._start:
            raise UserInputError(f"live feed: already started from {self._start}; a feed runs once (asked for {start})")
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Cancel the stream tasks, close the exchange and join the feed's thread (idempotent)."""
        self._stop_requested.set()
        loop, stop_event = self._loop, self._stop_event
        if loop is not None and stop_event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop_event.set)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def __enter__(self) -> LiveFeed:
        """Stops the feed on exit; it starts on the first ``events``/``poll``/``start``."""
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def health(self) -> FeedHealth:
        """A copy of the feed's health counters (safe to call from any thread)."""
        h = self._health
        return FeedHealth(
            dict(h.last_message_ms), dict(h.last_bar_close_ms), h.reconnects, h.rollovers, h.backfilled_bars,
            h.duplicates_dropped, h.trade_gaps, h.late_trades, h.queue_waits, self._queue.qsize(), h.exchange_time_ms,
            self._thread is not None and self._thread.is_alive(), h.error,
        )  # fmt: skip

    def _raise_error(self) -> None:
        if self._error is not None:
            raise LiveFeedError(f"live feed stopped: {type(self._error).__name__}: {self._error}") from self._error

    # -- the feed's thread --------------------------------------------------------------------------------------------
    def _run_thread(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # surfaced to the consumer
            self._fail(exc)
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._stopped.set()

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
            self._health.error = f"{type(exc).__name__}: {exc}"
        if self._stop_event is not None:
            self._stop_event.set()

    async def _main(self) -> None:
        self._stop_event = asyncio.Event()
        if self._stop_requested.is_set():
            return
        arg = self._exchange_arg
        self._exchange = exchange = arg() if callable(arg) and not hasattr(arg, "watch_ohlcv") else arg
        self._name = str(getattr(exchange, "id", "") or "")
        self._install_probe(exchange)
        runner = asyncio.create_task(self._run_streams(exchange))
        stopper = asyncio.create_task(self._stop_event.wait())
        try:
            await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (runner, stopper):
                task.cancel()
            await asyncio.gather(runner, stopper, return_exceptions=True)
            with contextlib.suppress(Exception):
                await exchange.close()
        error = None if runner.cancelled() else runner.exception()
        if error is not None:
            raise error

    async def _run_streams(self, exchange: Any) -> None:
        """Load the markets (retrying), then one task per stream until stopped (a stream's fatal error stops all)."""
        await self._retrying(lambda: _rest(exchange.load_markets()))
        self._session_start = self.clock.now_ms()
        tasks: list[asyncio.Task[None]] = []
        for symbol in self.symbols:
            tasks += [asyncio.create_task(self._guard(self._bar_loop(stream))) for stream in self._streams[symbol]]
            if self.with_trades:
                tasks.append(asyncio.create_task(self._guard(self._trade_loop(symbol))))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _guard(self, body: Awaitable[None]) -> None:
        try:
            await body
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._fail(exc)

    async def _retrying(self, call: Callable[[], Awaitable[Any]]) -> Any:
        """``call()`` until it succeeds, backing off on network errors (other errors propagate)."""
        import ccxt

        attempt = 0
        while True:
            try:
                return await call()
            except ccxt.OperationFailed:  # network errors, timeouts, rate limits, -1001/-1008
                await self._sleep(backoff_delay(attempt, self.rng, *self._backoff))
                attempt += 1

    # -- exchange clock and Binance's closed mark -----------------------------------------------------------------------
    def _observe(self, exchange_ms: int | None) -> None:
        if exchange_ms is not None and exchange_ms > self._health.exchange_time_ms:
            self._health.exchange_time_ms = int(exchange_ms)

    def _install_probe(self, exchange: Any) -> None:
        """ccxt's unified candle drops Binance's ``x`` (closed) flag and the event time ``E``; wrap the instance's
        kline handler to note both, then hand the message on unchanged. Exchanges without it use the other rules."""
        original = getattr(exchange, "handle_ohlcv", None)
        if original is None:
            return

        def handle_ohlcv(client: Any, message: Any) -> Any:
            if isinstance(message, dict):
                kline = message.get("k")
                event_time = message.get("E")
                if isinstance(event_time, int):
                    self._observe(event_time)
                if isinstance(kline, dict) and isinstance(kline.get("x"), bool):
                    self._flagged.add((str(kline.get("s")), str(kline.get("i"))))
                if isinstance(kline, dict) and kline.get("x") is True and isinstance(kline.get("t"), int):
                    if len(self._marks) > 10_000:  # marks of candles never read (a stream stopped): a bound, no leak
                        self._marks.clear()
                        self._marked_values.clear()
                    key = (str(kline.get("s")), str(kline.get("i")), int(kline["t"]))
                    self._marks.add(key)
                    values = _kline_values(kline)
                    if values is not None:
                        self._marked_values[key] = values
            return original(client, message)

        exchange.handle_ohlcv = handle_ohlcv

    # -- bars -----------------------------------------------------------------------------------------------------------
    async def _bar_loop(self, stream: _BarStream) -> None:
        import ccxt

        exchange = self._exchange
        market = exchange.market(stream.symbol)
        mark_key = (str(market["id"]), str(exchange.timeframes.get(stream.timeframe, stream.timeframe)))
        attempt, synced = 0, False
        while True:
            try:
                if not synced:
                    stream.pending.clear()
                    stream.final.clear()
                    await self._backfill(stream)
                    synced = True
                candles = await exchange.watch_ohlcv(stream.symbol, stream.timeframe)
                attempt = 0
                self._health.last_message_ms[stream.name] = self.clock.now_ms()
                self._take_candles(stream, candles, mark_key)
                await self._emit_ready(stream)
                await self._maybe_roll_over()
            except (asyncio.CancelledError, _RollOver) as exc:
                task = asyncio.current_task()
                if isinstance(exc, asyncio.CancelledError) and task is not None and task.cancelling():
                    raise
                synced = False  # a rollover closed the socket (ccxt cancels the pending watch): no backoff wait
            except ccxt.OperationFailed:  # network errors, timeouts, rate limits, -1001/-1008
                synced = False
                self._health.reconnects += 1
                await self._sleep(backoff_delay(attempt, self.rng, *self._backoff))
                attempt += 1

    def _take_candles(self, stream: _BarStream, candles: Sequence[Sequence[Any]], mark_key: tuple[str, str]) -> None:
        """Note the latest values of each candle and which are final. A marked candle takes the values of its closed
        message: the watch may have resolved with an earlier (open) update of it, and ccxt handled the closed message
        before this task resumed."""
        for c in candles:
            t = int(c[0])
            self._observe(t)  # the exchange opened this candle, so its clock has reached t
            stream.pending[t] = [float(x) for x in c[1:6]]
            key = (*mark_key, t)
            if key in self._marks:
                self._marks.discard(key)
                marked = self._marked_values.pop(key, None)
                if marked is not None:
                    stream.pending[t] = marked
                stream.final.add(t)
        if mark_key in self._flagged:
            return  # the exchange says which candles are closed: a later candle proves nothing (it may be out of order)
        opens = sorted(stream.pending)
        stream.final.update(opens[:-1])  # a later candle was seen on this connection: the earlier ones are complete

    async def _emit_ready(self, stream: _BarStream) -> None:
        now = self._health.exchange_time_ms
        for t in sorted(stream.final):
            close = t + stream.tf_ms
            if close > now:
                continue  # final by the rules but not yet closed by the exchange clock as observed
            stream.final.discard(t)
            values = stream.pending.pop(t, None)
            if values is None:
                continue
            assert stream.next_close is not None
            if close < stream.next_close:
                self._health.duplicates_dropped += 1
                continue
            if close > stream.next_close:  # a gap: fill it over REST first (the REST copy then covers this candle)
                await self._backfill(stream)
                if close < stream.next_close:
                    self._health.duplicates_dropped += 1
                    continue
            await self._emit_bar(stream, t, values, backfilled=False)
        for t in [t for t in stream.pending if t + stream.tf_ms < (stream.next_close or 0)]:
            del stream.pending[t]
            stream.final.discard(t)

    async def _backfill(self, stream: _BarStream) -> None:
        """Emit every candle closed (by ``fetch_time``) since ``next_close`` from REST, then move ``next_close`` past
        the server time (what REST does not have there does not exist)."""
        exchange, tf = self._exchange, stream.tf_ms
        server = int(await _rest(exchange.fetch_time()))
        self._observe(server)
        origin = stream.origin
        if stream.next_close is None:
            if self._start is None:
                stream.next_close = _close_after(server, tf, origin)  # the first bar to close after the feed started
                await self._release(self._group[stream.symbol])
                return
            stream.next_close = _close_after(self._start - 1, tf, origin)  # the first close at or after ``start``
        since = stream.next_close - tf
        while True:
            rows = await _rest(exchange.fetch_ohlcv(stream.symbol, stream.timeframe, since=since, limit=self.backfill_limit))
            closed = sorted((r for r in rows if int(r[0]) + tf <= server), key=lambda r: int(r[0]))
            for r in closed:
                if int(r[0]) + tf >= stream.next_close:
                    await self._emit_bar(stream, int(r[0]), [float(x) for x in r[1:6]], backfilled=True)
            if len(rows) < self.backfill_limit or not closed or int(closed[-1][0]) + 2 * tf > server:
                break
            since = int(closed[-1][0]) + tf
        stream.next_close = max(stream.next_close, _close_after(server, tf, origin))
        await self._release(self._group[stream.symbol])

    async def _emit_bar(self, stream: _BarStream, t: int, values: list[float], *, backfilled: bool) -> None:
        close = t + stream.tf_ms
        o, h, lo, c, v = values
        bar = Bar(stream.emitted, t, o, h, lo, c, v, stream.symbol, stream.timeframe, close)
        stream.emitted += 1
        stream.next_close = close + stream.tf_ms
        self._health.last_bar_close_ms[stream.name] = close
        if backfilled:
            self._health.backfilled_bars += 1
        await self._push(stream.symbol, (close, RANK_BAR, stream.tf_ms, stream.order), BarClosed(close, bar, self._name))

    # -- ordering and the queue -------------------------------------------------------------------------------------------
    async def _push(self, symbol: str, key: tuple[int, int, int, int], event: MarketEvent) -> None:
        group = self._group[symbol]
        if self._start is None or event.known_at >= self._start:
            self._seq += 1
            heapq.heappush(self._heaps.setdefault(group, []), (key, self._seq, symbol, event))
        await self._release(group)

    async def _release(self, group: str) -> None:
        """Hand on the group's held events that nothing can precede any more (the merge gate): an event leaves once
        every bar stream's next possible close (ranked as the event key) and every other symbol's trade horizon
        come after it."""
        heap, streams = self._heaps.setdefault(group, []), self._group_streams.get(group, [])
        async with self._locks.setdefault(group, asyncio.Lock()):  # one releaser per group keeps the order
            while heap:
                key, _, symbol, _ = heap[0]
                if any(s.next_close is None or key >= (s.next_close, RANK_BAR, s.tf_ms, s.order) for s in streams):
                    return
                if self.with_trades and self._trade_pending(group, symbol, key):
                    return  # a trade printed before this event may still come
                await self._put(heapq.heappop(heap)[3])

    def _trade_pending(self, group: str, symbol: str, key: tuple[int, int, int, int]) -> bool:
        for other in self.symbols:
            if self._group[other] != group or (other == symbol and key[1] == RANK_TRADE):
                continue
            if self._trade_horizon.get(other, -1) < key[0]:
                return True
        return False

    async def _put(self, event: MarketEvent) -> None:
        """Block (this stream only) while the queue is full: never drop."""
        waited = False
        while True:
            try:
                self._queue.put_nowait(event)
                return
            except queue.Full:
                if not waited:
                    self._health.queue_waits += 1
                    waited = True
                await asyncio.sleep(0.005)

    async def _maybe_roll_over(self) -> None:
        """Before the exchange's 24-hour limit, close the WebSocket connections; every stream then resynchronises
        (REST backfill) as after a disconnect, without the backoff wait."""
        now = self.clock.now_ms()
        if now - self._session_start < self.max_connection_ms:
            return
        self._session_start = now
        self._health.rollovers += 1
        self._health.reconnects += 1
        close_ws = getattr(self._exchange, "close_ws_clients", None)
        if close_ws is not None:
            await close_ws()
        raise _RollOver

    # -- trades ------------------------------------------------------------------------------------------------------------
    async def _trade_loop(self, symbol: str) -> None:
        import ccxt

        exchange, name = self._exchange, f"{symbol} trades"
        held: dict[int, TradeTick] = {}
        last_id: int | None = None
        attempt = 0
        watching: asyncio.Task[Any] | None = None
        while True:
            try:
                if watching is None:
                    watching = asyncio.ensure_future(exchange.watch_trades(symbol))
                done, _ = await asyncio.wait({watching}, timeout=self.trade_hold_s)
                if not done:
                    if held:  # the missing ids did not come: skip them
                        self._health.trade_gaps += 1
                        last_id = await self._flush_trades(symbol, held, last_id, force=True)
                    # quiet for trade_hold_s: what was printed before the exchange time observed has arrived
                    self._trade_horizon[symbol] = max(self._trade_horizon.get(symbol, -1), self._health.exchange_time_ms)
                    await self._release(self._group[symbol])
                    continue
                task, watching = watching, None
                trades = task.result()
                attempt = 0
                self._health.last_message_ms[name] = self.clock.now_ms()
                for tr in trades:
                    tick = self._tick(symbol, tr)
                    self._observe(tick.ts)
                    if (last_id is not None and tick.trade_id <= last_id) or tick.trade_id in held:
                        self._health.duplicates_dropped += 1
                        continue
                    if tick.ts < self._trade_horizon.get(symbol, -1):
                        self._health.late_trades += 1  # bars after it are already out: emitting it would break order
                        continue
                    held[tick.trade_id] = tick
                last_id = await self._flush_trades(symbol, held, last_id, force=False)
                await self._maybe_roll_over()
            except (asyncio.CancelledError, _RollOver) as exc:
                current = asyncio.current_task()
                if isinstance(exc, asyncio.CancelledError) and current is not None and current.cancelling():
                    if watching is not None:
                        watching.cancel()
                    raise
                watching = None
                last_id = await self._flush_trades(symbol, held, last_id, force=True)
                last_id = None  # trades missed while away are not backfilled: continue from whatever comes next
            except ccxt.OperationFailed:  # network errors, timeouts, rate limits, -1001/-1008
                watching = None
                self._health.reconnects += 1
                last_id = await self._flush_trades(symbol, held, last_id, force=True)
                last_id = None
                await self._sleep(backoff_delay(attempt, self.rng, *self._backoff))
                attempt += 1

    def _tick(self, symbol: str, tr: dict[str, Any]) -> TradeTick:
        info = tr.get("info") or {}
        maker = info.get("m") if isinstance(info, dict) else None
        is_buyer_maker = bool(maker) if maker is not None else tr.get("side") == "sell"
        ts = int(tr["timestamp"])
        return TradeTick(ts, self._name, symbol, ts, int(tr["id"]), float(tr["price"]), float(tr["amount"]), is_buyer_maker)

    async def _flush_trades(self, symbol: str, held: dict[int, TradeTick], last_id: int | None, *, force: bool) -> int | None:
        """Emit held trades in id order while they are contiguous (all of them when ``force``)."""
        for trade_id in sorted(held):
            if not force and last_id is not None and trade_id != last_id + 1:
                break
            tick = held.pop(trade_id)
            last_id = trade_id
            self._trade_horizon[symbol] = max(self._trade_horizon.get(symbol, -1), tick.ts)
            await self._push(symbol, (tick.known_at, RANK_TRADE, 0, self._trade_order[symbol]), tick)
        return last_id


def _kline_values(kline: dict[str, Any]) -> list[float] | None:
    """(open, high, low, close, volume) of a raw Binance kline, as ccxt parses them (``float`` of the strings)."""
    try:
        return [float(kline[f]) for f in ("o", "h", "l", "c", "v")]
    except (KeyError, TypeError, ValueError):
        return None


def _close_after(t: int, tf_ms: int, origin: int = 0) -> int:
    """The first candle close time strictly after ``t`` on the grid ``origin + k * tf_ms``."""
    return origin + ((t - origin) // tf_ms + 1) * tf_ms


async def _rest(call: Awaitable[Any]) -> Any:
    """A REST call whose Binance -1008 ("Server is currently overloaded", a plain ``ExchangeError`` in ccxt) is raised
    as ``ExchangeNotAvailable``, so that it is retried like the other transient failures."""
    import ccxt

    try:
        return await call
    except ccxt.ExchangeError as exc:
        if '"code":-1008' in str(exc).replace(" ", ""):
            raise ccxt.ExchangeNotAvailable(str(exc)) from exc
        raise


def live_feed_for(exchange: Any, symbols: Sequence[str], timeframes: Sequence[str] = ("1m",), **options: Any) -> LiveFeed:
    """The live feed a node trades on: ``exchange`` a ccxt.pro instance or a factory of one (the run command builds
    it from its configuration; tests point it at the test exchange); ``options`` as :class:`LiveFeed`."""
    return LiveFeed(exchange, symbols, timeframes, **options)
