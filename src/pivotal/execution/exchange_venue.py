"""The seam between the runtime and a real exchange's order API (testnet, live).

``execution.venue.Venue`` is a set of *fill rules* the engine applies to bars it already holds (fill at this open,
resolve a bracket inside that bar); an exchange decides fills itself, later, and can refuse, time out or rate-limit
an order. Bending ``Venue`` to fit would make every simulated call site handle "maybe accepted", so exchanges get
this second protocol: submit / cancel / fetch / reconcile / open orders / balances / amount step, with typed
results.

Every order carries a client order id (``core.ids.OrderIdFactory``) chosen and journaled *before* it is sent, so a
retry, a restart or a reconciliation can always ask the exchange "did you take order X?" and never place it twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, Protocol, runtime_checkable

from pivotal.core.errors import PivotalError
from pivotal.core.orders import Fill
from pivotal.core.vocabulary import OrderSide, OrderStatus, OrderType

FillKind = Literal["entry", "exit"]


class VenueError(PivotalError):
    """An exchange call that could not be completed (refused key, retries exhausted, banned): one line, no secrets."""


class VenueUnavailable(VenueError):
    """The exchange kept answering 429/418/5xx or timing out after every retry the policy allows."""


class RejectReason(StrEnum):
    """Why an order was not placed. ``BELOW_MINIMUM`` and ``UNSUPPORTED`` are decided locally (no request sent)."""

    INSUFFICIENT_BALANCE = "insufficient_balance"
    FILTER_FAILURE = "filter_failure"  # the exchange's price / lot / notional filters
    BELOW_MINIMUM = "below_minimum"  # under the market's minimum amount or notional after rounding
    DUPLICATE_MISMATCH = "duplicate_mismatch"  # the client id already names a different order
    UNKNOWN_SYMBOL = "unknown_symbol"
    UNSUPPORTED = "unsupported"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """One order to send. ``price`` is the limit price (LIMIT, STOP), ``stop_price`` the trigger (STOP = stop-limit);
    ``reference_price`` (e.g. the last close) sizes the minimum-notional check of a MARKET order without asking the
    exchange. ``kind`` labels the fills (default: a buy enters, a sell exits — spot holds long positions only)."""

    symbol: str
    side: OrderSide
    quantity: float
    order_type: OrderType = OrderType.MARKET
    price: float | None = None
    stop_price: float | None = None
    client_order_id: str = ""
    time_in_force: Literal["GTC", "IOC", "FOK"] | None = None
    reference_price: float | None = None
    kind: FillKind | None = None

    @property
    def fill_kind(self) -> FillKind:
        return self.kind or ("entry" if self.side is OrderSide.BUY else "exit")


@dataclass(frozen=True, slots=True)
class ExchangeOrder:
    """An order as the exchange reports it: quantities and prices are the exchange's numbers (after rounding).

    ``fills`` are the executions so far (``Fill.fee`` in quote currency; ``Fill.bar_index`` is -1: an exchange fill
    is not on a bar); ``fees`` keeps each fee in the asset the exchange charged it in."""

    client_order_id: str
    exchange_order_id: str
    symbol: str
    side: OrderSide
    order_type: str
    quantity: float
    price: float | None
    status: OrderStatus
    filled: float
    average: float | None
    ts: int
    fills: tuple[Fill, ...] = ()
    fees: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Accepted:
    """The exchange holds the order. ``reconciled``: its placement answer was lost (timeout, 5xx, duplicate id) and
    the order was found by its client id instead of being sent again."""

    order: ExchangeOrder
    reconciled: bool = False

    @property
    def client_order_id(self) -> str:
        return self.order.client_order_id


@dataclass(frozen=True, slots=True)
class Rejected:
    """The order was not placed: ``reason`` and one line ``message`` (the exchange's own message where it answered)."""

    client_order_id: str
    reason: RejectReason
    message: str
    code: int | None = None  # the exchange's error code, when it sent one


SubmitResult = Accepted | Rejected


@dataclass(frozen=True, slots=True)
class Balance:
    free: float
    used: float
    total: float


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """The exchange's view of the orders a journal says were sent: ``found`` by client id, ``missing`` (never
    reached the exchange: safe to send again with the same id), ``unexpected`` open orders no journal entry names."""

    found: Mapping[str, ExchangeOrder]
    missing: tuple[str, ...]
    unexpected: tuple[ExchangeOrder, ...]


@runtime_checkable
class ExchangeVenue(Protocol):
    """Orders on an exchange, by client order id. Implementations: ``execution.ccxt_venue.CcxtVenue``."""

    def submit(self, request: OrderRequest) -> SubmitResult:
        """Place ``request`` once: a lost answer is reconciled by client id before anything is sent again."""
        ...

    def cancel(self, symbol: str, client_order_id: str) -> ExchangeOrder | None:
        """Cancel an open order; the order as it ends (canceled, or filled first), None if the exchange never had it."""
        ...

    def fetch(self, symbol: str, client_order_id: str) -> ExchangeOrder | None:
        """The order's current state with its fills; None if the exchange does not know the id."""
        ...

    def reconcile(self, sent: Iterable[tuple[str, str]]) -> Reconciliation:
        """Compare (symbol, client id) pairs a journal recorded as sent with the exchange (after a restart)."""
        ...

    def open_orders(self, symbol: str | None = None) -> list[ExchangeOrder]: ...

    def balances(self) -> dict[str, Balance]: ...

    def amount_step(self, symbol: str) -> float | None:
        """The market's amount increment (its precision): differences below it are rounding, not trades."""
        ...
