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
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from pivotal.core.metrics import bar_stats, trade_metrics
from pivotal.core.orders import Bar, Order
from pivotal.core.timeframes import timeframe_ms
from pivotal.core.trades import EquityCurve, Trade, TradeList
from pivotal.core.vocabulary import EXIT_EOD, EXIT_REASONS
from pivotal.data.candles import Candles
from pivotal.execution.portfolio import OpenPosition, Portfolio
from pivotal.execution.simulated_venue import SimulatedVenue
from pivotal.execution.venue import Venue
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


@dataclass(frozen=True)
class BacktestResult:
    trades: TradeList
    equity: EquityCurve
    metrics: dict[str, float]
    blocked_entries: int  # entry orders the risk gate refused
    denials: dict[str, int] = field(default_factory=dict)  # refused orders per reason
    symbol_trades: dict[str, TradeList] = field(default_factory=dict)  # per symbol (several symbols)

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


class _Feed:
    """One symbol's bars, pending orders and per-bar records."""

    __slots__ = (
        "c", "close", "close_ts", "d_bounds", "detail", "equity", "high", "in_pos", "last_exit", "low", "n", "open",
        "pending", "pos", "symbol", "tf", "tf_ms", "ts", "volume",
    )  # fmt: skip

    def __init__(self, symbol: str, c: Candles, detail: Candles | None) -> None:
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
        self.equity = np.empty(self.n)
        self.in_pos = np.zeros(self.n, dtype=bool)
        self.detail = None
        self.d_bounds = None
        if detail is not None and len(detail):
            self.d_bounds = map_detail(c, detail).tolist()
            self.detail = (detail.open, detail.high, detail.low)

    def append(self, ts: int, open_: float, high: float, low: float, close: float, volume: float) -> int:
        """One more closed bar (incremental driving, no detail bars); returns its index. ``seal`` trims the records."""
        if self.d_bounds is not None:
            raise ValueError("detail bars are not supported when bars are pushed one at a time")
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
    ) -> None:
        series = candles if isinstance(candles, dict) else {getattr(candles, "symbol", "") or "": candles}
        details = detail if isinstance(detail, dict) else {s: detail for s in series} if detail is not None else {}
        self.config = config
        self.feeds = [_Feed(sym, c, details.get(sym)) for sym, c in series.items()]
        self.venue: Venue = venue or SimulatedVenue(config.fee_rate, config.slippage)
        self.gate = gate or DefaultRiskGate(config.risk, config.trade_window)
        self.portfolio = Portfolio(config.initial_cash)
        self.trades: list[tuple[str, Trade]] = []
        self.denials: Counter[str] = Counter()

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
        return self._result()

    def _feed(self, symbol: str) -> _Feed:
        for f in self.feeds:
            if f.symbol == symbol:
                return f
        raise ValueError(f"order for unknown symbol {symbol!r}; the engine runs {[f.symbol for f in self.feeds]}")

    def _fill_pending(self, strategy: StrategyProtocol, f: _Feed, t: int) -> None:
        """Orders decided at the previous close execute at this open: exits first, then the entry."""
        pending, f.pending = f.pending, []
        for order, _ in pending:
            if order.action == "exit" and f.pos is not None:
                self._close(strategy, f, t, f.open[t], int(order.exit_reason))
        for order, decided in pending:
            if order.action == "enter" and f.pos is None:
                self._open(strategy, f, order, decided, t)

    def _open(self, strategy: StrategyProtocol, f: _Feed, order: Order, decided: int, t: int) -> None:
        portfolio, venue = self.portfolio, self.venue
        fill = venue.fill_entry(order, f.symbol, t, f.ts[t], f.open[t], portfolio.equity())
        stop, target = venue.bracket(order, fill.price)
        f.pos = portfolio.open(order, decided, fill, stop, target, portfolio.allocation_for(order, fill.price))
        strategy.on_fill(fill)

    def _close(self, strategy: StrategyProtocol, f: _Feed, t: int, price: float, reason: int) -> None:
        pos = f.pos
        assert pos is not None
        fill = self.venue.fill_exit(pos, t, f.ts[t], price, reason)
        strategy.on_fill(fill)
        trade = self.portfolio.close(fill, self.venue.net_return(pos.direction, pos.entry_fill, fill.price), EXIT_REASONS[reason])
        self.trades.append((f.symbol, trade))
        f.last_exit, f.pos = t, None
        self.gate.on_trade_closed(f.symbol, trade)

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
        return BacktestResult(trades, curve, metrics, sum(self.denials.values()), dict(self.denials), per_symbol)


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
