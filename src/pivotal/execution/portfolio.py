"""Positions keyed by symbol, cash, realised and unrealised PnL, equity.

Money is in units of the starting capital (``initial_cash``, 1.0 by default: equity 1.10 = +10 %). An entry commits
``allocation`` = fraction × equity (or quantity × fill) and holds ``quantity = allocation / entry_fill`` units; a
closed trade adds ``allocation × net_return`` to the realised equity, the net return being the venue's (fees and
slippage included). With one position of fraction 1.0 this is exactly the compounding of the earlier engine
(``equity *= 1 + net``), which the parity tests hold it to.
"""

from __future__ import annotations

import math

from pivotal.core.orders import Fill, Order, Position
from pivotal.core.trades import Trade


class OpenPosition:
    """The live state of one open position (the portfolio's; strategies get :class:`Position` snapshots)."""

    __slots__ = (
        "allocation", "client_order_id", "direction", "entry_bar", "entry_fees", "entry_fill", "entry_inside",
        "entry_row", "entry_ts", "level", "max_hold", "quantity", "signal_bar", "stop", "symbol", "target", "view",
    )  # fmt: skip

    def __init__(self, symbol: str, order: Order, signal_bar: int, fill: Fill, stop: float, target: float, allocation: float):
        self.symbol = symbol
        self.direction = order.direction
        self.signal_bar = signal_bar
        self.level = order.level
        self.entry_bar = fill.bar_index
        self.entry_ts = fill.ts
        self.entry_fill = fill.price
        self.stop = stop
        self.target = target
        self.max_hold = order.max_hold_bars
        self.allocation = allocation
        self.quantity = fill.quantity
        self.client_order_id = fill.client_order_id
        self.view = Position(self.direction, self.entry_bar, self.entry_fill, stop, target, self.quantity, symbol)
        # fills of working orders (limit, stop, partial): the entry fees paid so far (None: the one-fill market entry,
        # whose return is the venue's ``net_return``), and where in the entry bar the first fill happened
        self.entry_fees: float | None = None
        self.entry_row = -1  # detail row of the first fill (-1: the bar)
        self.entry_inside = False  # the first fill was inside its bar/row, not at its opening print


class Portfolio:
    def __init__(self, initial_cash: float = 1.0) -> None:
        if not initial_cash > 0:
            raise ValueError(f"initial cash must be > 0 (got {initial_cash})")
        self.initial_cash = float(initial_cash)
        self.realised = float(initial_cash)  # equity with every open position valued at its entry
        self.positions: dict[str, OpenPosition] = {}
        self._marks: dict[str, float] = {}

    # -- bookkeeping ----------------------------------------------------------------------------------------------
    def allocation_for(self, order: Order, entry_fill: float) -> float:
        """Capital an entry commits: ``quantity × fill`` when the order names a quantity, else ``fraction × equity``."""
        if order.quantity is not None:
            return order.quantity * entry_fill
        return order.fraction * self.equity()

    def open(self, order: Order, signal_bar: int, fill: Fill, stop: float, target: float, allocation: float) -> OpenPosition:
        if fill.symbol in self.positions:
            raise ValueError(f"{fill.symbol}: a position is already open")
        pos = OpenPosition(fill.symbol, order, signal_bar, fill, stop, target, allocation)
        self.positions[fill.symbol] = pos
        self._marks[fill.symbol] = fill.price
        return pos

    def add(self, fill: Fill, stop: float, target: float) -> OpenPosition:
        """One more entry fill of the symbol's open position (a partial fill): quantity and committed capital grow,
        the entry becomes their VWAP, the fee is added to the entry fees; ``stop``/``target`` are the new bracket."""
        pos = self.positions[fill.symbol]
        if fill.direction != pos.direction:
            raise ValueError(f"{fill.symbol}: an entry fill against the open position's direction")
        pos.quantity += fill.quantity
        pos.allocation += fill.quantity * fill.price
        pos.entry_fill = pos.allocation / pos.quantity
        pos.entry_fees = (pos.entry_fees or 0.0) + fill.fee
        pos.stop, pos.target = stop, target
        pos.view = Position(pos.direction, pos.entry_bar, pos.entry_fill, stop, target, pos.quantity, pos.symbol)
        return pos

    def close(self, fill: Fill, net_return: float, reason_name: str) -> Trade:
        """Book the exit ``fill`` of the symbol's position with the venue's ``net_return``; returns the trade."""
        pos = self.positions.pop(fill.symbol)
        self._marks.pop(fill.symbol, None)
        if pos.allocation == self.realised and not self.positions:
            self.realised *= 1 + net_return  # the single full-equity position: bit-identical to the sweep's compounding
        else:
            self.realised += pos.allocation * net_return
        return Trade(
            pos.signal_bar, pos.direction, pos.level, pos.entry_bar, pos.entry_ts, pos.entry_fill, pos.stop, pos.target,
            fill.bar_index, fill.ts, reason_name, fill.price, net_return,
        )  # fmt: skip

    def mark(self, symbol: str, price: float) -> None:
        if symbol in self._marks:
            self._marks[symbol] = price

    # -- valuation ------------------------------------------------------------------------------------------------
    def unrealised_return(self, symbol: str) -> float:
        pos = self.positions.get(symbol)
        if pos is None:
            return 0.0
        return pos.direction * (self._marks[symbol] - pos.entry_fill) / pos.entry_fill

    def unrealised_pnl(self) -> float:
        return sum(p.allocation * self.unrealised_return(s) for s, p in self.positions.items())

    def realised_pnl(self) -> float:
        return self.realised - self.initial_cash

    @property
    def cash(self) -> float:
        """Realised equity not committed to open positions."""
        return self.realised - sum(p.allocation for p in self.positions.values())

    def quantity(self, symbol: str) -> float:
        """Signed units held (+ long, - short, 0 flat)."""
        pos = self.positions.get(symbol)
        return 0.0 if pos is None else pos.direction * pos.quantity

    def equity(self) -> float:
        """Mark-to-market equity (fees of the eventual exit are not anticipated)."""
        if not self.positions:
            return self.realised
        if len(self.positions) == 1:
            ((symbol, pos),) = self.positions.items()
            unreal = self.unrealised_return(symbol)
            if pos.allocation == self.realised:
                return self.realised * (1 + unreal)
            return self.realised + pos.allocation * unreal
        return self.realised + self.unrealised_pnl()

    def __repr__(self) -> str:
        eq = self.equity()
        return f"Portfolio(equity={eq:.6g}, positions={sorted(self.positions)})" if math.isfinite(eq) else "Portfolio(?)"
