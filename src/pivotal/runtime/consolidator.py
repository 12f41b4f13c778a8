"""COBY: several venues' order books in one process, consolidated, with each venue's health.

Each venue runs a ``runtime.capture.Capture`` without a store (its own ccxt.pro client, the raw diff tap, the update-id
check, REST resyncs, reconnect with backoff), all on one event loop. ``book(symbol)`` merges the books of the venues
that are in sync and fresh (``data.orderbook.consolidated.consolidate``); a venue whose book is resyncing or older
than ``max_age_ms`` (exchange event time, against the freshest venue) is left out and says why in ``health()``.

Built: the Binance family (``binance`` spot, ``binanceusdm``), whose raw ``U``/``u``/``pu`` diffs the capture checks.
Not built: Coinbase, Bybit, OKX — their streams carry other sequence schemes (Coinbase ``sequence``, Bybit ``u``/``seq``
with snapshots on the socket, OKX ``seqId``/``prevSeqId`` and CRC32 checksums) and need a tap each; a venue of those
is refused with that message rather than consolidated on an unchecked book.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pivotal.core.clock import Clock, WallClock
from pivotal.core.errors import UserInputError
from pivotal.data.orderbook.consolidated import ConsolidatedBook, consolidate, normalize_symbol
from pivotal.runtime.capture import Capture

SUPPORTED = ("binance", "binanceusdm")


@dataclass(frozen=True)
class VenueSpec:
    """A venue: its name in reports, its ccxt.pro client (or a factory of one) and its own unified symbols."""

    name: str
    exchange: Any
    symbols: tuple[str, ...]
    exchange_id: str = "binance"  # which sequence rules apply (one of SUPPORTED)


@dataclass(frozen=True)
class VenueHealth:
    venue: str
    symbol: str
    synced: bool
    messages: int
    gaps: int
    resyncs: int
    reconnects: int
    last_event_ms: int | None  # exchange event time of the newest diff
    lag_ms: int | None  # the consolidator's clock minus that event time (network + processing delay, live)
    behind_ms: int | None  # the freshest venue's event time minus this one's (a stalled venue grows this)
    included: bool  # in the consolidated book now
    reason: str  # why not, when not


class Consolidator:
    """Run the venues until ``duration_s``, ``until(self)`` or ``stop()``; read ``book``/``health`` meanwhile."""

    def __init__(
        self,
        venues: Sequence[VenueSpec],
        *,
        depth: int = 20,
        max_age_ms: int = 5_000,
        clock: Clock | None = None,
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
                    f"consolidator: venue {v.name!r} ({v.exchange_id}) is not built yet; sequence-checked books exist "
                    f"for {', '.join(SUPPORTED)} only (Coinbase, Bybit, OKX need their own diff tap)"
                )
        self.venues = list(venues)
        self.depth, self.max_age_ms = depth, max_age_ms
        self.clock: Clock = clock or WallClock()
        self.captures = {
            v.name: Capture(v.exchange, v.symbols, None, depth=True, trades=False, clock=self.clock, **capture_options)
            for v in venues
        }
        self._instruments = {v.name: {normalize_symbol(s): s for s in v.symbols} for v in venues}
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()
        for c in self.captures.values():
            c.stop()

    async def run(self, duration_s: float | None = None, until: Callable[[Consolidator], bool] | None = None) -> None:
        runs = [asyncio.create_task(c.run(duration_s)) for c in self.captures.values()]
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
    def health(self, symbol: str) -> dict[str, VenueHealth]:
        """Per venue holding ``symbol`` (any spelling of the instrument): sync state, counters, lag, inclusion."""
        key = normalize_symbol(symbol)
        now = self.clock.now_ms()
        events = {v: self.captures[v].report.last_event_ms.get(inst[key]) for v, inst in self._instruments.items() if key in inst}
        freshest = max((e for e in events.values() if e is not None), default=None)
        out: dict[str, VenueHealth] = {}
        for venue, event in events.items():
            cap = self.captures[venue]
            own = self._instruments[venue][key]
            sync, report = cap.syncs[own], cap.report
            behind = None if event is None or freshest is None else freshest - event
            reason = ""
            if not sync.book.synced or sync.waiting:
                reason = "resyncing after a sequence gap" if sync.counters.gaps else "waiting for the first snapshot"
            elif behind is not None and behind > self.max_age_ms:
                reason = f"{behind} ms behind the freshest venue (limit {self.max_age_ms} ms)"
            out[venue] = VenueHealth(
                venue,
                own,
                sync.book.synced and not sync.waiting,
                sync.counters.messages,
                sync.counters.gaps,
                sync.counters.resyncs,
                report.reconnects,
                event,
                None if event is None else now - event,
                behind,
                reason == "",
                reason,
            )
        return out

    def book(self, symbol: str) -> ConsolidatedBook:
        """The consolidated book of ``symbol`` over the venues included now (see ``health``)."""
        key = normalize_symbol(symbol)
        health = self.health(key)
        books = {v: self.captures[v].syncs[h.symbol].book for v, h in health.items() if h.included}
        return consolidate(key, books, self.depth)
