"""The strategy seam: bars in, orders out, fills reported back — the same for the backtest, paper and live trading.

At the close of each bar the executor calls ``on_bar(ctx)`` with that closed bar and the position still open after
the bar's exits; the strategy returns orders, which execute at the **next** bar's open; fills come back through
``on_fill``. Anything that has these two methods is a strategy (``isinstance(x, Strategy)`` checks the shape).

For writing one, subclass :class:`Strategy` and implement :meth:`Strategy.next`: inside it ``self.open/high/low/
close/volume/ts`` are the bars *up to and including the current one* (numpy views; ``self.close[-1]`` is the bar
that just closed), ``self.position`` the open position, ``self.sma(n)`` / ``self.atr(n)`` causal indicators at this
bar, ``self.pivots(level)`` the Williams pivots confirmed so far, and ``self.buy(...)`` / ``self.sell(...)`` /
``self.close_position()`` queue orders. Nothing after the current bar is reachable, so a strategy cannot peek.
"""

from __future__ import annotations

from abc import ABC
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from pivotal.core.orders import Bar, Fill, Order, Position
from pivotal.structure.types import PivotEvent, PivotParams

if TYPE_CHECKING:
    from pivotal.structure.incremental import WilliamsMarketStructure

__all__ = ["Bar", "BarContext", "Fill", "Order", "Position", "Strategy", "StrategyProtocol"]


class BarContext(NamedTuple):
    """What a strategy may know at the close of ``bar``: the position still open (after this bar's exits) and the
    last bar on which a position was closed (-1 if never)."""

    bar: Bar
    position: Position | None
    last_exit_bar: int


@runtime_checkable
class StrategyProtocol(Protocol):
    def on_bar(self, ctx: BarContext) -> list[Order]:
        """Called once per closed bar, in order; returns the orders for the next open (usually none)."""
        ...

    def on_fill(self, fill: Fill) -> None:
        """Called when one of this strategy's orders (or its bracket) is filled."""
        ...


class _Series:
    """A growing float array; ``view()`` is the filled prefix (no copy)."""

    __slots__ = ("data", "n")

    def __init__(self) -> None:
        self.data: np.ndarray = np.empty(256)
        self.n = 0

    def push(self, value: float) -> None:
        if self.n == self.data.shape[0]:
            self.data = np.concatenate((self.data, np.empty(self.n)))
        self.data[self.n] = value
        self.n += 1

    def view(self) -> np.ndarray:
        return self.data[: self.n]


class Strategy(ABC):  # noqa: B024  (an ABC for its structural isinstance hook; every hook has a default)
    """Base class with default hooks and causal access to its own history, indicators and pivots.

    Override :meth:`next` (called at each bar close). ``on_bar``/``on_fill`` are the executor-facing hooks; override
    them only for full control. Also an ABC whose ``isinstance`` accepts any object with ``on_bar`` and ``on_fill``.
    """

    pivot_params: PivotParams = PivotParams(k=2, levels=3)

    @classmethod
    def __subclasshook__(cls, other: type) -> bool:
        if cls is Strategy:
            return all(callable(getattr(other, m, None)) for m in ("on_bar", "on_fill"))
        return NotImplemented

    # -- executor-facing hooks ------------------------------------------------------------------------------------
    def on_bar(self, ctx: BarContext) -> list[Order]:
        if not hasattr(self, "_cols"):
            self._init_history()
        bar = ctx.bar
        for col, value in zip(self._cols, (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.ts), strict=True):
            col.push(value)
        if self._detector is not None:
            self._pivots.extend(self._detector.on_bar(bar.index, bar.open, bar.high, bar.low, bar.close, bar.ts))
        self.bar, self.position, self.last_exit_bar = bar, ctx.position, ctx.last_exit_bar
        self._orders: list[Order] = []
        self.next()
        return self._orders

    def on_fill(self, fill: Fill) -> None:
        """Default: remember it in ``self.fills``."""
        if not hasattr(self, "fills"):
            self.fills: list[Fill] = []
        self.fills.append(fill)

    # -- to override ----------------------------------------------------------------------------------------------
    def next(self) -> None:  # noqa: B027  (optional hook)
        """Decide at the close of ``self.bar``; queue orders with buy/sell/close_position. Default: do nothing."""

    # -- orders ---------------------------------------------------------------------------------------------------
    def buy(self, stop: float | None = None, target: float | None = None, max_hold: int | None = None, **kw: Any) -> None:
        """Go long at the next open; ``stop``/``target`` are price distances from the fill, ``max_hold`` bars."""
        self._orders.append(Order.enter(+1, stop, target, max_hold, **kw))

    def sell(self, stop: float | None = None, target: float | None = None, max_hold: int | None = None, **kw: Any) -> None:
        """Go short at the next open (see :meth:`buy`)."""
        self._orders.append(Order.enter(-1, stop, target, max_hold, **kw))

    def close_position(self, tag: str = "") -> None:
        """Close the open position at the next open."""
        self._orders.append(Order.exit(tag))

    # -- causal history -------------------------------------------------------------------------------------------
    def _init_history(self) -> None:
        self._cols = tuple(_Series() for _ in range(6))
        self._detector: WilliamsMarketStructure | None = None
        self._pivots: list[PivotEvent] = []

    @property
    def open(self) -> np.ndarray:
        return self._cols[0].view()

    @property
    def high(self) -> np.ndarray:
        return self._cols[1].view()

    @property
    def low(self) -> np.ndarray:
        return self._cols[2].view()

    @property
    def close(self) -> np.ndarray:
        return self._cols[3].view()

    @property
    def volume(self) -> np.ndarray:
        return self._cols[4].view()

    @property
    def ts(self) -> np.ndarray:
        return self._cols[5].view().astype(np.int64)

    def sma(self, period: int) -> float:
        """Mean of the last ``period`` closes (NaN before ``period`` bars)."""
        c = self.close
        return float(c[-period:].mean()) if c.shape[0] >= period else float("nan")

    def atr(self, period: int = 14) -> float:
        """Simple mean true range of the last ``period`` bars (NaN before ``period + 1`` bars)."""
        h, lo, c = self.high, self.low, self.close
        if c.shape[0] < period + 1:
            return float("nan")
        prev = c[-period - 1 : -1]
        tr = np.maximum(h[-period:], prev) - np.minimum(lo[-period:], prev)
        return float(tr.mean())

    def pivots(self, level: int = 1) -> list[PivotEvent]:
        """Pivots of ``level`` confirmed up to the current bar (incremental Williams detector, ``pivot_params``).

        The detector starts on first use and replays the history seen so far, so asking late loses nothing."""
        if self._detector is None:
            from pivotal.structure.incremental import WilliamsMarketStructure

            detector = self._detector = WilliamsMarketStructure(self.pivot_params)
            o, h, lo, c, ts = self.open, self.high, self.low, self.close, self.ts
            first = self.bar.index - (c.shape[0] - 1)
            for i in range(c.shape[0]):
                self._pivots.extend(detector.on_bar(first + i, o[i], h[i], lo[i], c[i], int(ts[i])))
        return [p for p in self._pivots if p.level == level]
