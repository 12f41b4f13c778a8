"""``pivotal data capture``: live order-book diffs, REST snapshots and trades from ccxt.pro into the market store.

Why it reads the raw messages (docs/orderbook.md, "Capture"): ccxt.pro's ``watch_order_book`` resolves with its own
merged book; the diff messages, their ``U``/``u``/``pu`` ids and the duplicates it drops never reach the caller, and
those are what must be stored. So the capture wraps the client instance's ``handle_order_book`` (as the live feed
wraps ``handle_ohlcv``): every raw ``depthUpdate`` payload is handed to ``services.capture.DepthSync`` first, then to
ccxt unchanged. ``watch_order_book`` still runs — it owns the subscription, the connection and its re-opening after
a network error — but with ccxt's own gap reaction switched off (option ``watchOrderBook.checksum = False``: ccxt
4.5 raises ``ChecksumError`` and, re-watched, kept raising it without resubscribing against the recorded stream), so
a gap never tears the subscription down. The capture's own check decides gaps and asks for its own REST snapshot
(``fetch_order_book``); its correctness rests on the public API plus one handler name, not on ccxt's private book,
which after a gap is stale and unused. A raw aiohttp socket would have meant re-writing ccxt's connection, subscription and ping
handling per venue.

Reconnect: a network error on a stream waits ``live.backoff_delay`` (1, 2, 4 … 60 s with jitter) and watches again;
before the exchange's 24-hour connection limit (``max_connection_ms``, 23 h by default on the injected clock) the
capture closes its WebSocket connections itself. Lost messages show up as a sequence gap and are resynced like any
other. Writes go through ``services.capture.StoreWriter`` (batched, its own thread, bounded on-disk spool).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pivotal.core.clock import Clock, WallClock
from pivotal.core.errors import UserInputError
from pivotal.runtime.feeds.live import DEFAULT_MAX_CONNECTION_MS, backoff_delay
from pivotal.services.capture import (
    CaptureBatch,
    CaptureError,
    DepthDiff,
    DepthSnapshot,
    DepthSync,
    Spool,
    StoreWriter,
    SymbolCounters,
    WriterCounters,
    diff_rows,
    snapshot_rows,
)

log = logging.getLogger(__name__)


@dataclass
class CaptureReport:
    """What a capture did, per symbol and in total (also the live health view)."""

    exchange: str
    depth: dict[str, SymbolCounters] = field(default_factory=dict)
    trades: dict[str, int] = field(default_factory=dict)  # distinct trades captured
    trade_duplicates: int = 0
    trade_gaps: int = 0  # jumps in trade ids (trades lost while away; not backfilled)
    reconnects: int = 0
    rollovers: int = 0
    last_message_ms: dict[str, int] = field(default_factory=dict)  # per stream, on the capture's clock
    last_event_ms: dict[str, int] = field(default_factory=dict)  # per symbol: exchange event time E of the last diff
    writer: WriterCounters = field(default_factory=WriterCounters)
    spooled_pending: int = 0  # batches still in the spool at the end (written on the next run)
    error: str | None = None

    @property
    def gaps(self) -> int:
        return sum(c.gaps for c in self.depth.values())

    @property
    def messages(self) -> int:
        return sum(c.messages for c in self.depth.values())


def _trade_row(tr: dict[str, Any]) -> tuple[int, int, float, float, bool]:
    info = tr.get("info") or {}
    maker = info.get("m") if isinstance(info, dict) else None
    buyer_maker = bool(maker) if maker is not None else tr.get("side") == "sell"
    return int(tr["timestamp"]), int(tr["id"]), float(tr["price"]), float(tr["amount"]), buyer_maker


class Capture:
    """Capture ``symbols`` of one ccxt.pro exchange into ``writer``'s store until ``stop()``, ``duration_s`` or
    ``until(report)`` is true. ``exchange``: a ccxt.pro instance or a zero-argument factory of one. ``writer=None``
    keeps the live books (``syncs``) without storing anything (the consolidator's use)."""

    def __init__(
        self,
        exchange: Any,
        symbols: Sequence[str],
        writer: StoreWriter | None,
        *,
        depth: bool = True,
        trades: bool = True,
        snapshot_limit: int = 1000,
        flush_rows: int = 20_000,
        flush_s: float = 1.0,
        clock: Clock | None = None,
        now_ns: Callable[[], int] = time.time_ns,
        sleep: Callable[[float], Any] | None = None,
        rng: random.Random | None = None,
        max_connection_ms: int = DEFAULT_MAX_CONNECTION_MS,
        rollover_check_s: float = 1.0,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 60.0,
        jitter: float = 0.2,
    ) -> None:
        if not symbols:
            raise UserInputError("capture: give at least one symbol, e.g. --symbols BTC/USDT")
        if not (depth or trades):
            raise UserInputError("capture: nothing to capture; pass --depth, --trades or both")
        self._exchange_arg = exchange
        self.symbols = list(symbols)
        self.writer = writer
        self.with_depth, self.with_trades = depth, trades
        self.snapshot_limit = snapshot_limit
        self.flush_rows, self.flush_s = flush_rows, flush_s
        self.clock: Clock = clock or WallClock()
        self.now_ns = now_ns
        self._sleep = sleep or asyncio.sleep
        self.rng = rng or random.Random()
        self.max_connection_ms, self.rollover_check_s = max_connection_ms, rollover_check_s
        self._backoff = (backoff_base_s, backoff_cap_s, jitter)
        self.syncs = {s: DepthSync(s) for s in self.symbols}
        self.report = CaptureReport("", {s: self.syncs[s].counters for s in self.symbols}, {s: 0 for s in self.symbols})
        self._diffs: dict[str, list[DepthDiff]] = {s: [] for s in self.symbols}
        self._snaps: list[tuple[str, DepthSnapshot]] = []
        self._trade_rows: dict[str, list[tuple[int, int, float, float, bool]]] = {s: [] for s in self.symbols}
        self._last_trade: dict[str, int] = {}
        self._ids: dict[str, str] = {}  # exchange market id -> symbol
        self._snapshot_tasks: dict[str, asyncio.Task[None]] = {}
        self._stop = asyncio.Event()
        self._until: Callable[[CaptureReport], bool] | None = None
        self._session_start = 0
        self._exchange: Any = None
        self._pending_rows = 0

    # -- lifecycle ------------------------------------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    async def run(self, duration_s: float | None = None, until: Callable[[CaptureReport], bool] | None = None) -> CaptureReport:
        """Capture until stopped; every captured row is handed to the writer before this returns (the writer itself
        is closed by its owner)."""
        self._until = until
        arg = self._exchange_arg
        self._exchange = exchange = arg() if callable(arg) and not hasattr(arg, "watch_order_book") else arg
        self.report.exchange = str(getattr(exchange, "id", "") or "")
        tasks: list[asyncio.Task[Any]] = []
        try:
            await self._retrying(exchange.load_markets)
            for s in self.symbols:
                if s not in exchange.markets:
                    raise UserInputError(
                        f"capture: {self.report.exchange} has no market {s!r}; use a unified symbol like BTC/USDT"
                    )
                self._ids[str(exchange.market(s)["id"])] = s
            self._install_tap(exchange)
            exchange.options.setdefault("watchOrderBook", {})["checksum"] = False  # gaps are the capture's to handle
            self._session_start = self.clock.now_ms()
            tasks.append(asyncio.create_task(self._guard(self._rollover_loop())))
            for s in self.symbols:
                if self.with_depth:
                    tasks.append(asyncio.create_task(self._guard(self._depth_loop(s))))
                if self.with_trades:
                    tasks.append(asyncio.create_task(self._guard(self._trade_loop(s))))
            tasks.append(asyncio.create_task(self._guard(self._flusher())))
            waiter = asyncio.create_task(self._stop.wait())
            await asyncio.wait({waiter}, timeout=duration_s)
            waiter.cancel()
        finally:
            for task in [*tasks, *self._snapshot_tasks.values()]:
                task.cancel()
            await asyncio.gather(*tasks, *self._snapshot_tasks.values(), return_exceptions=True)
            with contextlib.suppress(Exception):
                await exchange.close()
            self._flush(force=True)
            if self.writer is not None:
                self.report.writer = self.writer.counters
        if self.report.error is not None:
            raise CaptureError(f"capture stopped: {self.report.error}")
        return self.report

    async def _guard(self, body: Any) -> None:
        try:
            await body
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # an unrecoverable error in one stream stops the capture, reported
            self.report.error = f"{type(exc).__name__}: {exc}"
            self._stop.set()

    async def _retrying(self, call: Callable[[], Any]) -> Any:
        import ccxt

        attempt = 0
        while True:
            try:
                return await call()
            except ccxt.OperationFailed:  # network errors, timeouts, rate limits, -1001/-1008
                await self._sleep(backoff_delay(attempt, self.rng, *self._backoff))
                attempt += 1

    def _check_until(self) -> None:
        if self._until is not None and self._until(self.report):
            self._stop.set()

    # -- depth ----------------------------------------------------------------------------------------------------------
    def _install_tap(self, exchange: Any) -> None:
        """Hand every raw diff-depth payload to the capture before ccxt merges it (see the module doc)."""
        original = getattr(exchange, "handle_order_book", None)
        if original is None:
            raise UserInputError(
                f"capture: ccxt.pro {self.report.exchange} has no diff-depth handler; depth capture is Binance-only"
            )

        def handle_order_book(client: Any, message: Any) -> Any:
            if isinstance(message, dict) and "U" in message and "u" in message:
                symbol = self._ids.get(str(message.get("s")))
                if symbol is not None:
                    try:
                        self._on_diff(symbol, DepthDiff.from_binance(message, self.now_ns()))
                    except Exception as exc:  # a bug here must stop the capture, not vanish inside ccxt
                        self.report.error = f"{type(exc).__name__}: {exc}"
                        self._stop.set()
            return original(client, message)

        exchange.handle_order_book = handle_order_book

    def _on_diff(self, symbol: str, diff: DepthDiff) -> None:
        sync = self.syncs[symbol]
        if not sync.is_new(diff):
            return
        if self.writer is not None:
            self._diffs[symbol].append(diff)
            self._pending_rows += len(diff.bids) + len(diff.asks)
        self.report.last_message_ms[f"{symbol} depth"] = self.clock.now_ms()
        if diff.event_ts_ms is not None:
            self.report.last_event_ms[symbol] = diff.event_ts_ms
        if sync.on_diff(diff):
            self._want_snapshot(symbol)
        self._check_until()

    def _want_snapshot(self, symbol: str) -> None:
        task = self._snapshot_tasks.get(symbol)
        if task is None or task.done():
            self._snapshot_tasks[symbol] = asyncio.ensure_future(self._guard(self._snapshot(symbol)))

    async def _snapshot(self, symbol: str) -> None:
        """Fetch REST snapshots until one bridges the buffered diffs (Binance: retry with a newer one)."""
        sync = self.syncs[symbol]
        while True:
            book = await self._retrying(lambda: self._exchange.fetch_order_book(symbol, self.snapshot_limit))
            nonce = book.get("nonce")
            if nonce is None:
                raise CaptureError(f"capture: {symbol} depth snapshot without lastUpdateId; cannot check the sequence")
            ts = book.get("timestamp")
            snap = DepthSnapshot(
                self.now_ns(),
                int(nonce),
                [(float(p), float(q)) for p, q, *_ in book["bids"]],
                [(float(p), float(q)) for p, q, *_ in book["asks"]],
                None if ts is None else int(ts),
                None if ts is None else int(ts),
            )
            if self.writer is not None:
                self._snaps.append((symbol, snap))
                self._pending_rows += len(snap.bids) + len(snap.asks)
            if not sync.on_snapshot(snap):
                return
            await self._sleep(0.1)  # the snapshot is older than the first buffered diff: wait for a newer one

    async def _depth_loop(self, symbol: str) -> None:
        """Keep ccxt's order-book subscription alive (the raw messages arrive through the tap)."""
        import ccxt

        attempt = 0
        while True:
            try:
                await self._exchange.watch_order_book(symbol)
                attempt = 0
            except asyncio.CancelledError:  # the rollover closed the connection: watch again (ccxt reconnects)
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
            except ccxt.OperationFailed:
                self.report.reconnects += 1
                await self._sleep(backoff_delay(attempt, self.rng, *self._backoff))
                attempt += 1

    # -- trades -----------------------------------------------------------------------------------------------------------
    async def _trade_loop(self, symbol: str) -> None:
        import ccxt

        attempt = 0
        while True:
            try:
                trades = await self._exchange.watch_trades(symbol)
                attempt = 0
                self.report.last_message_ms[f"{symbol} trades"] = self.clock.now_ms()
                for tr in trades:
                    self._on_trade(symbol, _trade_row(tr))
                self._check_until()
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
            except ccxt.OperationFailed:
                self.report.reconnects += 1
                await self._sleep(backoff_delay(attempt, self.rng, *self._backoff))
                attempt += 1

    def _on_trade(self, symbol: str, row: tuple[int, int, float, float, bool]) -> None:
        last = self._last_trade.get(symbol)
        trade_id = row[1]
        if last is not None and trade_id <= last:
            self.report.trade_duplicates += 1
            return
        if last is not None and trade_id > last + 1:
            self.report.trade_gaps += 1
        self._last_trade[symbol] = trade_id
        self.report.trades[symbol] += 1
        if self.writer is not None:
            self._trade_rows[symbol].append(row)
            self._pending_rows += 1

    # -- rollover and writes -----------------------------------------------------------------------------------------------
    async def _rollover_loop(self) -> None:
        """Before the exchange's 24-hour limit, close the WebSocket connections; the stream loops watch again (a new
        connection, resubscribed) and any message lost in between shows up as a gap, resynced as usual."""
        while True:
            await self._sleep(self.rollover_check_s)
            now = self.clock.now_ms()
            if now - self._session_start < self.max_connection_ms:
                continue
            self._session_start = now
            self.report.rollovers += 1
            self.report.reconnects += 1
            close_ws = getattr(self._exchange, "close_ws_clients", None)
            if close_ws is not None:
                await close_ws()

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(min(self.flush_s, 0.05) if self._pending_rows >= self.flush_rows else self.flush_s)
            self._flush(force=False)

    def _flush(self, force: bool) -> None:
        """Hand the captured rows to the writer: snapshots first (a resync's snapshot before the diffs after it)."""
        writer = self.writer
        if writer is None:
            return
        if not force and self._pending_rows == 0:
            writer.raise_error()
            return
        exchange = self.report.exchange
        snaps, self._snaps = self._snaps, []
        for symbol, snap in snaps:
            writer.put(CaptureBatch("depth_snapshot", exchange, symbol, snapshot_rows(snap)))
        for symbol in self.symbols:
            diffs, self._diffs[symbol] = self._diffs[symbol], []
            if diffs:
                writer.put(CaptureBatch("depth_updates", exchange, symbol, diff_rows(diffs)))
            rows, self._trade_rows[symbol] = self._trade_rows[symbol], []
            if rows:
                frame = pd.DataFrame(rows, columns=["ts", "trade_id", "price", "amount", "is_buyer_maker"])
                frame = frame.sort_values(["ts", "trade_id"], kind="stable").reset_index(drop=True)
                writer.put(CaptureBatch("trades", exchange, symbol, frame))
        self._pending_rows = 0


# --- building one from the command line ---------------------------------------------------------------------------------
def client_factory(exchange: str, rest_url: str | None = None, ws_url: str | None = None) -> Callable[[], Any]:
    """A ccxt.pro client for public streams (no keys); ``rest_url``/``ws_url`` point it at a local test exchange."""

    def make() -> Any:
        import ccxt.pro

        from pivotal.runtime.exchange_node import point_client

        if exchange not in ccxt.pro.exchanges:
            raise UserInputError(f"capture: unknown exchange {exchange!r}; ccxt.pro knows e.g. binance, binanceusdm")
        options: dict[str, Any] = {"fetchCurrencies": False}
        if exchange == "binance":
            options.update(fetchMarkets={"types": ["spot"]}, fetchMargins=False)
        client = getattr(ccxt.pro, exchange)({"enableRateLimit": True, "options": options})
        point_client(client, rest_url, ws_url)
        ws = client.urls.get("api", {}).get("ws")
        if (ws_url or rest_url) and isinstance(ws, dict):  # USD-M streams live under 'linear' (and 'future')
            ws.update({key: ws["spot"] for key in ("linear", "future") if key in ws and "spot" in ws})
        return client

    return make


def run_capture(
    store: Any,
    spool_dir: Path,
    exchange: str,
    symbols: Sequence[str],
    *,
    depth: bool = True,
    trades: bool = True,
    rest_url: str | None = None,
    ws_url: str | None = None,
    duration_s: float | None = None,
    spool_bytes: int = 1 << 30,
    **options: Any,
) -> CaptureReport:
    """The command's body: capture into ``store`` until ``duration_s`` passes or Ctrl-C; batches the store refuses
    wait in ``spool_dir`` and are written first on the next run."""
    writer = StoreWriter(store, Spool(spool_dir, spool_bytes))
    capture = Capture(client_factory(exchange, rest_url, ws_url), symbols, writer, depth=depth, trades=trades, **options)
    try:
        report = asyncio.run(capture.run(duration_s))
    except KeyboardInterrupt:  # Ctrl-C: run() has flushed what it captured; write it (or spool it) and report
        report = capture.report
    finally:
        writer.close()
    report.writer = writer.counters
    report.spooled_pending = len(writer.spool)
    writer.raise_error()
    return report
