"""Orders, fills, positions and bar events: what strategies, the risk gate, venues and the portfolio exchange.

One bar event per closed bar (``Bar``); a strategy answers with ``Order`` objects that execute at the **next** bar's
open; the venue reports ``Fill`` objects (quantity, price with slippage, fee, client order id). Types are small and
immutable; ``Bar`` and ``Position`` are named tuples because the event loop creates one per bar.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

from pivotal.core.vocabulary import ExitReason, OrderSide, OrderType

OrderAction = Literal["enter", "exit"]


class Bar(NamedTuple):
    """A closed bar of ``symbol``: ``index`` is its position in that symbol's stream, ``ts`` its open time and
    ``close_ts`` its close time (epoch ms; ``close_ts`` is 0 when the timeframe is unknown)."""

    index: int  # type: ignore[assignment]  # shadows tuple.index on purpose
    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    symbol: str = ""
    timeframe: str = ""
    close_ts: int = 0


class Position(NamedTuple):
    """An open position as a strategy sees it (a snapshot; the portfolio owns the live state)."""

    direction: int  # +1 long, -1 short
    entry_bar: int
    entry_fill: float
    stop: float  # NaN: none
    target: float  # NaN: none
    quantity: float = 0.0
    symbol: str = ""


@dataclass(frozen=True, slots=True)
class Order:
    """A market order for the next open of ``symbol`` ("" = the symbol of the bar it was decided on).

    ``enter`` opens a position in ``direction`` sized by ``quantity`` (units) or, when that is None, by ``fraction``
    of equity (1.0 = all of it, the backtest convention). The bracket is given as offsets from the actual entry fill
    (stop at ``fill - direction*stop_offset``, target at ``fill + direction*target_offset``); ``max_hold_bars`` counts
    the entry bar as the first. ``exit`` closes the open position of ``symbol``.
    """

    action: OrderAction
    direction: int = 0
    stop_offset: float | None = None
    target_offset: float | None = None
    max_hold_bars: int | None = None
    level: float = float("nan")  # the price level behind the signal, for the trade record
    tag: str = ""
    symbol: str = ""
    quantity: float | None = None
    fraction: float = 1.0
    order_type: OrderType = OrderType.MARKET
    client_order_id: str = ""
    exit_reason: ExitReason = ExitReason.SIGNAL  # of an exit: SIGNAL (the strategy) or BREAKER (the risk engine)

    @property
    def side(self) -> OrderSide | None:
        """BUY/SELL of an entry; None for an exit (its side is the opposite of the position it closes)."""
        if self.action == "exit":
            return None
        return OrderSide.BUY if self.direction > 0 else OrderSide.SELL

    @classmethod
    def enter(
        cls,
        direction: int,
        stop_offset: float | None = None,
        target_offset: float | None = None,
        max_hold_bars: int | None = None,
        level: float = float("nan"),
        tag: str = "",
        *,
        symbol: str = "",
        quantity: float | None = None,
        fraction: float = 1.0,
        client_order_id: str = "",
    ) -> Order:
        if direction not in (1, -1):
            raise ValueError(f"order direction must be +1 or -1 (got {direction})")
        if quantity is not None and not quantity > 0:
            raise ValueError(f"order quantity must be > 0 (got {quantity})")
        if not 0 < fraction <= 1:
            raise ValueError(f"order fraction of equity must be in (0, 1] (got {fraction})")
        return cls(
            "enter", direction, stop_offset, target_offset, max_hold_bars, level, tag, symbol, quantity, fraction,
            OrderType.MARKET, client_order_id,
        )  # fmt: skip

    @classmethod
    def exit(
        cls, tag: str = "", *, symbol: str = "", client_order_id: str = "", reason: ExitReason = ExitReason.SIGNAL
    ) -> Order:
        return cls("exit", tag=tag, symbol=symbol, client_order_id=client_order_id, exit_reason=reason)


@dataclass(frozen=True, slots=True)
class Fill:
    """An executed order: ``kind`` entry or exit of ``symbol``, ``quantity`` units at ``price`` (slippage included),
    ``fee`` in quote currency, on bar ``bar_index`` (open time ``ts``); exits carry their ``reason``."""

    kind: Literal["entry", "exit"]
    direction: int  # sign of the order: +1 buys, -1 sells
    bar_index: int
    ts: int
    price: float
    reason: ExitReason | None = None
    symbol: str = ""
    quantity: float = 0.0
    fee: float = 0.0
    client_order_id: str = ""

    @property
    def side(self) -> OrderSide:
        return OrderSide.BUY if self.direction > 0 else OrderSide.SELL
