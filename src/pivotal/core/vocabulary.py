"""One definition of each trading noun.

The integer codes are part of the vocabulary: numba kernels cannot take enums, so they use the ``int`` constants
below (``EXIT_SL_GAP`` …), which are the same values as the enum members. Strings (``"LONG"``, ``"SL_GAP"``) are what
files, tables and the CLI show.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Literal


class Side(IntEnum):
    """Position or order direction. The value is the sign of the exposure."""

    LONG = 1
    SHORT = -1

    @classmethod
    def of(cls, direction: int) -> Side:
        if direction not in (1, -1):
            raise ValueError(f"direction must be +1 (LONG) or -1 (SHORT), got {direction}")
        return cls(direction)

    @property
    def label(self) -> str:
        return self.name


class OrderSide(StrEnum):
    """Side of one order (an exit of a LONG is a SELL order)."""

    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is OrderSide.BUY else -1


class Action(StrEnum):
    """A model's decision, read as a position target: BUY = be long, SELL = be short, HOLD = be flat."""

    BUY = "BUY"
    SELL = "SELL"
    HOLD = "HOLD"

    @property
    def code(self) -> int:
        return ACTIONS.index(self.value)

    @property
    def target(self) -> int:
        """Target exposure sign: +1, -1 or 0."""
        return {"BUY": 1, "SELL": -1, "HOLD": 0}[self.value]


ActionName = Literal["BUY", "SELL", "HOLD"]
# Codes used in tensors and arrays: index into this tuple (BUY 0, SELL 1, HOLD 2).
ACTIONS: tuple[ActionName, ...] = ("BUY", "SELL", "HOLD")
ACTION_BUY, ACTION_SELL, ACTION_HOLD = 0, 1, 2


class PivotKind(StrEnum):
    """Swing high (``H``) or swing low (``L``)."""

    HIGH = "H"
    LOW = "L"


PivotKindName = Literal["H", "L"]
PIVOT_KINDS: tuple[PivotKindName, ...] = ("H", "L")


class ExitReason(IntEnum):
    """Why a position was closed. Order of the first six is the bar-resolution order of spec B.2."""

    SL_GAP = 0  # the bar opened through the stop
    TP_GAP = 1  # the bar opened through the target
    SL = 2
    TP = 3
    TIME = 4  # maximum holding time reached
    EOD = 5  # end of data
    SIGNAL = 6  # the strategy asked to close
    BREAKER = 7  # the risk gate forced the close

    @classmethod
    def parse(cls, name: str) -> ExitReason:
        try:
            return cls[name]
        except KeyError:
            raise ValueError(f"unknown exit reason {name!r}; use one of: {' '.join(m.name for m in cls)}") from None


EXIT_SL_GAP, EXIT_TP_GAP, EXIT_SL, EXIT_TP, EXIT_TIME, EXIT_EOD, EXIT_SIGNAL, EXIT_BREAKER = (int(m) for m in ExitReason)
EXIT_REASONS: tuple[str, ...] = tuple(m.name for m in ExitReason)


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"


class OrderStatus(StrEnum):
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_final(self) -> bool:
        return self in (OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED)
