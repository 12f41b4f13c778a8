"""Orders, fills, positions and bar events: what strategies, the risk gate, venues and the portfolio exchange.

One bar event per closed bar (``Bar``); a strategy answers with ``Order`` objects that execute at the **next** bar's
open; the venue reports ``Fill`` objects (quantity, price with slippage, fee, client order id). Types are small and
immutable; ``Bar`` and ``Position`` are named tuples because the event loop creates one per bar.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal, NamedTuple

from pivotal.core.vocabulary import ExitReason, OrderSide, OrderType

OrderAction = Literal["enter", "exit", "cancel"]
TimeInForce = Literal["GTC", "IOC"]  # good till cancelled (optionally expiring after ``expire_bars``) / immediate or cancel
Liquidity = Literal["maker", "taker", ""]


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
    (stop at ``fill - direction*stop_offset``, target at ``fill + direction*target_offset``) or as absolute
    ``stop_price`` / ``target_price``; ``max_hold_bars`` counts the entry bar as the first. ``exit`` closes the open
    position of ``symbol``. ``Order.limit`` / ``Order.stop`` make resting entries (``order_type`` LIMIT / STOP with
    ``price``), ``Order.cancel`` cancels a working one (docs/backtest.md, "Order types and fills").
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
    price: float | None = None  # LIMIT: the limit price; STOP: the trigger price (stop-market)
    time_in_force: TimeInForce = "GTC"
    expire_bars: int | None = None  # GTC: cancelled (EXPIRED) after this many bars unfilled, the first bar counted
    stop_price: float | None = None  # absolute bracket levels; they take precedence over the offsets
    target_price: float | None = None
    cancel_id: str = ""  # of a ``cancel``: the client order id to cancel ("" = every working entry of the symbol)

    @property
    def side(self) -> OrderSide | None:
        """BUY/SELL of an entry; None for an exit (its side is the opposite of the position it closes) or a cancel."""
        if self.action != "enter":
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
        stop_price: float | None = None,
        target_price: float | None = None,
        time_in_force: TimeInForce = "GTC",
    ) -> Order:
        if direction not in (1, -1):
            raise ValueError(f"order direction must be +1 or -1 (got {direction})")
        if quantity is not None and not quantity > 0:
            raise ValueError(f"order quantity must be > 0 (got {quantity})")
        if not 0 < fraction <= 1:
            raise ValueError(f"order fraction of equity must be in (0, 1] (got {fraction})")
        return cls(
            "enter", direction, stop_offset, target_offset, max_hold_bars, level, tag, symbol, quantity, fraction,
            OrderType.MARKET, client_order_id, stop_price=stop_price, target_price=target_price,
            time_in_force=_tif(time_in_force),
        )  # fmt: skip

    @classmethod
    def limit(
        cls,
        direction: int,
        price: float,
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
        time_in_force: TimeInForce = "GTC",
        expire_bars: int | None = None,
        stop_price: float | None = None,
        target_price: float | None = None,
    ) -> Order:
        """An entry that rests from the next bar until price trades *through* ``price`` (see the simulated venue)."""
        base = cls.enter(direction, stop_offset, target_offset, max_hold_bars, level, tag, symbol=symbol,
                         quantity=quantity, fraction=fraction, client_order_id=client_order_id, stop_price=stop_price,
                         target_price=target_price, time_in_force=time_in_force)  # fmt: skip
        return replace(base, order_type=OrderType.LIMIT, price=_price(price, "limit"), expire_bars=_expiry(expire_bars))

    @classmethod
    def stop(
        cls,
        direction: int,
        trigger: float,
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
        time_in_force: TimeInForce = "GTC",
        expire_bars: int | None = None,
        stop_price: float | None = None,
        target_price: float | None = None,
    ) -> Order:
        """A stop-market entry: becomes a market order once a bar trades at or through ``trigger``."""
        base = cls.enter(direction, stop_offset, target_offset, max_hold_bars, level, tag, symbol=symbol,
                         quantity=quantity, fraction=fraction, client_order_id=client_order_id, stop_price=stop_price,
                         target_price=target_price, time_in_force=time_in_force)  # fmt: skip
        return replace(base, order_type=OrderType.STOP, price=_price(trigger, "stop trigger"),
                       expire_bars=_expiry(expire_bars))  # fmt: skip

    @classmethod
    def cancel(cls, client_order_id: str = "", *, symbol: str = "", tag: str = "") -> Order:
        """Cancel the working entry order ``client_order_id`` (its unfilled rest; fills stay); "" cancels every
        working entry of ``symbol``. Takes effect before the next bar's open; no risk check (it only reduces risk)."""
        return cls("cancel", tag=tag, symbol=symbol, cancel_id=client_order_id)

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
    liquidity: Liquidity = ""  # maker (a limit that rested) or taker; "" where the venue does not say

    @property
    def side(self) -> OrderSide:
        return OrderSide.BUY if self.direction > 0 else OrderSide.SELL


def _price(value: float, what: str) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"order {what} price must be a finite number > 0 (got {value!r})")
    return float(value)


def _expiry(bars: int | None) -> int | None:
    if bars is not None and (not isinstance(bars, int) or bars < 1):
        raise ValueError(f"order expire_bars must be an integer >= 1 or None (got {bars!r})")
    return bars


def _tif(value: str) -> TimeInForce:
    if value not in ("GTC", "IOC"):
        raise ValueError(f"order time_in_force must be 'GTC' or 'IOC' (got {value!r})")
    return value  # type: ignore[return-value]
