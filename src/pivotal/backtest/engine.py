"""Event-driven bar-by-bar backtest: the reference for correctness (spec B.2 execution rules).

Per bar t, in this order:
1. orders decided at the close of bar t-1 execute at ``open[t]`` (exits before entries), with adverse slippage;
2. an open position's bracket is resolved inside bar t conservatively: SL_GAP, TP_GAP (only after the entry bar),
   then SL before TP, then TIME at the close; with finer *detail* candles the same checks run on each detail bar in
   time order, which settles which level was hit first;
3. equity is marked at the close, breakers (optional) judge the bar, and the strategy sees the closed bar.
A position still open after the last bar exits at the last close (EOD). Fees are charged per side on notional:
net return ``dir*(xf-ef)/ef - fee*(1 + xf/ef)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pivotal.backtest.breakers import BreakerConfig, CircuitBreakers
from pivotal.backtest.metrics import bar_stats, trade_metrics
from pivotal.backtest.strategy import Bar, BarContext, Fill, Order, Position, Strategy
from pivotal.backtest.trades import EquityCurve, Trade, TradeList
from pivotal.data.candles import Candles
from pivotal.core.timeframes import timeframe_ms


@dataclass(frozen=True)
class BacktestConfig:
    fee_rate: float = 0.001
    slippage: float = 0.0005
    trade_window: tuple[int, int | None] = (0, None)  # entries only from orders decided at bars in [start, end)
    breakers: BreakerConfig | None = None


@dataclass(frozen=True)
class BacktestResult:
    trades: TradeList
    equity: EquityCurve
    metrics: dict[str, float]
    blocked_entries: int  # entry orders refused (position open, outside the window, or a breaker)


@dataclass
class _Open:
    direction: int
    signal_bar: int
    level: float
    entry_bar: int
    entry_fill: float
    stop: float
    target: float
    max_hold: int | None

    def view(self) -> Position:
        return Position(self.direction, self.entry_bar, self.entry_fill, self.stop, self.target)


class _Exit:
    __slots__ = ("bar", "price", "reason")

    def __init__(self, bar: int, price: float, reason: str) -> None:
        self.bar, self.price, self.reason = bar, price, reason


def _check_bar(pos: _Open, o: float, h: float, lo: float, gap_ok: bool) -> tuple[float, str] | None:
    """B.2 checks 1-4 on one (detail) bar; ``gap_ok`` is False at the entry bar's opening print."""
    d = pos.direction
    if gap_ok:
        if not math.isnan(pos.stop) and (o <= pos.stop if d > 0 else o >= pos.stop):
            return o, "SL_GAP"
        if not math.isnan(pos.target) and (o >= pos.target if d > 0 else o <= pos.target):
            return o, "TP_GAP"
    if not math.isnan(pos.stop) and (lo <= pos.stop if d > 0 else h >= pos.stop):
        return pos.stop, "SL"
    if not math.isnan(pos.target) and (h >= pos.target if d > 0 else lo <= pos.target):
        return pos.target, "TP"
    return None


class BacktestEngine:
    """Runs one strategy over one candle series; ``detail`` (a finer timeframe of the same market) is optional."""

    def __init__(self, candles: Candles, config: BacktestConfig = BacktestConfig(), detail: Candles | None = None):
        self.c = candles
        self.config = config
        self.detail = detail
        self.detail_bounds = _map_detail(candles, detail) if detail is not None and len(detail) else None

    def run(self, strategy: Strategy) -> BacktestResult:
        return _Run(self, strategy).execute()


def _map_detail(candles: Candles, detail: Candles) -> np.ndarray:
    """Per main bar, the [first, end) rows of the detail candles that open inside it."""
    if not candles.timeframe:
        raise ValueError("detail candles need the main series' timeframe (Candles.timeframe) to map bars")
    tf = timeframe_ms(candles.timeframe)
    lo = np.searchsorted(detail.ts, candles.ts, side="left")
    hi = np.searchsorted(detail.ts, candles.ts + tf, side="left")
    return np.stack([lo, hi], axis=1)


class _Run:
    """State of one pass over the bars."""

    def __init__(self, engine: BacktestEngine, strategy: Strategy) -> None:
        self.e, self.c, self.cfg, self.strategy = engine, engine.c, engine.config, strategy
        n = len(self.c)
        self.window = (self.cfg.trade_window[0], n if self.cfg.trade_window[1] is None else self.cfg.trade_window[1])
        self.breakers = CircuitBreakers(self.cfg.breakers) if self.cfg.breakers is not None else None
        self.equity = np.empty(n)
        self.in_pos = np.zeros(n, dtype=bool)
        self.trades: list[Trade] = []
        self.realised = 1.0
        self.pos: _Open | None = None
        self.pending: list[tuple[Order, int]] = []
        self.last_exit = -1
        self.blocked = 0

    def execute(self) -> BacktestResult:
        c, n = self.c, len(self.c)
        for t in range(n):
            self._fill_pending(t)
            if self.pos is not None:
                done = self._resolve(self.pos, t)
                if done is not None:
                    self._finish(done)
            self._mark(t)
            self._ask_strategy(t)
        if self.pos is not None and n:
            self._finish(_Exit(n - 1, float(c.close[n - 1]), "EOD"))
            self.equity[n - 1] = self.realised
        trade_list = TradeList(tuple(self.trades))
        metrics = trade_metrics(trade_list.returns)
        if c.timeframe:
            metrics.update(bar_stats(self.equity, self.in_pos, timeframe_ms(c.timeframe)))
        return BacktestResult(trade_list, EquityCurve(np.asarray(c.ts), self.equity, self.in_pos), metrics, self.blocked)

    def _fill_pending(self, t: int) -> None:
        """Orders decided at the previous close execute at this open: exits first, then the entry."""
        for order, _ in self.pending:
            if order.action == "exit" and self.pos is not None:
                self._finish(_Exit(t, float(self.c.open[t]), "SIGNAL"))
        for order, decided in self.pending:
            if order.action == "enter" and self.pos is None:
                self.pos = self._open(order, decided, t)
        self.pending = []

    def _mark(self, t: int) -> None:
        close, pos = float(self.c.close[t]), self.pos
        unreal = 0.0 if pos is None else pos.direction * (close - pos.entry_fill) / pos.entry_fill
        self.equity[t] = self.realised * (1 + unreal)
        self.in_pos[t] = pos is not None or self.last_exit == t
        if self.breakers is not None:
            self.breakers.on_bar_close(int(self.c.ts[t]), close, self.equity[t])

    def _ask_strategy(self, t: int) -> None:
        c = self.c
        bar = Bar(t, int(c.ts[t]), float(c.open[t]), float(c.high[t]), float(c.low[t]), float(c.close[t]), float(c.volume[t]))
        ctx = BarContext(bar, None if self.pos is None else self.pos.view(), self.last_exit)
        for order in self.strategy.on_bar(ctx):
            if order.action == "exit" or self._admits_entry(t):
                self.pending.append((order, t))
            else:
                self.blocked += 1

    def _admits_entry(self, t: int) -> bool:
        """One position at a time, one entry per bar, inside the trade window, no breaker tripped."""
        start, end = self.window
        return (
            self.pos is None
            and start <= t < end
            and not any(o.action == "enter" for o, _ in self.pending)
            and (self.breakers is None or self.breakers.allows_entry())
        )

    def _open(self, order: Order, decided: int, t: int) -> _Open:
        slip, d, o = self.cfg.slippage, order.direction, float(self.c.open[t])
        ef = o * (1 + slip) if d > 0 else o * (1 - slip)
        stop = math.nan if order.stop_offset is None else (ef - order.stop_offset if d > 0 else ef + order.stop_offset)
        target = math.nan if order.target_offset is None else (ef + order.target_offset if d > 0 else ef - order.target_offset)
        self.strategy.on_fill(Fill("entry", d, t, int(self.c.ts[t]), ef))
        return _Open(d, decided, order.level, t, ef, stop, target, order.max_hold_bars)

    def _resolve(self, pos: _Open, t: int) -> _Exit | None:
        """Bracket checks inside bar t (on its detail bars when given), then the time stop at the close."""
        c, bounds, hit = self.c, self.e.detail_bounds, None
        if bounds is not None and bounds[t, 1] > bounds[t, 0]:
            d = self.e.detail
            for j in range(bounds[t, 0], bounds[t, 1]):
                opening_fill = t == pos.entry_bar and j == bounds[t, 0]
                hit = _check_bar(pos, float(d.open[j]), float(d.high[j]), float(d.low[j]), not opening_fill)
                if hit is not None:
                    break
        else:
            hit = _check_bar(pos, float(c.open[t]), float(c.high[t]), float(c.low[t]), t > pos.entry_bar)
        if hit is not None:
            return _Exit(t, hit[0], hit[1])
        if pos.max_hold is not None and t - pos.entry_bar + 1 >= pos.max_hold:
            return _Exit(t, float(c.close[t]), "TIME")
        return None

    def _finish(self, ex: _Exit) -> None:
        """Close the open position at ``ex`` with slippage and fees, and book the trade."""
        pos, fee, slip, c = self.pos, self.cfg.fee_rate, self.cfg.slippage, self.c
        assert pos is not None
        long = pos.direction > 0
        ef = pos.entry_fill
        xf = ex.price * (1 - slip) if long else ex.price * (1 + slip)
        gross = (xf - ef) / ef if long else (ef - xf) / ef
        net = gross - fee * (1 + xf / ef)
        self.strategy.on_fill(Fill("exit", -pos.direction, ex.bar, int(c.ts[ex.bar]), xf, ex.reason))
        trade = Trade(
            pos.signal_bar,
            pos.direction,
            pos.level,
            pos.entry_bar,
            int(c.ts[pos.entry_bar]),
            ef,
            pos.stop,
            pos.target,
            ex.bar,
            int(c.ts[ex.bar]),
            ex.reason,
            xf,
            net,
        )
        self.trades.append(trade)
        self.realised *= 1 + net
        self.last_exit, self.pos = ex.bar, None
        if self.breakers is not None:
            self.breakers.on_trade_closed(net)


def run_backtest(
    candles: Candles, strategy: Strategy, config: BacktestConfig = BacktestConfig(), detail: Candles | None = None
) -> BacktestResult:
    """Convenience wrapper: ``BacktestEngine(candles, config, detail).run(strategy)``."""
    return BacktestEngine(candles, config, detail).run(strategy)
