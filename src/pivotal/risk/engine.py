"""The risk engine: pre-trade checks, trading states, breakers, stop-loss auto-close, max-drawdown auto-stop, audit.

It is a :class:`pivotal.risk.gate.RiskGate`, so the event engine asks it about every order (a backtest runs under
it with ``EventEngine(..., gate=RiskEngine(cfg))`` and :class:`pivotal.risk.managed.RiskManaged` around the
strategy, which forwards fills and sends the engine's closing orders). The runtime feeds the same object latency
samples, request outcomes, model status and the clock.

States: ACTIVE (everything the other rules allow passes), REDUCING (only exits and orders that shrink a position),
HALTED (no new exposure; every open position gets a closing order). The state is the most severe action among
the active trips; a trip latches until ``reset(rule, by=..., reason=...)``. Exits always pass: a gate never traps a
position. Every trip and reset goes to the audit log before the engine acts on it. Exact rules: ``docs/risk.md``.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any, Literal

from pivotal.core.clock import Clock, SimulatedClock
from pivotal.core.errors import UserInputError
from pivotal.core.orders import Bar, Fill, Order
from pivotal.core.stats import DAY_MS
from pivotal.core.timeframes import timeframe_ms
from pivotal.core.trades import Trade
from pivotal.core.vocabulary import ExitReason
from pivotal.risk.audit import AuditLog, active_trips
from pivotal.risk.config import RiskConfig
from pivotal.risk.gate import ALLOW, Decision, DefaultRiskGate, RiskGate
from pivotal.risk.monitors import (
    AdverseSelection,
    Correlation,
    ErrorRate,
    LatencyMedian,
    LossStreak,
    RegimeBreak,
    SigmaMove,
)
from pivotal.risk.pretrade import Denial, MarketRules, cap_denial, precision_denial, rate_denial


class TradingState(IntEnum):
    """Ordered by severity: the engine's state is the maximum over its active trips."""

    ACTIVE = 0
    REDUCING = 1
    HALTED = 2


# rule → (state it imposes, scope: "book" = every symbol, "symbol" = the symbol it was measured on)
RULES: dict[str, tuple[TradingState, str]] = {
    "max_daily_loss": (TradingState.HALTED, "book"),
    "max_drawdown": (TradingState.HALTED, "book"),
    "consecutive_losses": (TradingState.REDUCING, "book"),
    "correlation_spike": (TradingState.REDUCING, "symbol"),
    "unusual_market": (TradingState.REDUCING, "symbol"),
    "latency": (TradingState.REDUCING, "book"),
    "adverse_selection": (TradingState.REDUCING, "book"),
    "regime_break": (TradingState.REDUCING, "symbol"),
    "stale_data": (TradingState.REDUCING, "symbol"),
    "stale_model": (TradingState.REDUCING, "book"),
    "error_rate": (TradingState.REDUCING, "book"),
    "manual": (TradingState.HALTED, "book"),
}


@dataclass(frozen=True)
class Trip:
    rule: str
    symbol: str  # "" for a book-wide trip
    time: int  # epoch ms, from the clock
    value: float
    threshold: float
    state: TradingState


class _Pos:
    __slots__ = ("direction", "entry", "has_stop", "quantity")

    def __init__(self, direction: int, quantity: float, entry: float, has_stop: bool) -> None:
        self.direction, self.quantity, self.entry, self.has_stop = direction, quantity, entry, has_stop


class RiskEngine:
    """The full risk engine (see the module docstring). ``clock=None``: a ``SimulatedClock`` the engine moves to each
    bar's close time itself (backtests); pass the runtime's clock otherwise. ``audit``: an :class:`AuditLog`, a path
    for one, or None (in memory). ``base``: structural rules checked first (default: the backtest's one position
    per symbol, one entry per bar, trade ``window``); None for none."""

    watches_bars = True

    def __init__(
        self,
        config: RiskConfig | None = None,
        *,
        clock: Clock | None = None,
        audit: AuditLog | str | Path | None = None,
        markets: Mapping[str, MarketRules] | None = None,
        window: tuple[int, int | None] = (0, None),
        base: RiskGate | Literal["default"] | None = "default",
    ) -> None:
        self.config = cfg = config if config is not None else RiskConfig()
        self._sim = SimulatedClock() if clock is None else None  # backtest: the engine moves it to each bar's close
        self.clock: Clock = clock if clock is not None else self._sim  # type: ignore[assignment]
        self.audit = audit if isinstance(audit, AuditLog) else AuditLog(audit)
        self.markets = dict(markets or {})
        self.base: RiskGate | None = DefaultRiskGate(None, window) if base == "default" else base
        self._base_watches = self.base is not None and getattr(self.base, "watches_bars", True)
        self._timed = cfg.stale_data_bars is not None or cfg.stale_model_ms is not None or cfg.max_error_rate is not None
        self.trips: dict[tuple[str, str], Trip] = {}
        self.denied: list[tuple[int, Denial]] = []  # (time, denial): the values behind each pre-trade denial
        self.denials: Counter[str] = Counter()
        self.positions: dict[str, _Pos] = {}
        self.marks: dict[str, float] = {}
        self.equity = math.nan
        self._close_requests: dict[str, str] = {}  # symbol → rule that wants it closed
        self._entry_has_stop: dict[str, bool] = {}
        self._order_times: deque[int] = deque()
        self._last_close: dict[str, tuple[int, int]] = {}  # symbol → (close time, timeframe ms)
        self._prev_close: dict[str, float] = {}
        self._sigma: dict[str, SigmaMove] = {}
        self._regime: dict[str, RegimeBreak] = {}
        self._corr = Correlation(cfg.correlation_reference, cfg.correlation_window) if cfg.correlation_reference else None
        self._streak = LossStreak()
        self._latency = LatencyMedian(cfg.latency_samples)
        self._adverse = AdverseSelection(cfg.adverse_horizon_ms, cfg.adverse_window)
        self._errors = ErrorRate(cfg.error_window_ms, cfg.error_min_requests)
        self._models: dict[str, int] = {}
        self._day = -1
        self._day_start = math.nan
        self._last_equity = math.nan
        self._peak = math.nan
        for (rule, symbol), e in active_trips(self.audit.entries).items():  # a restarted node keeps its trips
            state = RULES.get(rule, (TradingState.HALTED, "book"))[0]
            self.trips[(rule, symbol)] = Trip(rule, symbol, int(e["time"]), _float(e["value"]), _float(e["threshold"]), state)

    # -- state ------------------------------------------------------------------------------------------------------
    @property
    def state(self) -> TradingState:
        return max((t.state for t in self.trips.values()), default=TradingState.ACTIVE)

    def state_for(self, symbol: str) -> tuple[TradingState, Trip | None]:
        """The state an order for ``symbol`` meets and the trip behind it (book-wide trips and that symbol's)."""
        worst: Trip | None = None
        for t in self.trips.values():
            if (t.symbol in ("", symbol)) and (worst is None or t.state > worst.state):
                worst = t
        return (TradingState.ACTIVE, None) if worst is None else (worst.state, worst)

    def status(self) -> dict[str, Any]:
        """State, why and since when, and every active trip (for the status view and the API)."""
        trips = sorted(self.trips.values(), key=lambda t: (t.time, t.rule, t.symbol))
        worst = max(trips, key=lambda t: t.state, default=None)
        return {
            "state": self.state.name,
            "reason": "" if worst is None else worst.rule + (f" ({worst.symbol})" if worst.symbol else ""),
            "since": None if worst is None else min(t.time for t in trips if t.state == worst.state),
            "trips": [
                {"rule": t.rule, "symbol": t.symbol, "time": t.time, "value": t.value, "threshold": t.threshold} for t in trips
            ],
        }

    def trip(self, rule: str, symbol: str, value: float, threshold: float) -> Trip | None:
        """Latch ``rule`` (audited before it acts); None when it is already active for that symbol."""
        state, scope = RULES[rule]
        value, threshold = float(value), float(threshold)
        key = (rule, symbol if scope == "symbol" else "")
        if key in self.trips:
            return None
        now = self.clock.now_ms()
        self.audit.append(
            {"event": "trip", "time": now, "rule": rule, "symbol": key[1], "value": _num(value),
             "threshold": _num(threshold), "state": state.name}
        )  # fmt: skip
        t = self.trips[key] = Trip(rule, key[1], now, value, threshold, state)
        if state == TradingState.HALTED:
            for s in self.positions:
                self._close_requests.setdefault(s, rule)
        return t

    def halt(self, *, by: str, reason: str) -> None:
        """An operator's stop: HALTED and flatten until ``reset("manual", ...)``."""
        _require(by, reason)
        self.trip("manual", "", math.nan, math.nan)

    def reset(self, rule: str, symbol: str | None = None, *, by: str, reason: str) -> None:
        """Clear ``rule`` (for ``symbol``, or every symbol) and re-arm it; audited. The rule trips again when its
        condition holds at a later evaluation."""
        _require(by, reason)
        keys = [k for k in self.trips if k[0] == rule and (symbol is None or k[1] == symbol)]
        if not keys:
            active = sorted(f"{r}({s})" if s else r for r, s in self.trips) or ["none"]
            raise UserInputError(
                f"risk reset: no active trip of {rule!r}{f' for {symbol}' if symbol else ''}; active: {', '.join(active)}"
            )
        self.audit.append(
            {"event": "reset", "time": self.clock.now_ms(), "rule": rule, "symbol": symbol, "by": by, "reason": reason}
        )
        for k in keys:
            del self.trips[k]
        for s in [s for s, r in self._close_requests.items() if r == rule]:
            del self._close_requests[s]
        if rule == "max_drawdown":
            self._peak = self.equity
        elif rule == "max_daily_loss":
            self._day_start = self.equity
        elif rule == "consecutive_losses":
            self._streak.count = 0
        elif rule == "adverse_selection":
            self._adverse.clear()
        elif rule == "latency":
            self._latency.clear()
        elif rule == "error_rate":
            self._errors.clear()

    def _judge(self, rule: str, symbol: str, value: float, threshold: float | None) -> None:
        if threshold is not None and value >= threshold:  # NaN compares False: no verdict
            self.trip(rule, symbol, value, threshold)

    # -- RiskGate ---------------------------------------------------------------------------------------------------
    def check(self, order: Order, bar: Bar, has_position: bool, entry_pending: bool) -> Decision:
        symbol = order.symbol or bar.symbol
        if self.base is not None:
            d = self.base.check(order, bar, has_position, entry_pending)
            if not d.allowed:
                return d
        now = self.clock.now_ms()
        if order.action == "exit":
            self._order_times.append(now)
            return ALLOW
        price = self.marks.get(symbol, bar.close)
        equity = self.equity if self.equity == self.equity else 0.0
        qty = order.quantity if order.quantity is not None else order.fraction * equity / price
        pos = self.positions.get(symbol)
        held = 0.0 if pos is None else pos.direction * pos.quantity
        after = held + order.direction * qty
        reduces = pos is not None and abs(after) < abs(held) and after * held >= 0
        state, why = self.state_for(symbol)
        if state != TradingState.ACTIVE and not reduces:
            return self._deny(Decision(False, f"{state.name.lower()}: {why.rule if why else ''}"))
        denial = self._pretrade(order, symbol, qty, price, after, now)
        if denial is not None:
            self.denied.append((now, denial))
            return self._deny(Decision(False, denial.rule))
        self._order_times.append(now)
        self._entry_has_stop[symbol] = order.stop_offset is not None
        return ALLOW

    def _deny(self, d: Decision) -> Decision:
        self.denials[d.reason] += 1
        return d

    def _pretrade(self, order: Order, symbol: str, qty: float, price: float, after: float, now: int) -> Denial | None:
        cfg = self.config
        times = self._order_times
        while times and times[0] <= now - 60_000:
            times.popleft()
        in_second = sum(1 for t in times if t > now - 1_000)
        d = rate_denial("orders per second", in_second, cfg.max_orders_per_second) or rate_denial(
            "orders per minute", len(times), cfg.max_orders_per_minute
        )
        if d is None and symbol in self.markets:
            d = precision_denial(
                self.markets[symbol], qty, price, exact_quantity=order.quantity is not None,
                limit_price=getattr(order, "price", None),
            )  # fmt: skip
        notional = qty * price
        gross = sum(p.quantity * self.marks.get(s, p.entry) for s, p in self.positions.items() if s != symbol)
        symbol_after = abs(after) * price
        d = (
            d
            or cap_denial("position size", abs(after), cfg.max_position_size)
            or cap_denial("order notional", notional, cfg.max_order_notional)
            or cap_denial("symbol notional", symbol_after, cfg.max_symbol_notional)
            or cap_denial("total notional", gross + symbol_after, cfg.max_total_notional)
        )
        if d is None and cfg.max_leverage is not None:
            lev = (gross + symbol_after) / self.equity if self.equity > 0 else math.inf
            d = cap_denial("leverage", lev, cfg.max_leverage)
        return None if d is None else Denial(d.rule, d.value, d.limit, symbol)

    def on_bar_close(self, bar: Bar, equity: float) -> None:
        """The closed bar and the equity at its close: clock, stale data, equity rules, market rules, stops."""
        cfg, symbol, close = self.config, bar.symbol, bar.close
        if bar.close_ts:
            close_time, tf = bar.close_ts, bar.close_ts - bar.ts
        else:
            tf = timeframe_ms(bar.timeframe) if bar.timeframe else 0
            close_time = bar.ts + tf
        sim = self._sim
        if sim is not None and close_time > sim.now_ms():
            sim.set(close_time)
        now = self.clock.now_ms()
        if self._base_watches:
            self.base.on_bar_close(bar, equity)  # type: ignore[union-attr]
        if self._timed:
            self.check_time()  # stale data is judged before this bar refreshes its symbol
        self._last_close[symbol] = (close_time, tf)
        self._on_equity(equity, now)
        prev = self._prev_close.get(symbol)
        self._prev_close[symbol] = close
        if prev is not None and prev > 0 and close > 0:
            if cfg.unusual_market_threshold is not None:
                sigma = self._sigma.get(symbol)
                if sigma is None:
                    sigma = self._sigma[symbol] = SigmaMove(cfg.sigma_lookback)
                self._judge("unusual_market", symbol, sigma.update(close / prev - 1.0), cfg.unusual_market_threshold)
            log_ret = math.log(close / prev)
            if cfg.regime_break_threshold is not None:
                regime = self._regime.get(symbol)
                if regime is None:
                    regime = self._regime[symbol] = RegimeBreak(cfg.regime_short, cfg.regime_long)
                self._judge("regime_break", symbol, regime.update(log_ret), cfg.regime_break_threshold)
            if self._corr is not None and cfg.max_correlation_spike is not None:
                for s, rho in self._corr.update(symbol, bar.ts, log_ret).items():
                    self._judge("correlation_spike", s, rho, cfg.max_correlation_spike)
        self.on_price(symbol, close, now)

    def on_trade_closed(self, symbol: str, trade: Trade) -> None:
        if self.base is not None:
            self.base.on_trade_closed(symbol, trade)
        n = self._streak.update(trade.net_return)
        self._judge("consecutive_losses", symbol, n, self.config.consecutive_losses_limit)

    # -- more inputs (runtime) --------------------------------------------------------------------------------------
    def on_price(self, symbol: str, price: float, ts: int | None = None) -> None:
        """A mark (bar close, trade, mid): stop-loss auto-close and adverse-selection judging."""
        self.marks[symbol] = price
        now = self.clock.now_ms() if ts is None else ts
        if self.config.max_adverse_selection is not None:
            share = self._adverse.on_mark(symbol, now, price)
            if share is not None:
                self._judge("adverse_selection", "", share, self.config.max_adverse_selection)
        pos, sl = self.positions.get(symbol), self.config.stop_loss
        if pos is not None and sl is not None and not pos.has_stop and symbol not in self._close_requests:
            adverse = -pos.direction * (price - pos.entry) / pos.entry
            if adverse >= sl:
                self.audit.append(
                    {"event": "stop_loss", "time": now, "rule": "stop_loss", "symbol": symbol, "value": adverse,
                     "threshold": sl}
                )  # fmt: skip
                self._close_requests[symbol] = "stop_loss"

    def on_fill(self, fill: Fill) -> None:
        """Positions as the engine sees them, and fills for adverse selection."""
        s = fill.symbol
        if fill.kind == "entry":
            self.positions[s] = _Pos(fill.direction, fill.quantity, fill.price, self._entry_has_stop.pop(s, False))
            if self.state == TradingState.HALTED:  # filled after the halt was decided: close it too
                self._close_requests.setdefault(s, "halted")
        else:
            self.positions.pop(s, None)
            self._close_requests.pop(s, None)
        self._adverse.on_fill(s, fill.ts, fill.direction, fill.price)

    def on_latency(self, ms: float) -> None:
        """One latency sample in ms: an order's acknowledgement time minus its send time (both on the local
        clock), or a feed event's receive time minus its exchange time after the clock offset is removed."""
        self._judge("latency", "", self._latency.update(ms), self.config.latency_threshold_ms)

    def on_request(self, ok: bool) -> None:
        """One exchange request finished (``ok`` False: an error response, a timeout, a rejected connection)."""
        self._judge("error_rate", "", self._errors.update(self.clock.now_ms(), ok), self.config.max_error_rate)

    def on_model_status(self, name: str, updated_ms: int) -> None:
        """The serving model ``name`` was last trained/validated at ``updated_ms`` (fed by continuous learning)."""
        self._models[name] = int(updated_ms)
        self.check_time()

    def check_time(self) -> None:
        """The rules judged against the clock alone (the runtime calls this on a timer): stale data, stale model."""
        cfg, now = self.config, self.clock.now_ms()
        if cfg.stale_data_bars is not None:
            for s, (closed, tf) in self._last_close.items():
                if tf and now - closed > cfg.stale_data_bars * tf:
                    self.trip("stale_data", s, now - closed, cfg.stale_data_bars * tf)
        if cfg.stale_model_ms is not None:
            for updated in self._models.values():
                self._judge("stale_model", "", now - updated, cfg.stale_model_ms)
        if cfg.max_error_rate is not None:
            self._judge("error_rate", "", self._errors.update(now), cfg.max_error_rate)

    def exit_orders(self, symbol: str) -> list[Order]:
        """The closing order the engine wants sent for ``symbol`` (stop-loss breach, HALTED flatten), or []."""
        rule = self._close_requests.get(symbol)
        if rule is None or symbol not in self.positions:
            return []
        return [Order.exit(tag=f"risk:{rule}", symbol=symbol, reason=ExitReason.BREAKER)]

    def _on_equity(self, equity: float, now: int) -> None:
        cfg = self.config
        self.equity = equity
        day = now // DAY_MS
        if day != self._day:
            self._day = day
            self._day_start = self._last_equity if self._last_equity == self._last_equity else equity
        self._last_equity = equity
        if self._peak != self._peak or equity > self._peak:
            self._peak = equity
        if cfg.max_daily_loss is not None and self._day_start > 0 and equity <= self._day_start * (1 - cfg.max_daily_loss):
            self.trip("max_daily_loss", "", 1 - equity / self._day_start, cfg.max_daily_loss)
        if cfg.max_drawdown is not None and self._peak > 0:
            dd = 1 - equity / self._peak
            if equity <= self._peak * (1 - cfg.max_drawdown):
                self.trip("max_drawdown", "", dd, cfg.max_drawdown)


def _require(by: str, reason: str) -> None:
    if not (isinstance(by, str) and by.strip() and isinstance(reason, str) and reason.strip()):
        raise UserInputError("risk: say who resets or halts and why (by='name', reason='...'); both are audited")


def _num(x: float) -> float | None:
    """JSON has no NaN: an undefined value is written as null."""
    return None if x != x else float(x)


def _float(x: float | None) -> float:
    return math.nan if x is None else float(x)
