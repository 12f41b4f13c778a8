"""The seam between strategies and whatever executes them (backtest engine now, paper/live trading later).

Bars in, orders out, fills reported back: at the close of each bar the executor calls ``Strategy.on_bar`` with that
closed bar and the current position; the strategy returns orders, which execute at the **next** bar's open. Fills
are reported with ``on_fill``. Nothing here knows about the future or about the backtest's arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable


@dataclass(frozen=True)
class Bar:
    """A closed bar: ``index`` is its position in the stream, ``ts`` its open time (epoch ms)."""

    index: int
    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True)
class Position:
    direction: int  # +1 long, -1 short
    entry_bar: int
    entry_fill: float
    stop: float  # NaN: none
    target: float  # NaN: none


@dataclass(frozen=True)
class BarContext:
    """What a strategy may know at the close of ``bar``: the position still open (after this bar's exits) and the
    last bar on which a position was closed (-1 if never)."""

    bar: Bar
    position: Position | None
    last_exit_bar: int


@dataclass(frozen=True)
class Order:
    """A market order for the next open.

    ``enter`` opens a position in ``direction`` with an attached bracket given as offsets from the actual entry fill
    (stop at ``fill - direction*stop_offset``, target at ``fill + direction*target_offset``) and an optional
    maximum holding time in bars (the entry bar counts as the first). ``exit`` closes the open position.
    """

    action: Literal["enter", "exit"]
    direction: int = 0
    stop_offset: float | None = None
    target_offset: float | None = None
    max_hold_bars: int | None = None
    level: float = float("nan")  # the price level behind the signal, for the trade record
    tag: str = ""

    @classmethod
    def enter(
        cls,
        direction: int,
        stop_offset: float | None = None,
        target_offset: float | None = None,
        max_hold_bars: int | None = None,
        level: float = float("nan"),
        tag: str = "",
    ) -> Order:
        if direction not in (1, -1):
            raise ValueError(f"order direction must be +1 or -1 (got {direction})")
        return cls("enter", direction, stop_offset, target_offset, max_hold_bars, level, tag)

    @classmethod
    def exit(cls, tag: str = "") -> Order:
        return cls("exit", tag=tag)


@dataclass(frozen=True)
class Fill:
    """An executed order: ``kind`` entry or exit, at ``price`` (slippage included) on bar ``bar_index``."""

    kind: Literal["entry", "exit"]
    direction: int
    bar_index: int
    ts: int
    price: float
    reason: str = ""  # exit reason: SL_GAP, TP_GAP, SL, TP, TIME, EOD, SIGNAL


@runtime_checkable
class Strategy(Protocol):
    def on_bar(self, ctx: BarContext) -> list[Order]:
        """Called once per closed bar, in order; returns the orders for the next open (usually none)."""
        ...

    def on_fill(self, fill: Fill) -> None:
        """Called when one of this strategy's orders (or its bracket) is filled."""
        ...
