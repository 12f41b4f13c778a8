"""The event engine: timestamped bar events → strategy → risk gate → venue → portfolio.

Per bar event (symbol s, bar t), in this order:
1. orders for s decided at the close of its previous bar execute at ``open[t]`` (exits before entries);
2. an open position of s has its bracket resolved inside bar t (``SimulatedVenue.resolve``);
3. the portfolio is marked at the close, the risk gate sees the closed bar, and the strategy sees it (with the
   position still open after this bar's exits); each order it returns passes the risk gate or is counted as denied.
After the last event, positions still open exit at their symbol's last close (EOD).

Sparse driving (backtests only): a strategy may offer ``wake_bars(candles)``, the bars at whose close it may emit
orders, computed causally in bulk; the engine then calls it only there and marks the bars in between to market in
bulk. Fills, brackets, the portfolio and the gate are the same code; the trades are identical (tested). Live, and
with breakers (which must see every bar), every bar is an event.

Several symbols: their bars are merged by open time (ties in the order the symbols were given); every symbol keeps
its own bar index. This is the engine the runtime will drive with live bars.

Working orders (LIMIT, STOP, IOC, expiry, and any entry under a participation cap) stay in the symbol's queue from
the bar after the decision until filled, cancelled (``Order.cancel``) or expired; step 1 then also matches them
against the bar (``SimulatedVenue.match``), filling in parts where the cap or the trade prints say so. Every fill and
every state change of a working order or of a bracket leg (OCO) is recorded (``BacktestResult.fills`` / ``orders``).
Without such orders and without a cap nothing of this runs: market orders fill exactly as before.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

import numpy as np

from pivotal.core.errors import UserInputError
from pivotal.core.metrics import bar_stats, trade_metrics
from pivotal.core.orders import Bar, Fill, Order
from pivotal.core.timeframes import timeframe_ms
from pivotal.core.trades import EquityCurve, Trade, TradeList
from pivotal.core.vocabulary import EXIT_EOD, EXIT_REASONS, EXIT_SL, EXIT_SL_GAP, EXIT_TP, EXIT_TP_GAP, OrderStatus, OrderType
from pivotal.data.candles import Candles
from pivotal.data.trades import Trades
from pivotal.execution.portfolio import OpenPosition, Portfolio
from pivotal.execution.simulated_venue import FeeSchedule, Match, SimulatedVenue
from pivotal.execution.venue import Venue, WorkingOrderVenue
from pivotal.risk.config import RiskConfig
from pivotal.risk.gate import DefaultRiskGate, RiskGate
from pivotal.strategies.base import BarContext, StrategyProtocol


@dataclass(frozen=True)
class BacktestConfig:
    fee_rate: float = 0.001
    slippage: float = 0.0005
    trade_window: tuple[int, int | None] = (0, None)  # entries only from orders decided at bars in [start, end)
    risk: RiskConfig | None = None  # circuit breakers; None: off
    initial_cash: float = 1.0
    sparse: bool = True  # let a strategy with ``wake_bars`` skip bars on which it cannot act (same trades)
    fee_schedule: FeeSchedule | None = None  # maker/taker (``FeeSchedule.for_exchange("binance")``); None: ``fee_rate``
    participation: float | None = None  # max fraction of a bar's volume one entry order may fill; None: no cap

    def __post_init__(self) -> None:
        if self.fee_schedule is not None and not isinstance(self.fee_schedule, FeeSchedule):
            raise UserInputError(
                f"BacktestConfig.fee_schedule must be a FeeSchedule (got {self.fee_schedule!r}); "
                "use FeeSchedule(maker, taker) or FeeSchedule.for_exchange('binance')"
            )
        p = self.participation
        if p is not None and not 0 < p <= 1:
            raise UserInputError(
                f"BacktestConfig.participation must be in (0, 1] or None (got {p}); e.g. 0.1 = 10 % of a bar's volume"
            )


@dataclass(frozen=True)
class OrderEvent:
    """A state change of a working order or of a bracket leg: ``status`` (NEW, PARTIALLY_FILLED, FILLED, CANCELED,
    EXPIRED, REJECTED) at bar ``bar_index`` (open time ``ts``); ``filled`` is the order's cumulated quantity.
    Bracket legs are named ``<entry id>:stop`` and ``<entry id>:target`` (one fills, the other is CANCELED: OCO)."""

    symbol: str
    client_order_id: str
    status: OrderStatus
    bar_index: int
    ts: int
    filled: float = 0.0
    reason: str = ""


@dataclass(frozen=True)
class BacktestResult:
    trades: TradeList
    equity: EquityCurve
    metrics: dict[str, float]
    blocked_entries: int  # entry orders the risk gate refused
    denials: dict[str, int] = field(default_factory=dict)  # refused orders per reason
    symbol_trades: dict[str, TradeList] = field(default_factory=dict)  # per symbol (several symbols)
    fills: tuple[Fill, ...] = ()  # every entry and exit fill, in time order
    orders: tuple[OrderEvent, ...] = ()  # working-order and bracket-leg (OCO) records

    def summary(self) -> str:
        """A few lines: trades, net profit, win rate, profit factor, drawdown, Sharpe."""
        m = self.metrics
        lines = [
            f"trades          {int(m.get('trades', 0))}",
            f"net profit      {m.get('net_profit_pct', 0.0):.2f} %",
            f"win rate        {m.get('win_rate', 0.0) * 100:.1f} %",
            f"profit factor   {m.get('profit_factor', 0.0):.3f}",
            f"max drawdown    {m.get('max_drawdown', 0.0) * 100:.2f} %",
            f"sharpe / trade  {m.get('sharpe', 0.0):.3f}",
        ]
        if "sharpe_annual" in m:
            lines.append(f"sharpe (annual) {m['sharpe_annual']:.3f}")
        return "\n".join(lines)


class _Work:
    """The state of one working entry order: first bar, target quantity (set at its first fill), filled so far."""

    __slots__ = ("decided", "filled", "order", "start", "target", "triggered")

    def __init__(self, order: Order, decided: int, start: int) -> None:
        self.order, self.decided, self.start = order, decided, start
        self.target: float | None = None
        self.filled = 0.0
        self.triggered = False


class _Feed:
    """One symbol's bars, pending orders and per-bar records."""

    __slots__ = (
        "c", "close", "close_ts", "d_bounds", "detail", "equity", "high", "in_pos", "last_exit", "low", "n", "open",
        "pending", "pos", "prints", "symbol", "t_bounds", "tf", "tf_ms", "ts", "volume", "work",
    )  # fmt: skip

    def __init__(self, symbol: str, c: Candles, detail: Candles | None, trades: Trades | None = None) -> None:
        self.symbol, self.c, self.n = symbol, c, len(c)
        self.tf = c.timeframe or ""
        self.tf_ms = timeframe_ms(c.timeframe) if c.timeframe else 0
        self.ts = np.asarray(c.ts, dtype=np.int64).tolist()
        self.open, self.high, self.low = c.open.tolist(), c.high.tolist(), c.low.tolist()
        self.close, self.volume = c.close.tolist(), c.volume.tolist()
        self.close_ts = (np.asarray(c.ts, dtype=np.int64) + self.tf_ms).tolist() if self.tf_ms else [0] * self.n
        self.pending: list[tuple[Order, int]] = []
        self.pos: OpenPosition | None = None
        self.last_exit = -1
        self.equity: np.ndarray = np.empty(self.n)
        self.in_pos: np.ndarray = np.zeros(self.n, dtype=bool)
        self.detail = None
        self.d_bounds = None
        if detail is not None and len(detail):
            self.d_bounds = map_detail(c, detail).tolist()
            self.detail = (detail.open, detail.high, detail.low)
        self.work: dict[str, _Work] = {}  # client order id -> state of a working entry order
        self.prints: np.ndarray | None = None  # 2 x n: trade prices, quantities
        self.t_bounds: list[list[int]] | None = None
        if trades is not None:
            self.t_bounds = map_detail(c, Candles(trades.ts, trades.price, trades.price, trades.price, trades.price,
                                                  trades.amount)).tolist()  # fmt: skip
            self.prints = np.stack([np.asarray(trades.price, np.float64), np.asarray(trades.amount, np.float64)])

    def append(self, ts: int, open_: float, high: float, low: float, close: float, volume: float) -> int:
        """One more closed bar (incremental driving, no detail bars); returns its index. ``seal`` trims the records."""
        if self.d_bounds is not None or self.t_bounds is not None:
            raise ValueError("detail bars and trades are not supported when bars are pushed one at a time")
        if self.n == self.equity.shape[0]:
            grow = max(1024, self.n)
            self.equity = np.concatenate((self.equity, np.empty(grow)))
            self.in_pos = np.concatenate((self.in_pos, np.zeros(grow, dtype=bool)))
        self.ts.append(ts)
        self.open.append(open_)
        self.high.append(high)
        self.low.append(low)
        self.close.append(close)
        self.volume.append(volume)
        self.close_ts.append(ts + self.tf_ms if self.tf_ms else 0)
        self.n += 1
        return self.n - 1

    def seal(self) -> None:
        """After pushed bars: the candles and per-bar records hold exactly the ``n`` bars seen (no-op otherwise)."""
        if len(self.c) != self.n:
            c = self.c
            self.c = Candles(np.asarray(self.ts, np.int64), np.asarray(self.open), np.asarray(self.high),
                             np.asarray(self.low), np.asarray(self.close), np.asarray(self.volume),
                             c.exchange, c.symbol, c.timeframe)  # fmt: skip
        self.equity, self.in_pos = self.equity[: self.n], self.in_pos[: self.n]


def map_detail(candles: Candles, detail: Candles) -> np.ndarray:
    """Per main bar, the [first, end) rows of the detail candles that open inside it."""
    if not candles.timeframe:
        raise ValueError("detail candles need the main series' timeframe (Candles.timeframe) to map bars")
    tf = timeframe_ms(candles.timeframe)
    lo = np.searchsorted(detail.ts, candles.ts, side="left")
    hi = np.searchsorted(detail.ts, candles.ts + tf, side="left")
    return np.stack([lo, hi], axis=1)


class EventEngine:
    """Runs one strategy over the bar events of one or more symbols."""

    def __init__(
        self,
        candles: Candles | dict[str, Candles],
        config: BacktestConfig = BacktestConfig(),
        detail: Candles | dict[str, Candles] | None = None,
        gate: RiskGate | None = None,
        venue: Venue | None = None,
        trades: Trades | dict[str, Trades] | None = None,
    ) -> None:
        series = candles if isinstance(candles, dict) else {getattr(candles, "symbol", "") or "": candles}
        details = detail if isinstance(detail, dict) else {s: detail for s in series} if detail is not None else {}
        prints = trades if isinstance(trades, dict) else {s: trades for s in series} if trades is not None else {}
        self.config = config
        self.feeds = [_Feed(sym, c, details.get(sym), prints.get(sym)) for sym, c in series.items()]
        self.venue: Venue = venue or SimulatedVenue(config.fee_rate, config.slippage, config.fee_schedule)
        self.gate = gate or DefaultRiskGate(config.risk, config.trade_window)
        self.portfolio = Portfolio(config.initial_cash)
        self.trades: list[tuple[str, Trade]] = []
        self.denials: Counter[str] = Counter()
        self.fills: list[Fill] = []
        self.order_events: list[OrderEvent] = []
        self._cap = config.participation
        # working orders in use (a LIMIT/STOP/IOC/expiring order was admitted, or a cap is set): until then the
        # market-order path runs exactly as it always did
        self._working = config.participation is not None
        self._fees_exact = getattr(self.venue, "fees", None) is not None  # per-fill fees (maker/taker schedule)
        self._ids = 0
        self._matcher: WorkingOrderVenue | None = None  # the venue, once it matched a working order

    # -- the loop -------------------------------------------------------------------------------------------------
    def run(self, strategy: StrategyProtocol) -> BacktestResult:
        feeds = self.feeds
        wake = self._wake_bars(strategy)
        if wake is not None:
            return self._run_sparse(strategy, feeds[0], wake)
        if len(feeds) == 1:
            self._run_single(strategy, feeds[0])
        else:
            which = np.concatenate([np.full(f.n, i) for i, f in enumerate(feeds)])
            index = np.concatenate([np.arange(f.n) for f in feeds])
            order = np.lexsort((which, np.concatenate([np.asarray(f.c.ts, np.int64) for f in feeds])))
            for i, t in zip(which[order].tolist(), index[order].tolist(), strict=True):
                self._event(strategy, feeds[i], t)
        return self.finish(strategy)

    def _run_single(self, strategy: StrategyProtocol, f: _Feed) -> None:
        """``_event`` for every bar of one symbol, inlined: the per-bar hot path of a backtest (same steps, same
        order; the sparse-vs-every-bar parity tests compare it with ``_advance``/``_decide``)."""
        new = tuple.__new__
        venue, portfolio, gate, on_bar = self.venue, self.portfolio, self.gate, strategy.on_bar
        watches = getattr(gate, "watches_bars", True)
        symbol, tf = f.symbol, f.tf
        opens, highs, lows, closes, vols, tss, cts = f.open, f.high, f.low, f.close, f.volume, f.ts, f.close_ts
        equity_out, in_pos_out, d_bounds, detail = f.equity, f.in_pos, f.d_bounds, f.detail
        for t in range(f.n):
            if f.pending:
                self._fill_pending(strategy, f, t)
            pos = f.pos
            close = closes[t]
            if pos is not None:
                rows = d_bounds[t] if d_bounds is not None else (0, 0)
                hit = venue.resolve(pos, t, opens[t], highs[t], lows[t], close, detail, rows)
                if hit is not None:
                    self._close(strategy, f, t, hit[0], hit[1])
                    pos = None
                else:
                    portfolio.mark(symbol, close)
            equity = portfolio.equity() if portfolio.positions else portfolio.realised
            equity_out[t] = equity
            in_pos_out[t] = pos is not None or f.last_exit == t
            bar = new(Bar, (t, tss[t], opens[t], highs[t], lows[t], close, vols[t], symbol, tf, cts[t]))
            if watches:
                gate.on_bar_close(bar, equity)
            orders = on_bar(new(BarContext, (bar, None if pos is None else pos.view, f.last_exit)))
            if orders:
                self._admit(orders, f, bar)

    def _admit(self, orders: list[Order], f: _Feed, bar: Bar) -> None:
        """Each order through the risk gate; admitted ones wait for the next open of their symbol."""
        for order in orders:
            feed = f if not order.symbol or order.symbol == f.symbol else self._feed(order.symbol)
            if order.action == "cancel":
                self._cancel(feed, order.cancel_id, bar)
                continue
            if order.action == "enter" and self._is_working(order):
                order = self._working_order(order, feed)
            pending = feed.pending
            entry_pending = exit_pending = False
            for o, _ in pending:
                if o.action == "enter":
                    entry_pending = True
                else:
                    exit_pending = True
            # a position with its exit already queued is closed before any entry fills (a reversal)
            decision = self.gate.check(order, bar, feed.pos is not None and not exit_pending, entry_pending)
            if decision.allowed:
                pending.append((order, bar.index))
            else:
                self.denials[decision.reason] += 1

    def _working_order(self, order: Order, feed: _Feed) -> Order:
        """Switch the engine to working-order matching; give the order a client id when it has none (its key)."""
        if not isinstance(self.venue, WorkingOrderVenue):
            raise UserInputError(
                f"{order.order_type.value} / IOC / expiring orders and participation caps need a venue that matches "
                f"working orders (SimulatedVenue); {type(self.venue).__name__} has no match()/fill_working(): send market orders"
            )
        self._working, self._matcher = True, self.venue
        if order.client_order_id:
            return order
        self._ids += 1
        return replace(order, client_order_id=f"{feed.symbol or 'order'}#{self._ids}")

    def _record(self, f: _Feed, cid: str, status: OrderStatus, t: int, filled: float = 0.0, reason: str = "") -> None:
        ts = f.ts[t] if 0 <= t < f.n else (f.ts[f.n - 1] if f.n else 0)
        self.order_events.append(OrderEvent(f.symbol, cid, status, t, ts, filled, reason))

    def _cancel(self, f: _Feed, cid: str, bar: Bar) -> None:
        """``Order.cancel``: drop the named (or every) queued or working entry of the symbol; fills made stay."""
        keep: list[tuple[Order, int]] = []
        found = False
        t = bar.index if bar.symbol == f.symbol else f.n - 1
        for o, decided in f.pending:
            if o.action == "enter" and (not cid or o.client_order_id == cid):
                w = f.work.pop(o.client_order_id, None)
                self._record(f, o.client_order_id, OrderStatus.CANCELED, t, 0.0 if w is None else w.filled, "cancel")
                found = True
            else:
                keep.append((o, decided))
        f.pending = keep
        if cid and not found:
            self._record(f, cid, OrderStatus.REJECTED, t, 0.0, "cancel: no such working order")

    def _cancel_working(self, f: _Feed, t: int, reason: str) -> None:
        """Working entries end with their position (it closed) or with an exit order: the rest is cancelled."""
        for cid, w in f.work.items():
            self._record(f, cid, OrderStatus.CANCELED, t, w.filled, reason)
        f.pending = [(o, d) for o, d in f.pending if o.client_order_id not in f.work]
        f.work.clear()

    # -- sparse driving: skip the bars on which nothing can happen ---------------------------------------------------
    def _wake_bars(self, strategy: StrategyProtocol) -> np.ndarray | None:
        """The strategy's ``wake_bars(candles)`` (bar indices at whose close it may emit orders), when usable: one
        symbol, sparse driving on, and a gate that does not need to see every bar (no breakers)."""
        hook = getattr(strategy, "wake_bars", None)
        if hook is None or not self.config.sparse or len(self.feeds) != 1 or getattr(self.gate, "watches_bars", True):
            return None
        wake = hook(self.feeds[0].c)
        if wake is None:
            return None
        return np.unique(np.asarray(wake, dtype=np.int64))

    def _run_sparse(self, strategy: StrategyProtocol, f: _Feed, wake: np.ndarray) -> BacktestResult:
        """Same rules as the per-bar loop; bars with no pending order, no bracket to check and no wake-up are
        marked to market in bulk (the same float operations as ``Portfolio.equity``) instead of one by one."""
        n, m = f.n, wake.shape[0]
        wake_list = wake.tolist()
        k, t = 0, 0
        while t < n:
            while k < m and wake_list[k] < t:
                k += 1
            if not f.pending:
                pos = f.pos
                if pos is None or (pos.stop != pos.stop and pos.target != pos.target and pos.max_hold is None):
                    nxt = wake_list[k] if k < m else n
                    if nxt > t:
                        self._mark_span(f, t, nxt)
                        t = nxt
                        continue
            bar, pos, equity = self._advance(strategy, f, t)
            if k < m and wake_list[k] == t:
                self._decide(strategy, f, bar, pos, equity)
                k += 1
            t += 1
        return self.finish(strategy)

    def _mark_span(self, f: _Feed, a: int, b: int) -> None:
        pos, portfolio = f.pos, self.portfolio
        if pos is None:
            f.equity[a:b] = portfolio.realised
            f.in_pos[a:b] = False
            return
        unreal = pos.direction * (f.c.close[a:b] - pos.entry_fill) / pos.entry_fill
        realised = portfolio.realised
        f.equity[a:b] = realised * (1 + unreal) if pos.allocation == realised else realised + pos.allocation * unreal
        f.in_pos[a:b] = True
        portfolio.mark(f.symbol, f.close[b - 1])

    def _event(self, strategy: StrategyProtocol, f: _Feed, t: int) -> None:
        bar, pos, equity = self._advance(strategy, f, t)
        self._decide(strategy, f, bar, pos, equity)

    def _advance(self, strategy: StrategyProtocol, f: _Feed, t: int) -> tuple[Bar, OpenPosition | None, float]:
        """Steps 1-2 and the mark of bar t: fills at its open, bracket exits inside it, equity at its close."""
        if f.pending:
            self._fill_pending(strategy, f, t)
        pos = f.pos
        if pos is not None:
            rows = f.d_bounds[t] if f.d_bounds is not None else (0, 0)
            hit = self.venue.resolve(pos, t, f.open[t], f.high[t], f.low[t], f.close[t], f.detail, rows)
            if hit is not None:
                self._close(strategy, f, t, hit[0], hit[1])
                pos = None
        close = f.close[t]
        portfolio = self.portfolio
        if pos is not None:
            portfolio.mark(f.symbol, close)
        equity = portfolio.equity()
        f.equity[t] = equity
        f.in_pos[t] = pos is not None or f.last_exit == t
        bar = Bar(t, f.ts[t], f.open[t], f.high[t], f.low[t], close, f.volume[t], f.symbol, f.tf, f.close_ts[t])
        return bar, pos, equity

    def _decide(self, strategy: StrategyProtocol, f: _Feed, bar: Bar, pos: OpenPosition | None, equity: float) -> None:
        """Step 3: the risk gate and the strategy see the closed bar; admitted orders wait for the next open."""
        gate = self.gate
        if getattr(gate, "watches_bars", True):
            gate.on_bar_close(bar, equity)
        orders = strategy.on_bar(BarContext(bar, None if pos is None else pos.view, f.last_exit))
        if orders:
            self._admit(orders, f, bar)

    # -- stepwise driving (the DQN environment) --------------------------------------------------------------------
    def open_bar(self, strategy: StrategyProtocol, t: int) -> float:
        """Single symbol: process bar t up to its close (fills, exits, mark); returns the equity at its close."""
        return self._advance(strategy, self.feeds[0], t)[2]

    def close_bar(self, strategy: StrategyProtocol, t: int) -> None:
        """Single symbol: let the gate and ``strategy`` decide at the close of bar t (after :meth:`open_bar`)."""
        f = self.feeds[0]
        bar = Bar(t, f.ts[t], f.open[t], f.high[t], f.low[t], f.close[t], f.volume[t], f.symbol, f.tf, f.close_ts[t])
        self._decide(strategy, f, bar, f.pos, float(f.equity[t]))

    # -- incremental driving (the runtime) ---------------------------------------------------------------------------
    def push_bar(
        self, strategy: StrategyProtocol, symbol: str, ts: int, open_: float, high: float, low: float, close: float,
        volume: float,
    ) -> int:  # fmt: skip
        """Append one closed bar of ``symbol`` and process it as one event (the same ``_event`` as ``run``); bars
        arrive in time order, the engine having been built on empty ``Candles`` per symbol. Returns the bar's index;
        :meth:`finish` ends the run."""
        f = self._feed(symbol)
        t = f.append(ts, open_, high, low, close, volume)
        self._event(strategy, f, t)
        return t

    def finish(self, strategy: StrategyProtocol) -> BacktestResult:
        """Close what is still open at each symbol's last close (EOD) and build the result."""
        for f in self.feeds:
            f.seal()
            if f.pos is not None and f.n:
                self._close(strategy, f, f.n - 1, f.close[f.n - 1], EXIT_EOD)
                f.equity[f.n - 1] = self.portfolio.equity()
            for cid, w in f.work.items():  # still working at the end of the data (they stay queued)
                self._record(f, cid, OrderStatus.CANCELED, f.n - 1, w.filled, "end of data")
        ends = [int(f.c.ts[f.n - 1]) for f in self.feeds if f.n]
        if len(self.feeds) > 1 and ends:  # the merged curve's last point: equity after every symbol's EOD exit
            for f in self.feeds:
                if f.n and int(f.c.ts[f.n - 1]) == max(ends):
                    f.equity[f.n - 1] = self.portfolio.equity()
        return self._result()

    def _feed(self, symbol: str) -> _Feed:
        for f in self.feeds:
            if f.symbol == symbol:
                return f
        raise ValueError(f"order for unknown symbol {symbol!r}; the engine runs {[f.symbol for f in self.feeds]}")

    def _fill_pending(self, strategy: StrategyProtocol, f: _Feed, t: int) -> None:
        """Orders decided at the previous close execute at this open: exits first, then the entry."""
        if self._working:
            self._fill_working(strategy, f, t)
            return
        pending, f.pending = f.pending, []
        for order, _ in pending:
            if order.action == "exit" and f.pos is not None:
                self._close(strategy, f, t, f.open[t], int(order.exit_reason))
        for order, decided in pending:
            if order.action == "enter" and f.pos is None:
                self._open(strategy, f, order, decided, t)

    def _fill_working(self, strategy: StrategyProtocol, f: _Feed, t: int) -> None:
        """Step 1 with working orders: exits at the open (they end working entries), then each entry order — new at
        this open or still working — is matched against bar t; unfinished ones stay queued."""
        pending, f.pending = f.pending, []
        working = set(f.work)  # orders that were working before this bar (the rest arrive at this open)
        for order, _ in pending:
            if order.action == "exit":
                if f.pos is not None:
                    self._close(strategy, f, t, f.open[t], int(order.exit_reason))
                if f.work:
                    self._cancel_working(f, t, "exit")
        keep: list[tuple[Order, int]] = []
        for order, decided in pending:
            if order.action != "enter":
                continue
            cid = order.client_order_id
            w = f.work.get(cid) if cid else None
            if w is None:
                if cid and cid in working:  # an exit at this open cancelled it
                    continue
                if f.pos is not None:  # one position per symbol: an entry meeting an open one is dropped
                    continue
                if not self._is_working(order):
                    self._open(strategy, f, order, decided, t)
                    continue
                w = f.work[cid] = _Work(order, decided, t)
            if self._match(strategy, f, w, t):
                f.work.pop(cid, None)
            else:
                keep.append((order, decided))
        f.pending = keep + f.pending

    def _is_working(self, order: Order) -> bool:
        if self._cap is not None or order.order_type is not OrderType.MARKET:
            return True
        return order.time_in_force != "GTC" or order.expire_bars is not None

    def _match(self, strategy: StrategyProtocol, f: _Feed, w: _Work, t: int) -> bool:
        """One bar of a working entry order: fill what the bar (its detail rows, its trade prints, the cap) allows;
        True when the order is done (filled, IOC rest cancelled, expired)."""
        order, cid = w.order, w.order.client_order_id
        if f.pos is not None and (f.pos.client_order_id != cid or f.pos.direction != order.direction):
            self._record(f, cid, OrderStatus.CANCELED, t, w.filled, "position open")
            return True
        rows = f.d_bounds[t] if f.d_bounds is not None else (0, 0)
        prints = None
        if f.prints is not None and f.t_bounds is not None:
            a, b = f.t_bounds[t]
            prints = f.prints[:, a:b]
        venue = self._matcher
        assert venue is not None  # set in _working_order
        m = venue.match(order, t == w.start, w.triggered, f.open[t], f.high[t], f.low[t], f.detail, rows, prints)
        before = w.filled
        if m is not None:
            if order.order_type is OrderType.STOP:
                w.triggered = True
            portfolio = self.portfolio
            if w.target is None:
                w.target = order.quantity if order.quantity is not None else order.fraction * portfolio.equity() / m.price
            avail = m.available
            if self._cap is not None:
                avail = min(avail, self._cap * f.volume[t])
            qty = min(w.target - w.filled, avail)
            if qty > 0:
                self._entry_fill(strategy, f, w, t, m, qty)
        done = w.target is not None and w.filled >= w.target * (1 - 1e-12)
        if done:
            self._record(f, cid, OrderStatus.FILLED, t, w.filled)
        elif order.time_in_force == "IOC":
            self._record(f, cid, OrderStatus.CANCELED, t, w.filled, "IOC: rest cancelled")
            done = True
        elif order.expire_bars is not None and t - w.start + 1 >= order.expire_bars:
            self._record(f, cid, OrderStatus.EXPIRED, t, w.filled, f"after {order.expire_bars} bars")
            done = True
        elif w.filled > before:
            self._record(f, cid, OrderStatus.PARTIALLY_FILLED, t, w.filled)
        return done

    def _entry_fill(self, strategy: StrategyProtocol, f: _Feed, w: _Work, t: int, m: Match, qty: float) -> None:
        order, portfolio, venue = w.order, self.portfolio, self._matcher
        assert venue is not None
        fill = venue.fill_working(order, f.symbol, t, f.ts[t], m, qty)
        fee = fill.fee
        whole = w.filled == 0 and qty == w.target
        w.filled += qty
        if f.pos is None:
            alloc = portfolio.allocation_for(order, m.price) if whole else qty * m.price
            stop, target = venue.bracket(order, m.price)
            pos = f.pos = portfolio.open(order, w.decided, fill, stop, target, alloc)
            pos.entry_fees, pos.entry_row, pos.entry_inside = fee, m.row, not m.at_open
        else:
            pos = f.pos
            stop, target = venue.bracket(order, (pos.allocation + qty * m.price) / (pos.quantity + qty))
            portfolio.add(fill, stop, target)
        self.fills.append(fill)
        strategy.on_fill(fill)

    def _open(self, strategy: StrategyProtocol, f: _Feed, order: Order, decided: int, t: int) -> None:
        portfolio, venue = self.portfolio, self.venue
        fill = venue.fill_entry(order, f.symbol, t, f.ts[t], f.open[t], portfolio.equity())
        stop, target = venue.bracket(order, fill.price)
        f.pos = portfolio.open(order, decided, fill, stop, target, portfolio.allocation_for(order, fill.price))
        if self._fees_exact:
            f.pos.entry_fees = fill.fee
        self.fills.append(fill)
        strategy.on_fill(fill)

    def _close(self, strategy: StrategyProtocol, f: _Feed, t: int, price: float, reason: int) -> None:
        pos = f.pos
        assert pos is not None
        fill = self.venue.fill_exit(pos, t, f.ts[t], price, reason)
        self.fills.append(fill)
        strategy.on_fill(fill)
        if pos.entry_fees is None:
            net = self.venue.net_return(pos.direction, pos.entry_fill, fill.price)
        else:  # fills of working orders / a fee schedule: the fees actually paid, per fill
            ef = pos.entry_fill
            gross = (fill.price - ef) / ef if pos.direction > 0 else (ef - fill.price) / ef
            net = gross - (pos.entry_fees + fill.fee) / pos.allocation
        trade = self.portfolio.close(fill, net, EXIT_REASONS[reason])
        self.trades.append((f.symbol, trade))
        f.last_exit, f.pos = t, None
        if pos.stop == pos.stop or pos.target == pos.target:
            self._oco(f, pos, t, reason)
        if f.work:
            self._cancel_working(f, t, "position closed")
        self.gate.on_trade_closed(f.symbol, trade)

    def _oco(self, f: _Feed, pos: OpenPosition, t: int, reason: int) -> None:
        """The bracket's legs: the one that filled, the other cancelled with it (both cancelled on other exits)."""
        cid = pos.client_order_id or f"{f.symbol}@{pos.entry_bar}"
        stop_hit, target_hit = reason in (EXIT_SL, EXIT_SL_GAP), reason in (EXIT_TP, EXIT_TP_GAP)
        why = "OCO" if stop_hit or target_hit else EXIT_REASONS[reason]
        for leg, price, hit in (("stop", pos.stop, stop_hit), ("target", pos.target, target_hit)):
            if price == price:
                status = OrderStatus.FILLED if hit else OrderStatus.CANCELED
                self._record(f, f"{cid}:{leg}", status, t, pos.quantity if hit else 0.0, "" if hit else why)

    def _result(self) -> BacktestResult:
        trades = TradeList(tuple(t for _, t in self.trades))
        metrics = trade_metrics(trades.returns)
        if len(self.feeds) == 1:
            f = self.feeds[0]
            curve = EquityCurve(np.asarray(f.c.ts), f.equity, f.in_pos)
            if f.tf_ms:
                metrics.update(bar_stats(f.equity, f.in_pos, f.tf_ms))
        else:
            curve = _merged_curve(self.feeds)
        per_symbol = {f.symbol: TradeList(tuple(t for s, t in self.trades if s == f.symbol)) for f in self.feeds}
        return BacktestResult(
            trades, curve, metrics, sum(self.denials.values()), dict(self.denials), per_symbol, tuple(self.fills),
            tuple(self.order_events),
        )  # fmt: skip


def _merged_curve(feeds: list[_Feed]) -> EquityCurve:
    """Portfolio equity at each distinct bar open time (the last event of that time), position held in any symbol."""
    ts = np.concatenate([np.asarray(f.c.ts, np.int64) for f in feeds])
    eq = np.concatenate([f.equity for f in feeds])
    pos = np.concatenate([f.in_pos for f in feeds])
    order = np.argsort(ts, kind="stable")
    ts, eq, pos = ts[order], eq[order], pos[order]
    last = np.r_[ts[1:] != ts[:-1], True] if ts.size else np.zeros(0, bool)
    return EquityCurve(ts[last], eq[last], pos[last])


def run_backtest(
    candles: Candles | dict[str, Candles],
    strategy: StrategyProtocol,
    config: BacktestConfig = BacktestConfig(),
    detail: Candles | dict[str, Candles] | None = None,
) -> BacktestResult:
    """``EventEngine(candles, config, detail).run(strategy)``."""
    return EventEngine(candles, config, detail).run(strategy)
