"""The trading node: a feed's events drive the one event engine (``execution.engine.EventEngine``) bar by bar —
strategy → risk gate → venue → portfolio — with every decision, order and fill written ahead to the journal.

The node builds the engine on empty series of its markets and pushes each closed bar of a traded (symbol,
timeframe) with ``EventEngine.push_bar``: the fill rules, brackets, gate and portfolio are the engine's, so a replay
gives exactly the trades of ``pivotal backtest`` on the same bars (tested on real data). Other events (trades, book
updates, bars of other timeframes) are counted; with a ``data_engine`` (``runtime.data_engine.DataEngine``) every
event goes to it first — it builds 1s bars from trades, derives coarser timeframes, tracks pivots and assembles model
inputs — and the bars it builds of a traded (symbol, timeframe) are pushed like fed ones. Strategies and predictors
read it through ``node.data_engine``.

Write-ahead: the node wraps the strategy (a decision is journaled, with client order ids assigned, before the gate
sees its orders), the gate (each order is journaled accepted or denied before it joins the venue's queue; a denial
by a circuit breaker is journaled as a breaker trip) and the venue (each fill is journaled with the position it
leaves before the portfolio books it). An order that leaves the queue is journaled ``order_done`` (filled or
dropped). Restarting on an existing journal re-derives the run from the feed's start, writes only what is missing
(records are idempotent by key) and checks, once past the journal's last event, that the positions it re-derived
equal the journal's (``JournalMismatch`` otherwise).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from pivotal.core.errors import PivotalError, UserInputError
from pivotal.core.events import BarClosed, MarketEvent
from pivotal.core.ids import OrderIdFactory, new_run_id
from pivotal.core.orders import Bar, Fill, Order
from pivotal.core.trades import Trade
from pivotal.data.candles import Candles
from pivotal.execution.engine import BacktestConfig, BacktestResult, EventEngine
from pivotal.execution.portfolio import OpenPosition
from pivotal.execution.simulated_venue import Match, SimulatedVenue
from pivotal.execution.venue import Venue, WorkingOrderVenue
from pivotal.risk.gate import DENY_ENTRY_PENDING, DENY_OUTSIDE_WINDOW, DENY_POSITION_OPEN, Decision, DefaultRiskGate, RiskGate
from pivotal.runtime.data_engine import DataEngine
from pivotal.runtime.journal import Journal, Recovery
from pivotal.strategies.base import BarContext, StrategyProtocol

_RULE_DENIALS = {d.reason for d in (DENY_POSITION_OPEN, DENY_ENTRY_PENDING, DENY_OUTSIDE_WINDOW)}


class JournalMismatch(PivotalError):
    """Re-deriving a run from its feed does not reproduce its journal (other data, strategy or parameters)."""


def _num(x: float) -> float | None:
    return None if x != x else float(x)  # NaN -> null in the journal


class TradingNode:
    """One strategy trading ``markets`` ((symbol, timeframe) pairs, one timeframe per symbol) on a feed's events."""

    def __init__(
        self,
        strategy: StrategyProtocol,
        markets: Sequence[tuple[str, str]],
        *,
        exchange: str = "",
        config: BacktestConfig = BacktestConfig(),
        journal: Journal | None = None,
        run: dict[str, Any] | None = None,
        run_id: str | None = None,
        gate: RiskGate | None = None,
        venue: Venue | None = None,
        progress_every: int = 1000,
        submitter: Callable[[Order, Bar], str | None] | None = None,
        data_engine: DataEngine | None = None,
    ) -> None:
        symbols = [s for s, _ in markets]
        if not markets or len(set(symbols)) != len(symbols):
            raise UserInputError(f"a node trades one timeframe per symbol; got markets {list(markets)}")
        self.markets = {s: tf for s, tf in markets}
        self.exchange = exchange
        self.journal = journal
        self.recovery: Recovery | None = journal.recover() if journal is not None else None
        header = self.recovery.run if self.recovery is not None else None
        if header is not None and journal is not None:
            expected = {k: v for k, v in (run or {}).items() if k != "run_id"}
            got = {k: header.get(k) for k in expected}
            if got != expected:
                raise UserInputError(
                    f"{journal.path}: the journal belongs to another run ({got} != {expected}); use a new --journal file"
                )
            run_id = header["run_id"]
        self.run_id = run_id or new_run_id()
        if journal is not None and header is None:
            journal.append("run", "run", {**(run or {}), "run_id": self.run_id, "markets": [list(m) for m in markets]})
        self.ids = OrderIdFactory(self.run_id)
        self._strategy = _Decisions(strategy, self)
        inner_gate = gate or DefaultRiskGate(config.risk, config.trade_window)
        inner_venue = venue or SimulatedVenue(config.fee_rate, config.slippage, config.fee_schedule)
        empty = {s: Candles.empty(exchange, s, tf) for s, tf in markets}
        self.engine = EventEngine(empty, config, gate=_Gate(inner_gate, self), venue=_wrap_venue(inner_venue, self))
        self.inner = strategy
        self.gate = inner_gate  # the risk gate as given (a RiskEngine reports its state in snapshots)
        self.last_price: dict[str, float] = {}  # symbol -> close of its last traded bar
        self.now: int | None = None  # known_at of the event being processed
        self.last_time: int | None = None
        self.events = 0
        self.ignored = 0
        self.progress_every = max(1, progress_every)
        self.submitter = submitter  # testnet/live: sends an accepted order to the exchange (None or why it refused)
        self._pending: dict[str, tuple[str, str]] = {}  # client id -> (symbol, action) of orders queued at the venue
        self._filled: set[str] = set()
        self._verified = self.recovery is None or self.recovery.last_event_time is None
        self.result: BacktestResult | None = None
        self.data_engine = data_engine  # sees every event before the strategy sees the bar (None: off)

    # -- the sink -----------------------------------------------------------------------------------------------------
    def on_event(self, event: MarketEvent) -> None:
        """Process one event; events must come in ``known_at`` order (a replay seeking backwards fails here)."""
        t = event.known_at
        last = self.last_time
        if last is not None and t < last:
            raise UserInputError(
                f"event at {t} arrived after {last}: a node cannot rewind; start a new run to replay earlier data"
            )
        self.now = self.last_time = t
        self.events = events = self.events + 1
        if not self._verified and t > self.recovery.last_event_time:  # type: ignore[union-attr,operator]
            self._verify()
        if self.data_engine is not None:
            for built in self.data_engine.on_event(event).bars:  # bars it built (from trades) or derived
                if self.markets.get(built.bar.symbol) == built.bar.timeframe:
                    self._push(built.bar)
        b = event.bar if isinstance(event, BarClosed) else None
        if b is not None and self.markets.get(symbol := b.symbol) == b.timeframe:  # _push inlined: the hot path
            self.last_price[symbol] = close = b.close
            self.engine.push_bar(self._strategy, symbol, b.ts, b.open, b.high, b.low, close, b.volume)
            if self._pending:
                self._settle_queue()
        else:
            self.ignored += 1
        if self.journal is not None and self._verified and events % self.progress_every == 0:
            self.journal.append("progress", None, {"t": t, "events": events}, sync=False)

    def _push(self, b: Bar) -> None:
        """One closed bar of a traded market through the engine (strategy, gate, venue, portfolio)."""
        self.last_price[b.symbol] = b.close
        self.engine.push_bar(self._strategy, b.symbol, b.ts, b.open, b.high, b.low, b.close, b.volume)
        if self._pending:
            self._settle_queue()

    def finish(self) -> BacktestResult:
        """End of the feed: positions still open exit at their last close (EOD, journaled) and the result is built."""
        ended = self.recovery is not None and self.recovery.ended
        if not self._verified and not ended:
            self._verify()
        self.result = self.engine.finish(self._strategy)
        if not self._verified:  # the journal's run had ended: compare after the same end-of-data exits
            self._verify()
        if self._pending:
            self._settle_queue()
        if self.data_engine is not None:
            self.data_engine.flush()
        if self.journal is not None:
            self.journal.append("end", "end", {"t": self.last_time, "trades": len(self.result.trades), "events": self.events})
        return self.result

    @property
    def trades(self) -> list[Trade]:
        return [t for _, t in self.engine.trades]

    def positions(self) -> dict[str, dict[str, Any]]:
        """Open positions as the journal records them (symbol -> position)."""
        return {s: _position(p) for s, p in self.engine.portfolio.positions.items()}

    def snapshot(self, now_ms: int | None = None, capital: float = 1.0) -> NodeSnapshot:
        """What the node holds now, for the status view and the API: positions, queued orders, PnL, the risk
        engine's state. Money and quantities are the portfolio's (1.0 = the starting equity) times ``capital``;
        ``now_ms`` (the feed's clock) gives the feed lag, the age of the last event processed."""
        pf = self.engine.portfolio
        positions = tuple(
            PositionView(
                symbol=s,
                direction=p.direction,
                quantity=p.quantity * capital,
                entry_price=p.entry_fill,
                mark=self.last_price.get(s, p.entry_fill),
                unrealised_pnl=p.allocation * pf.unrealised_return(s) * capital,
                stop=_num(p.stop),
                target=_num(p.target),
                entry_ts=p.entry_ts,
            )
            for s, p in sorted(pf.positions.items())
        )
        orders = tuple(
            OrderView(o.client_order_id, o.symbol or f.symbol, o.action, o.direction, str(o.order_type), o.tag)
            for f in self.engine.feeds
            for o, _ in f.pending
        )
        status = getattr(self.gate, "status", None)
        risk = status() if callable(status) else None
        return NodeSnapshot(
            time=self.last_time, events=self.events, ignored=self.ignored, positions=positions, open_orders=orders,
            equity=pf.equity() * capital, realised_pnl=pf.realised_pnl() * capital,
            unrealised_pnl=(pf.equity() - pf.realised) * capital, trades=len(self.engine.trades), risk=risk,
            feed_lag_ms=None if now_ms is None or self.last_time is None else now_ms - self.last_time,
        )  # fmt: skip

    # -- journal helpers ----------------------------------------------------------------------------------------------
    def record(self, kind: str, key: str, fields: dict[str, Any], *, acts: bool = True) -> None:
        """Journal one record at the current event time. ``acts``: something acts on it next (an order joins the
        queue, a fill is booked), so it is on disk (fsync) first; other records ride on the next sync, and a crash
        that loses them only makes the restart re-derive them."""
        if self.journal is not None:
            self.journal.append(kind, key, {"t": self.now, **fields}, sync=None if acts else False)

    def _settle_queue(self) -> None:
        """Orders that left the venue's queue since the last event: filled or dropped (e.g. an exit with no position)."""
        queued = {o.client_order_id for f in self.engine.feeds for o, _ in f.pending}
        for cid in [c for c in self._pending if c not in queued]:
            symbol, _ = self._pending.pop(cid)
            status = "filled" if cid in self._filled else "dropped"
            self._filled.discard(cid)
            self.record("order_done", f"order_done:{cid}", {"id": cid, "symbol": symbol, "status": status}, acts=False)

    def _verify(self) -> None:
        """Past the journal's last event: the re-derived positions must be the journal's (read now, with what the
        catch-up added for an event the crash interrupted)."""
        assert self.journal is not None
        self._verified = True
        mine, theirs = self.positions(), self.journal.recover().positions
        if mine != theirs:
            raise JournalMismatch(
                f"replaying the run does not reproduce its journal (positions {mine} != journaled {theirs}); "
                "the data, strategy or parameters changed: use a new journal"
            )


@dataclass(frozen=True)
class PositionView:
    """One open position in a snapshot."""

    symbol: str
    direction: int  # +1 long, -1 short
    quantity: float
    entry_price: float
    mark: float  # close of the symbol's last bar
    unrealised_pnl: float
    stop: float | None
    target: float | None
    entry_ts: int


@dataclass(frozen=True)
class OrderView:
    """One order accepted by the gate and queued at the venue (it fills at the next bar's open)."""

    id: str
    symbol: str
    action: str  # entry | exit
    direction: int
    type: str
    tag: str


@dataclass(frozen=True)
class NodeSnapshot:
    """The node at one moment (``TradingNode.snapshot``). ``risk``: ``RiskEngine.status()`` (state ACTIVE / REDUCING /
    HALTED, reason, since, trips), None under the default gate."""

    time: int | None  # known_at of the last event processed
    events: int
    ignored: int
    positions: tuple[PositionView, ...]
    open_orders: tuple[OrderView, ...]
    equity: float
    realised_pnl: float
    unrealised_pnl: float
    trades: int
    risk: dict[str, Any] | None
    feed_lag_ms: int | None


def _position(p: OpenPosition) -> dict[str, Any]:
    return {
        "symbol": p.symbol, "direction": p.direction, "quantity": p.quantity, "entry_price": p.entry_fill,
        "entry_ts": p.entry_ts, "stop": _num(p.stop), "target": _num(p.target), "order": p.client_order_id,
    }  # fmt: skip


class _Decisions:
    """The strategy as the engine sees it: orders get client ids and are journaled as one decision before the gate."""

    def __init__(self, inner: StrategyProtocol, node: TradingNode) -> None:
        self.inner, self.node = inner, node

    def on_bar(self, ctx: BarContext) -> list[Order]:
        orders = self.inner.on_bar(ctx)
        if not orders:
            return orders
        node = self.node
        orders = [o if o.client_order_id else replace(o, client_order_id=node.ids.next()) for o in orders]
        bar = ctx.bar
        node.record(
            "decision",
            f"decision:{bar.symbol}:{node.now}",
            {
                "symbol": bar.symbol,
                "bar_ts": bar.ts,
                "close": bar.close,
                "orders": [_order(o, bar) for o in orders],
            },
            acts=False,
        )  # fmt: skip  (its orders' records follow, synced when one is accepted)
        return orders

    def on_fill(self, fill: Fill) -> None:
        self.inner.on_fill(fill)


def _order(o: Order, bar: Bar) -> dict[str, Any]:
    return {
        "id": o.client_order_id, "symbol": o.symbol or bar.symbol, "action": o.action, "direction": o.direction,
        "type": str(o.order_type), "quantity": o.quantity, "fraction": o.fraction, "stop_offset": o.stop_offset,
        "target_offset": o.target_offset, "max_hold_bars": o.max_hold_bars, "tag": o.tag,
    }  # fmt: skip


class _Gate:
    """The risk gate, journaling each verdict before an accepted order joins the venue's queue."""

    def __init__(self, inner: RiskGate, node: TradingNode) -> None:
        self.inner, self.node = inner, node
        # read once: the engine asks on every bar, and a gate's ``watches_bars`` is fixed when it is built
        self.watches_bars = bool(getattr(inner, "watches_bars", True))

    def check(self, order: Order, bar: Bar, has_position: bool, entry_pending: bool) -> Decision:
        decision = self.inner.check(order, bar, has_position, entry_pending)
        node, cid = self.node, order.client_order_id
        symbol = order.symbol or bar.symbol
        status = "accepted" if decision.allowed else "denied"
        fields = {"id": cid, "symbol": symbol, "action": order.action, "direction": order.direction, "status": status}
        node.record("order", f"order:{cid}", {**fields, "reason": decision.reason}, acts=decision.allowed)
        if decision.allowed and node.submitter is not None:  # the intent is on disk: now the exchange may see it
            refused = node.submitter(order, bar)
            if refused is not None:
                node.record("order_done", f"order_done:{cid}", {"id": cid, "symbol": symbol, "status": "rejected",
                                                               "reason": refused})  # fmt: skip
                return Decision(False, f"venue: {refused}")
        if decision.allowed:
            node._pending[cid] = (symbol, order.action)
        elif decision.reason not in _RULE_DENIALS:
            node.record(
                "breaker", f"breaker:{cid}", {"symbol": symbol, "rule": decision.reason, "order": cid, "close": bar.close}
            )
        return decision

    def on_bar_close(self, bar: Bar, equity: float) -> None:
        self.inner.on_bar_close(bar, equity)

    def on_trade_closed(self, symbol: str, trade: Trade) -> None:
        self.inner.on_trade_closed(symbol, trade)


class _Venue:
    """The venue, journaling each fill (and the position it leaves) before the portfolio books it."""

    def __init__(self, inner: Venue, node: TradingNode) -> None:
        self.inner, self.node = inner, node

    def fill_entry(self, order: Order, symbol: str, bar_index: int, ts: int, open_price: float, equity: float) -> Fill:
        fill = self.inner.fill_entry(order, symbol, bar_index, ts, open_price, equity)
        stop, target = self.inner.bracket(order, fill.price)
        position = {
            "symbol": symbol, "direction": order.direction, "quantity": fill.quantity, "entry_price": fill.price,
            "entry_ts": ts, "stop": _num(stop), "target": _num(target), "order": fill.client_order_id,
        }  # fmt: skip
        self._record(fill, position)
        self.node._filled.add(order.client_order_id)
        return fill

    def fill_exit(self, position: OpenPosition, bar_index: int, ts: int, price: float, reason: int) -> Fill:
        fill = self.inner.fill_exit(position, bar_index, ts, price, reason)
        self._record(fill, None)
        node = self.node
        for cid, (symbol, action) in node._pending.items():  # a signal exit fills the queued exit order
            if action == "exit" and symbol == position.symbol and fill.reason is not None and fill.reason.name == "SIGNAL":
                node._filled.add(cid)
        return fill

    def _record(self, fill: Fill, position: dict[str, Any] | None, part: str = "") -> None:
        """``part``: a partial fill's bar, so each of an order's fills has its own idempotency key."""
        self.node.record("fill", f"fill:{fill.client_order_id}:{fill.kind}{part}", {
            "order": fill.client_order_id, "kind": fill.kind, "symbol": fill.symbol, "direction": fill.direction,
            "bar_ts": fill.ts, "price": fill.price, "quantity": fill.quantity, "fee": fill.fee,
            "reason": None if fill.reason is None else fill.reason.name, "position": position,
        })  # fmt: skip

    def bracket(self, order: Order, entry_fill: float) -> tuple[float, float]:
        return self.inner.bracket(order, entry_fill)

    def net_return(self, direction: int, entry_fill: float, exit_fill: float) -> float:
        return self.inner.net_return(direction, entry_fill, exit_fill)

    def resolve(
        self, pos: OpenPosition, t: int, o: float, h: float, lo: float, close: float,
        detail: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None, detail_rows: tuple[int, int] = (0, 0),
    ) -> tuple[float, int] | None:  # fmt: skip
        return self.inner.resolve(pos, t, o, h, lo, close, detail, detail_rows)


def _wrap_venue(inner: Venue, node: TradingNode) -> _Venue:
    return _WorkingVenue(inner, node) if isinstance(inner, WorkingOrderVenue) else _Venue(inner, node)


class _WorkingVenue(_Venue):
    """The journaling wrapper of a venue that also matches working orders (LIMIT, STOP, IOC, expiring, partial):
    each working fill is journaled with the position it leaves (the open one grown to its VWAP) before it is booked."""

    inner: WorkingOrderVenue

    @property
    def fees(self) -> Any:  # the engine books per-fill fees when the venue has a maker/taker schedule
        return getattr(self.inner, "fees", None)

    def match(
        self, order: Order, first: bool, triggered: bool, o: float, h: float, lo: float,
        detail: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None, detail_rows: tuple[int, int] = (0, 0),
        prints: np.ndarray | None = None,
    ) -> Match | None:  # fmt: skip
        return self.inner.match(order, first, triggered, o, h, lo, detail, detail_rows, prints)

    def fill_working(self, order: Order, symbol: str, bar_index: int, ts: int, match: Match, quantity: float) -> Fill:
        fill = self.inner.fill_working(order, symbol, bar_index, ts, match, quantity)
        held = self.node.engine.portfolio.positions.get(symbol)
        if held is None:
            stop, target = self.inner.bracket(order, fill.price)
            qty, price, entry_ts, cid = fill.quantity, fill.price, ts, fill.client_order_id
        else:
            qty = held.quantity + fill.quantity
            price = (held.allocation + fill.quantity * fill.price) / qty
            stop, target = self.inner.bracket(order, price)
            entry_ts, cid = held.entry_ts, held.client_order_id
        position = {
            "symbol": symbol, "direction": order.direction, "quantity": qty, "entry_price": price,
            "entry_ts": entry_ts, "stop": _num(stop), "target": _num(target), "order": cid,
        }  # fmt: skip
        self._record(fill, position, f"@{ts}")
        self.node._filled.add(order.client_order_id)
        return fill


def trade_fingerprint(trades: Sequence[Trade]) -> str:
    """sha256 of a trade list's exact values (floats by their repr): equal fingerprints mean identical trades."""
    import hashlib

    h = hashlib.sha256()
    for t in trades:
        h.update(
            f"{t.signal_bar},{t.direction},{t.level!r},{t.entry_bar},{t.entry_time},{t.entry_fill!r},{t.stop!r},"
            f"{t.target!r},{t.exit_bar},{t.exit_time},{t.exit_reason},{t.exit_fill!r},{t.net_return!r}\n".encode()
        )
    return h.hexdigest()


__all__ = ["JournalMismatch", "NodeSnapshot", "OrderView", "PositionView", "TradingNode", "trade_fingerprint"]
