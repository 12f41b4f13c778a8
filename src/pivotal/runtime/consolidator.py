"""COBY: several venues' order books in one process, consolidated, with each venue's health.

Binance venues (``binance`` spot, ``binanceusdm``) run a ``runtime.capture.Capture`` without a store (the raw diff tap,
the ``U``/``u``/``pu`` check, REST resyncs, reconnect with backoff); Coinbase, Bybit and OKX run a
``runtime.venues.SocketBookFeed`` with their own wire format and sequence rule (Coinbase ``sequence_num``, Bybit
``u``, OKX ``seqId``/``prevSeqId`` and the CRC32 checksum; resync = a fresh snapshot on a new connection). All run on
one event loop, each with its own ccxt.pro client. ``book(symbol)`` merges the books of the venues that are in sync
and fresh (``data.orderbook.consolidated.consolidate``); a venue whose book is resyncing or older than
``max_age_ms`` (exchange event time, against the freshest venue) is left out and says why in ``health()``.

Instruments: each venue's symbol is normalized to ``BASE/QUOTE``; USD and USDT (and USDC) are different instruments
and are kept apart unless ``quote_groups`` maps them together explicitly (``{"USDT": "USD"}``: BTC/USDT books join
the BTC/USD book, at face value, with each venue's own quote in ``health``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pivotal.core.clock import Clock, WallClock
from pivotal.core.errors import UserInputError
from pivotal.data.orderbook.book import OrderBook
from pivotal.data.orderbook.consolidated import ConsolidatedBook, consolidate, normalize_symbol
from pivotal.runtime.capture import Capture
from pivotal.runtime.venues import PROTOCOLS, SocketBookFeed

SUPPORTED = ("binance", "binanceusdm", "coinbase", "bybit", "okx")
BINANCE = ("binance", "binanceusdm")


@dataclass(frozen=True)
class VenueSpec:
    """A venue: its name in reports, its ccxt.pro client (or a factory of one) and its own unified symbols."""

    name: str
    exchange: Any
    symbols: tuple[str, ...]
    exchange_id: str = "binance"  # which wire format and sequence rules apply (one of SUPPORTED)


@dataclass(frozen=True)
class VenueHealth:
    venue: str
    symbol: str
    synced: bool
    messages: int
    gaps: int
    checksum_failures: int
    resyncs: int
    reconnects: int
    last_event_ms: int | None  # exchange event time of the newest diff
    lag_ms: int | None  # the consolidator's clock minus that event time (network + processing delay, live)
    behind_ms: int | None  # the freshest venue's event time minus this one's (a stalled venue grows this)
    included: bool  # in the consolidated book now
    reason: str  # why not, when not
    quote: str = ""  # the venue's own quote currency (differs from the instrument's where quote_groups joined them)


class Consolidator:
    """Run the venues until ``duration_s``, ``until(self)`` or ``stop()``; read ``book``/``health`` meanwhile."""

    def __init__(
        self,
        venues: Sequence[VenueSpec],
        *,
        depth: int = 20,
        max_age_ms: int = 5_000,
        clock: Clock | None = None,
        quote_groups: dict[str, str] | None = None,
        on_update: Callable[[str, str], None] | None = None,
        **capture_options: Any,
    ) -> None:
        if not venues:
            raise UserInputError("consolidator: give at least one venue")
        names = [v.name for v in venues]
        if len(set(names)) != len(names):
            raise UserInputError(f"consolidator: venue names must differ (got {names})")
        for v in venues:
            if v.exchange_id not in SUPPORTED:
                raise UserInputError(
                    f"consolidator: venue {v.name!r} ({v.exchange_id}) is not supported; use one of {', '.join(SUPPORTED)}"
                )
        self.venues = list(venues)
        self.depth, self.max_age_ms = depth, max_age_ms
        self.clock: Clock = clock or WallClock()
        self.quote_groups = {k.upper(): v.upper() for k, v in (quote_groups or {}).items()}
        self.on_update = on_update
        self.captures: dict[str, Capture] = {}
        self.feeds: dict[str, SocketBookFeed] = {}
        for v in venues:
            if v.exchange_id in BINANCE:
                cap = Capture(v.exchange, v.symbols, None, depth=True, trades=False, clock=self.clock, **capture_options)
                self._tap_capture(v.name, cap)
                self.captures[v.name] = cap
            else:
                backoff = {k: capture_options[k] for k in ("backoff_base_s", "backoff_cap_s", "jitter") if k in capture_options}
                feed = SocketBookFeed(v.exchange, v.symbols, PROTOCOLS[v.exchange_id](), clock=self.clock, **backoff)
                feed.on_update = lambda symbol, name=v.name: self._updated(name, symbol)
                self.feeds[v.name] = feed
        self._instruments = {v.name: {self.instrument(s): s for s in v.symbols} for v in venues}
        self._stop = asyncio.Event()

    def instrument(self, symbol: str) -> str:
        """The consolidated instrument of a venue symbol: ``BASE/QUOTE`` with ``quote_groups`` applied."""
        base, quote = normalize_symbol(symbol).split("/")
        return f"{base}/{self.quote_groups.get(quote, quote)}"

    def _tap_capture(self, venue: str, cap: Capture) -> None:
        """Call ``on_update`` after every diff the Binance capture handles (its ``_on_diff``, wrapped per instance)."""
        original = cap._on_diff

        def on_diff(symbol: str, diff: Any) -> None:
            original(symbol, diff)
            self._updated(venue, symbol)

        setattr(cap, "_on_diff", on_diff)  # noqa: B010 - an instance attribute shadows the method

    def _updated(self, venue: str, symbol: str) -> None:
        if self.on_update is not None:
            self.on_update(venue, symbol)

    def stop(self) -> None:
        self._stop.set()
        for c in self.captures.values():
            c.stop()
        for f in self.feeds.values():
            f.stop()

    async def run(self, duration_s: float | None = None, until: Callable[[Consolidator], bool] | None = None) -> None:
        runs: list[asyncio.Task[Any]] = [asyncio.create_task(c.run(duration_s)) for c in self.captures.values()]
        runs += [asyncio.create_task(f.run(duration_s)) for f in self.feeds.values()]
        watcher = asyncio.create_task(self._watch(until))
        try:
            done, _ = await asyncio.wait(runs, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # a venue's fatal error is the consolidator's
        finally:
            self.stop()
            watcher.cancel()
            await asyncio.gather(*runs, watcher, return_exceptions=True)

    async def _watch(self, until: Callable[[Consolidator], bool] | None) -> None:
        while until is not None:
            await asyncio.sleep(0.02)
            if until(self):
                self.stop()
                return

    # -- reading -----------------------------------------------------------------------------------------------------------
    def _state(self, venue: str, own: str) -> tuple[OrderBook, bool, str, tuple[int, int, int, int, int], int | None]:
        """(book, synced, reason, (messages, gaps, checksum failures, resyncs, reconnects), last event ms)."""
        if venue in self.captures:
            cap = self.captures[venue]
            sync = cap.syncs[own]
            c = sync.counters
            reason = ""
            if not sync.book.synced or sync.waiting:
                reason = "resyncing after a sequence gap" if c.gaps else "waiting for the first snapshot"
            counts = (c.messages, c.gaps, 0, c.resyncs, cap.report.reconnects)
            return sync.book, reason == "", reason, counts, cap.report.last_event_ms.get(own)
        feed = self.feeds[venue]
        st = feed.states[own]
        counts = (st.messages, st.gaps, st.checksum_failures, st.resyncs, feed.reconnects)
        return st.book, st.synced, st.reason, counts, st.last_event_ms

    def health(self, symbol: str) -> dict[str, VenueHealth]:
        """Per venue holding ``symbol`` (any spelling of the instrument): sync state, counters, lag, inclusion."""
        key = self.instrument(symbol)
        now = self.clock.now_ms()
        states = {v: self._state(v, inst[key]) for v, inst in self._instruments.items() if key in inst}
        freshest = max((st[4] for st in states.values() if st[4] is not None), default=None)
        out: dict[str, VenueHealth] = {}
        for venue, (_, synced, reason, counts, event) in states.items():
            own = self._instruments[venue][key]
            behind = None if event is None or freshest is None else freshest - event
            if synced and behind is not None and behind > self.max_age_ms:
                reason = f"{behind} ms behind the freshest venue (limit {self.max_age_ms} ms)"
            out[venue] = VenueHealth(
                venue, own, synced, *counts, event, None if event is None else now - event, behind,
                synced and reason == "", reason, normalize_symbol(own).split("/")[1],
            )  # fmt: skip
        return out

    def venue_book(self, venue: str, symbol: str) -> OrderBook:
        """One venue's own rebuilt book of ``symbol`` (any spelling of the instrument)."""
        return self._state(venue, self._instruments[venue][self.instrument(symbol)])[0]

    def book(self, symbol: str) -> ConsolidatedBook:
        """The consolidated book of ``symbol`` over the venues included now (see ``health``)."""
        key = self.instrument(symbol)
        health = self.health(key)
        books = {v: self.venue_book(v, key) for v, h in health.items() if h.included}
        return consolidate(key, books, self.depth)
