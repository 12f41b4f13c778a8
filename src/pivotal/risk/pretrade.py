"""Pre-trade checks: limits an order must respect before it may reach a venue, each denial with its rule and values.

Pure functions over numbers, so the risk engine, a venue adapter and the tests judge an order the same way. A limit
is allowed up to and including its value; an order that would go beyond it is denied. Order rate: at most the
limit's count of orders inside any window of that length. Definitions: ``docs/risk.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pivotal.core.errors import UserInputError


@dataclass(frozen=True)
class MarketRules:
    """An exchange's precision rules for one symbol (ccxt's ``market['precision']`` / ``['limits']``, as steps).

    ``amount_step``/``price_step``: quantities and prices must be whole multiples; ``min_amount``, ``min_notional``:
    smallest order size and value. None: no rule."""

    amount_step: float | None = None
    price_step: float | None = None
    min_amount: float | None = None
    min_notional: float | None = None

    def __post_init__(self) -> None:
        for name in ("amount_step", "price_step", "min_amount", "min_notional"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, int | float) and v > 0 and math.isfinite(v)):
                raise UserInputError(f"market rules: {name} must be a positive number or None (got {v!r})")

    def round_amount(self, quantity: float) -> float:
        """``quantity`` rounded down to the amount step (what a venue may send)."""
        if self.amount_step is None:
            return quantity
        return math.floor(quantity / self.amount_step + 1e-9) * self.amount_step

    def round_price(self, price: float) -> float:
        """``price`` rounded to the nearest price step."""
        if self.price_step is None:
            return price
        return round(price / self.price_step) * self.price_step


@dataclass(frozen=True)
class Denial:
    """Why an order was refused: the rule, the value the order would reach and the limit."""

    rule: str
    value: float
    limit: float
    symbol: str = ""


def on_step(value: float, step: float) -> bool:
    """Is ``value`` a whole multiple of ``step`` (relative tolerance 1e-9, for values parsed from decimal text)?"""
    k = value / step
    return abs(k - round(k)) <= 1e-9 * max(1.0, abs(k))


def precision_denial(
    rules: MarketRules, quantity: float, price: float, *, exact_quantity: bool, limit_price: float | None = None
) -> Denial | None:
    """Amount step (only when the order states its quantity; a fraction-of-equity order is rounded by the venue),
    price step (only for an order that states a price), minimum amount and minimum notional at ``price``."""
    if exact_quantity and rules.amount_step is not None and not on_step(quantity, rules.amount_step):
        return Denial("amount step", quantity, rules.amount_step)
    if limit_price is not None and rules.price_step is not None and not on_step(limit_price, rules.price_step):
        return Denial("price step", limit_price, rules.price_step)
    if rules.min_amount is not None and quantity < rules.min_amount:
        return Denial("min amount", quantity, rules.min_amount)
    if rules.min_notional is not None and quantity * price < rules.min_notional:
        return Denial("min notional", quantity * price, rules.min_notional)
    return None


def cap_denial(rule: str, value: float, limit: float | None) -> Denial | None:
    """A cap allows values up to and including ``limit``."""
    if limit is not None and value > limit:
        return Denial(rule, value, limit)
    return None


def rate_denial(rule: str, recent: int, limit: int | None) -> Denial | None:
    """``recent`` orders already inside the window: one more is allowed while ``recent < limit``."""
    if limit is not None and recent >= limit:
        return Denial(rule, recent + 1, limit)
    return None
