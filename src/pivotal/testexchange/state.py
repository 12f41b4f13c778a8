"""The exchange's state on its event loop: recorded markets, replay clock, live order books, matching engine, and the
replay driver that walks the tape as the clock moves and hands each event to the engine and the streams."""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal

from pivotal.testexchange import wire
from pivotal.testexchange.clock import ReplayClock
from pivotal.testexchange.faults import Faults
from pivotal.testexchange.markets import SymbolRules, rules_for
from pivotal.testexchange.matching import Fill, MatchingEngine, Order
from pivotal.testexchange.streams import Hub
from pivotal.testexchange.tape import BAR_CLOSE, DEPTH, TRADE, Depth, Event, SymbolData, Tape


class Book:
    """The recorded L2 book of one symbol as of the replay clock: the REST snapshot plus the diffs replayed so far."""

    def __init__(self, depth: Depth) -> None:
        self.depth = depth
        self.bids, self.asks = dict(depth.bids), dict(depth.asks)
        self.last_update_id = depth.last_update_id
        self.applied = -1  # index of the last replayed diff message (-1: the snapshot as recorded)

    def apply(self, i: int) -> None:
        d = self.depth
        lo, hi = d.msg_rows[i]
        for j in range(lo, hi):
            side = self.bids if d.side_is_bid[j] else self.asks
            price, qty = float(d.price[j]), float(d.qty[j])
            if qty == 0:
                side.pop(price, None)
            else:
                side[price] = qty
        self.last_update_id = int(d.msg_final[i])
        self.applied = i


class ExchangeState:
    def __init__(
        self,
        markets: dict[str, SymbolData],
        clock: ReplayClock,
        faults: Faults,
        balances: dict[str, Decimal],
        taker_fee: Decimal,
        maker_fee: Decimal,
        api_key: str,
        api_secret: str,
    ) -> None:
        self.markets, self.clock, self.faults = markets, clock, faults
        self.api_key, self.api_secret = api_key, api_secret
        self.rules: dict[str, SymbolRules] = {s: rules_for(s) for s in markets}
        self.engine = MatchingEngine(self.rules, markets, balances, taker_fee, maker_fee)
        self.engine.listeners.append(self._on_order)
        self.hub = Hub(faults)
        self.listen_keys: set[str] = set()
        start = clock.now_ms()
        self.books: dict[str, Book] = {}
        for symbol, data in markets.items():
            if data.depth is not None:
                book = self.books[symbol] = Book(data.depth)
                for i in range(len(data.depth.msg_ts)):
                    if int(data.depth.msg_ts[i]) > start:
                        break
                    book.apply(i)
        self.tape = Tape(markets, start)
        self.events_processed = 0
        self._wake = asyncio.Event()
        self._stopped = False

    def now(self) -> int:
        return self.clock.now_ms()

    # --- replay -------------------------------------------------------------------------------------------------------
    def catch_up(self) -> None:
        """Process every recorded event up to the clock's now (called before each request is answered)."""
        now = self.clock.now_ms()
        while (nxt := self.tape.peek()) is not None and nxt.time <= now:
            self._dispatch(self.tape.pop())

    def advance_to(self, t_ms: int) -> None:
        self.clock.advance_to(t_ms)
        self.catch_up()
        self._wake.set()

    def _dispatch(self, e: Event) -> None:
        self.events_processed += 1
        data = self.markets[e.symbol]
        low = e.symbol.lower()
        self.engine.on_event(e)
        self._flush_balances(e.time)
        if e.kind == TRADE and data.trades is not None:
            if self.hub.wants(name := f"{low}@trade"):
                self.hub.publish(name, wire.trade_event(data.trades, e.index, e.symbol))
        elif e.kind == DEPTH and data.depth is not None:
            self.books[e.symbol].apply(e.index)
            names = [n for n in (f"{low}@depth@100ms", f"{low}@depth") if self.hub.wants(n)]
            if names:
                msg = wire.depth_event(data.depth, e.index, e.symbol)
                for name in names:
                    self.hub.publish(name, msg)
        elif e.kind == BAR_CLOSE and self.hub.wants(name := f"{low}@kline_{e.timeframe}"):
            c = data.klines[e.timeframe]
            self.hub.publish(name, wire.kline_event(c, e.index, e.timeframe, e.symbol, e.time, closed=True))
            if self.faults.open_klines and e.index + 1 < len(c.ts) and int(c.ts[e.index + 1]) == e.time:
                self.hub.publish(name, wire.open_kline_event(c, e.index + 1, e.timeframe, e.symbol))

    async def run(self) -> None:
        """The replay driver. Paced (speed > 0): events play when the clock reaches them. Speed 0: the clock jumps to
        the next event as soon as every market-data subscriber has been sent everything (as fast as clients read);
        with no subscriber it holds until a subscriber arrives or a test moves it."""
        while not self._stopped:
            self.catch_up()
            nxt = self.tape.peek()
            if nxt is None:
                await self._sleep(0.05)
                continue
            if self.clock.paced:
                await self._sleep(min(self.clock.wall_seconds_until(nxt.time), 0.05))
            elif self.clock.speed == 0 and not self.clock.paused and self.hub.has_market_subscribers():
                if not self.hub.drained():
                    self.hub.progress.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.hub.progress.wait(), 0.05)
                    continue
                self.clock.advance_to(nxt.time)
                await asyncio.sleep(0)
            else:
                await self._sleep(0.01)

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()

    # --- user data --------------------------------------------------------------------------------------------------
    def _on_order(self, order: Order, exec_type: str, fill: Fill | None) -> None:
        event_ms = max(self.now(), fill.time if fill else 0)
        self.hub.publish_user(wire.execution_report(order, exec_type, fill, event_ms))
        self._flush_balances(event_ms)

    def _flush_balances(self, event_ms: int) -> None:
        assets = sorted(self.engine.updated_assets)
        if not assets:
            return
        self.engine.updated_assets.clear()
        rows = [(a, *self.engine.balance(a)) for a in assets]
        self.hub.publish_user(wire.account_position(rows, event_ms))
