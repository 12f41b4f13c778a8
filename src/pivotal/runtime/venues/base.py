"""A venue's live order books through its own ccxt.pro client, with the venue's sequence rule checked on the raw
messages: the part of COBY that differs per exchange.

Why the raw messages: ccxt.pro's ``watch_order_book`` resolves with a merged book and (Coinbase, Bybit) checks no
sequence at all, so a lost message would leave a wrong book forever. As the Binance capture does, the feed wraps one
handler of the client instance (``VenueProtocol.handler``), parses every raw message into ``BookUpdate`` s
(``data.orderbook.venues``) and keeps its own exact ``OrderBook`` per symbol; ccxt still owns the connection, the
subscription and pings. Coinbase, Bybit and OKX send their snapshot on the socket, so a resync (after a sequence gap
or a checksum failure) unsubscribes the book through ccxt's own ``un_watch_order_book`` and watches it again on the
same connection (OKX's documented remedy; the same works on the other two): the venue sends a fresh snapshot and
the updates before it are ignored. ccxt.pro okx already resubscribes by itself after a ``seqId`` gap
(``InvalidNonce``), so there the feed only marks its book and waits for that snapshot. A lost
connection is ccxt's to re-open (it resubscribes); the books wait for the new connection's snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pivotal.core.clock import Clock, WallClock
from pivotal.core.errors import PivotalError, UserInputError
from pivotal.data.orderbook.book import OrderBook
from pivotal.data.orderbook.venues import BookUpdate, chain_break, okx_checksum
from pivotal.runtime.feeds.live import backoff_delay

__all__ = ["FeedError", "FeedState", "Parsed", "SocketBookFeed", "VenueProtocol"]


class FeedError(PivotalError):
    """A venue feed stopped on an error of its own (a malformed message, a failing callback)."""


@dataclass(frozen=True)
class Parsed:
    """What one raw message held: book updates, and a break of a per-connection sequence (Coinbase) when seen."""

    updates: list[BookUpdate]
    connection_gap: tuple[int, int] | None = None


class VenueProtocol(Protocol):
    """One venue's wire format: which client handler carries the book messages and how to read them."""

    exchange_id: str
    handler: str  # method of the ccxt.pro client the feed wraps
    client_resyncs_gaps: bool  # ccxt itself resubscribes after a sequence gap (OKX): the feed must not race it
    connection_sequence: bool  # the sequence counts a connection's messages (Coinbase), checked by ``parse``

    def parse(self, client: Any, message: Any) -> Parsed: ...


@dataclass
class FeedState:
    """One symbol's book and what happened to its stream (the venue health the consolidator reports)."""

    book: OrderBook
    messages: int = 0  # book updates received (snapshots included)
    snapshots: int = 0
    gaps: int = 0  # sequence breaks
    checksum_failures: int = 0
    resyncs: int = 0  # fresh snapshots asked for after a gap, a checksum failure or a disconnect
    last_event_ms: int | None = None
    last_seq: int = -1
    reason: str = "waiting for the first snapshot"  # why the book is not usable; "" when it is

    @property
    def synced(self) -> bool:
        return self.reason == "" and self.book.synced


class SocketBookFeed:
    """Books of ``symbols`` on one venue (``protocol``) via its ccxt.pro client (or a zero-argument factory of one);
    ``on_update(symbol)`` is called after every applied update."""

    def __init__(
        self,
        exchange: Any,
        symbols: Sequence[str],
        protocol: VenueProtocol,
        *,
        clock: Clock | None = None,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 60.0,
        jitter: float = 0.2,
        rng: random.Random | None = None,
        watch_params: dict[str, Any] | None = None,
    ) -> None:
        if not symbols:
            raise UserInputError(f"{protocol.exchange_id}: give at least one symbol")
        self._exchange_arg = exchange
        self.symbols = list(symbols)
        self.protocol = protocol
        self.clock: Clock = clock or WallClock()
        self._backoff = (backoff_base_s, backoff_cap_s, jitter)
        self.rng = rng or random.Random()
        self.watch_params = dict(watch_params or {})
        self.states = {s: FeedState(OrderBook()) for s in self.symbols}
        self.reconnects = 0  # connections after the first (ccxt re-opened a lost one)
        self.error: str | None = None
        self.on_update: Callable[[str], None] | None = None
        self._ids: dict[str, str] = {}
        self._exchange: Any = None
        self._resyncs: set[asyncio.Future[Any]] = set()
        self._unwatching: set[str] = set()
        self._connections: set[Any] = set()  # ccxt clients (sockets) seen delivering
        self._stop = asyncio.Event()

    def book(self, symbol: str) -> OrderBook:
        return self.states[symbol].book

    def stop(self) -> None:
        self._stop.set()

    async def run(self, duration_s: float | None = None) -> None:
        arg = self._exchange_arg
        self._exchange = exchange = arg() if callable(arg) and not hasattr(arg, "watch_order_book") else arg
        tasks: list[asyncio.Task[None]] = []
        try:
            await exchange.load_markets()
            for s in self.symbols:
                if s not in exchange.markets:
                    raise UserInputError(f"{self.protocol.exchange_id}: no market {s!r}; use a unified symbol like BTC/USDT")
                self._ids[str(exchange.market(s)["id"])] = s
            self._install_tap(exchange)
            tasks = [asyncio.create_task(self._watch(s)) for s in self.symbols]
            waiter = asyncio.create_task(self._stop.wait())
            await asyncio.wait({waiter, *tasks}, timeout=duration_s, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            for task in tasks:
                if task.done() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            for task in tasks:
                task.cancel()
            for pending in self._resyncs:
                pending.cancel()
            await asyncio.gather(*tasks, *self._resyncs, return_exceptions=True)
            with contextlib.suppress(Exception):
                await exchange.close()
        if self.error is not None:
            raise FeedError(f"{self.protocol.exchange_id} feed stopped: {self.error}")

    # -- the tap -----------------------------------------------------------------------------------------------------
    def _install_tap(self, exchange: Any) -> None:
        original = getattr(exchange, self.protocol.handler)

        def tapped(client: Any, message: Any) -> Any:
            if client not in self._connections:
                self._on_connection(client)
            try:
                self._on_message(client, message)
            except Exception as exc:  # a bug here must stop the feed, not vanish inside ccxt
                self.error = f"{type(exc).__name__}: {exc}"
                self._stop.set()
            return original(client, message)

        setattr(exchange, self.protocol.handler, tapped)

    def _on_connection(self, client: Any) -> None:
        """A new socket delivers: after the first, a reconnect (the books wait for the new subscription's snapshot)."""
        first = not self._connections
        self._connections.add(client)
        if first:
            return
        self.reconnects += 1
        for state in self.states.values():
            if state.book.synced:
                self._unsync(state, "reconnecting: waiting for the snapshot of the new connection")

    def _on_message(self, client: Any, message: Any) -> None:
        parsed = self.protocol.parse(client, message)
        if parsed.connection_gap is not None:
            for state in self.states.values():
                if state.book.synced:
                    state.gaps += 1
                    self._unsync(state, f"resyncing after a sequence gap (expected {parsed.connection_gap[0]}, "
                                        f"received {parsed.connection_gap[1]})")  # fmt: skip
            self._resync()
        for update in parsed.updates:
            symbol = self._ids.get(update.market_id)
            if symbol is not None:
                self._on_update(symbol, update)

    def _on_update(self, symbol: str, update: BookUpdate) -> None:
        state = self.states[symbol]
        state.messages += 1
        if update.event_ms is not None:
            state.last_event_ms = update.event_ms
        book = state.book
        if update.snapshot:
            book.apply_snapshot(update.seq, update.bids, update.asks)
            state.snapshots += 1
            state.reason = ""
        elif not book.synced:
            return  # lost with the connection or after a gap: the snapshot on the new subscription replaces it
        else:
            broken = None if self.protocol.connection_sequence else chain_break(state.last_seq, update)
            if broken is not None:
                state.gaps += 1
                self._unsync(state, f"resyncing after a sequence gap (expected {broken[0]}, received {broken[1]})")
                if not self.protocol.client_resyncs_gaps:
                    self._resync()
                return
            book.apply_levels(update.seq, update.bids, update.asks)
        state.last_seq = update.seq
        if update.checksum is not None:
            bids, asks = book.top(25)
            if okx_checksum(bids, asks) != update.checksum:
                state.checksum_failures += 1
                self._unsync(state, "resyncing after a checksum failure")
                self._resync()
                return
        if self.on_update is not None:
            self.on_update(symbol)

    def _unsync(self, state: FeedState, reason: str) -> None:
        state.book.mark_unsynced()
        state.reason = reason
        state.resyncs += 1

    def _resync(self) -> None:
        """Unwatch every unsynced book (ccxt's ``un_watch_order_book``: the venue's unsubscribe, ccxt's state cleaned);
        the watch loop then subscribes again and the venue sends a fresh snapshot on the same socket."""
        for symbol, state in self.states.items():
            if not state.synced and symbol not in self._unwatching:
                self._unwatching.add(symbol)
                task = asyncio.ensure_future(self._unwatch(symbol))
                self._resyncs.add(task)
                task.add_done_callback(self._resyncs.discard)

    async def _unwatch(self, symbol: str) -> None:
        import ccxt

        try:
            with contextlib.suppress(ccxt.BaseError, ConnectionError, TimeoutError):
                await asyncio.wait_for(self._exchange.un_watch_order_book(symbol), 10)
        finally:
            self._unwatching.discard(symbol)

    # -- the subscription ------------------------------------------------------------------------------------------
    async def _watch(self, symbol: str) -> None:
        import ccxt

        attempt = 0
        while True:
            try:
                await self._exchange.watch_order_book(symbol, None, self.watch_params)
                attempt = 0
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
            except ccxt.BaseError as exc:
                if isinstance(exc, ccxt.NetworkError):  # counted as a reconnect when the new socket delivers
                    for state in self.states.values():
                        if state.book.synced:
                            self._unsync(state, "reconnecting: waiting for the snapshot of the new connection")
                await asyncio.sleep(backoff_delay(attempt, self.rng, *self._backoff))
                attempt += 1
