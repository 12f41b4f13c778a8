"""The seam between the engine and whoever fills orders: the simulated venue now, an exchange adapter later."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from pivotal.core.orders import Fill, Order
from pivotal.execution.portfolio import OpenPosition
from pivotal.execution.simulated_venue import Match


@runtime_checkable
class Venue(Protocol):
    """Fill rules. Prices are for ``bar_index`` of the order's symbol; a venue never looks at later bars."""

    def fill_entry(self, order: Order, symbol: str, bar_index: int, ts: int, open_price: float, equity: float) -> Fill:
        """Execute an entry at this bar's opening print (the order was decided at the previous close)."""
        ...

    def fill_exit(self, position: OpenPosition, bar_index: int, ts: int, price: float, reason: int) -> Fill:
        """Close ``position`` at ``price`` (before slippage) for ``reason`` (an ``ExitReason``)."""
        ...

    def net_return(self, direction: int, entry_fill: float, exit_fill: float) -> float:
        """A round trip's return after fees, as a fraction of the entry fill."""
        ...

    def bracket(self, order: Order, entry_fill: float) -> tuple[float, float]:
        """Stop and target prices of an entry filled at ``entry_fill`` (NaN: none)."""
        ...

    def resolve(
        self,
        pos: OpenPosition,
        t: int,
        o: float,
        h: float,
        lo: float,
        close: float,
        detail: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        detail_rows: tuple[int, int] = (0, 0),
    ) -> tuple[float, int] | None:
        """Whether the open position exits inside bar t: (price before slippage, ``ExitReason`` code) or None."""
        ...


@runtime_checkable
class WorkingOrderVenue(Venue, Protocol):
    """A venue that also matches working entry orders (LIMIT, STOP, IOC, expiring, under a participation cap) bar by
    bar; ``SimulatedVenue`` is one. The engine refuses such orders with a venue that is not."""

    def match(
        self,
        order: Order,
        first: bool,
        triggered: bool,
        o: float,
        h: float,
        lo: float,
        detail: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        detail_rows: tuple[int, int] = (0, 0),
        prints: np.ndarray | None = None,
    ) -> Match | None:
        """Where ``order`` executes in this bar (price, maker/taker, quantity the prints offer), or None."""
        ...

    def fill_working(self, order: Order, symbol: str, bar_index: int, ts: int, match: Match, quantity: float) -> Fill:
        """The fill of ``quantity`` where :meth:`match` placed it."""
        ...
