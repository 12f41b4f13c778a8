"""The risk gate: every order a strategy emits passes here before it reaches the venue (allow, or deny with a reason).

The default gate holds the backtest rules that are risk rather than fill rules: one position per symbol, one entry
per bar, entries only from orders decided inside the trade window, and the circuit breakers of
:class:`pivotal.risk.config.RiskConfig` (when configured). Exits are always allowed: a gate never traps a position.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, runtime_checkable

from pivotal.core.orders import Bar, Order
from pivotal.core.trades import Trade
from pivotal.risk.breakers import CircuitBreakers
from pivotal.risk.config import RiskConfig


class Decision(NamedTuple):
    allowed: bool
    reason: str = ""  # why an order was denied ("" when allowed)


ALLOW = Decision(True)
DENY_POSITION_OPEN = Decision(False, "position open")
DENY_ENTRY_PENDING = Decision(False, "one entry per bar")
DENY_OUTSIDE_WINDOW = Decision(False, "outside the trade window")


@runtime_checkable
class RiskGate(Protocol):
    """An engine calls ``on_bar_close`` on every bar unless the gate has ``watches_bars = False`` (a speed hint)."""

    def check(self, order: Order, bar: Bar, has_position: bool, entry_pending: bool) -> Decision:
        """Judge one order decided at the close of ``bar`` (its symbol's state: position open, entry already queued)."""
        ...

    def on_bar_close(self, bar: Bar, equity: float) -> None:
        """The closed bar and the portfolio's mark-to-market equity at its close (before the strategy decides)."""
        ...

    def on_trade_closed(self, symbol: str, trade: Trade) -> None: ...


class DefaultRiskGate:
    """One position per symbol, one entry per bar, the trade window ``[start, end)`` of bar indices, breakers.

    Breakers are kept per symbol (each has its own return history and loss streak); the daily-loss test reads the
    portfolio's equity, which is shared."""

    def __init__(self, config: RiskConfig | None = None, window: tuple[int, int | None] = (0, None)) -> None:
        self.config = config
        self.start = window[0]
        self.end = window[1]
        self._breakers: dict[str, CircuitBreakers] = {}
        self.watches_bars = config is not None  # the engine skips on_bar_close calls otherwise

    def _breaker(self, symbol: str) -> CircuitBreakers:
        b = self._breakers.get(symbol)
        if b is None:
            assert self.config is not None
            b = self._breakers[symbol] = CircuitBreakers(self.config)
        return b

    def check(self, order: Order, bar: Bar, has_position: bool, entry_pending: bool) -> Decision:
        if order.action == "exit":
            return ALLOW
        if has_position:
            return DENY_POSITION_OPEN
        if entry_pending:
            return DENY_ENTRY_PENDING
        t = bar.index
        if t < self.start or (self.end is not None and t >= self.end):
            return DENY_OUTSIDE_WINDOW
        if self.config is not None:
            b = self._breaker(bar.symbol)
            if not b.allows_entry():
                return Decision(False, b.reason())
        return ALLOW

    def on_bar_close(self, bar: Bar, equity: float) -> None:
        if self.config is not None:
            self._breaker(bar.symbol).on_bar_close(bar.ts, bar.close, equity)

    def on_trade_closed(self, symbol: str, trade: Trade) -> None:
        if self.config is not None:
            self._breaker(symbol).on_trade_closed(trade.net_return)
