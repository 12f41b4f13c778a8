"""The one risk configuration: the seven A-Plus circuit-breaker settings, with their defaults.

Enforced today (by :class:`pivotal.risk.breakers.CircuitBreakers`, judged on closed bars, blocking new entries only):

- ``max_daily_loss`` (0.02): equity at a bar close that fraction below the equity at the start of its UTC day halts
  new entries for the rest of that day;
- ``consecutive_losses_limit`` (5): that many losing trades in a row halt new entries for the rest of the UTC day;
- ``unusual_market_threshold`` (3.0 σ): a bar whose close-to-close return is more than that many standard deviations
  (of the previous ``sigma_lookback`` returns) from their mean blocks entries decided at its close.

**Declared but NOT enforced yet** (they need data the backtest does not have — a second market, order latency,
fills against a book, a regime model): ``max_correlation_spike`` (0.8), ``latency_threshold_ms`` (500),
``max_adverse_selection`` (0.6), ``regime_break_threshold`` (0.3). They are stored with trained configurations so
that the live runtime can enforce them; nothing checks them today.

``None`` switches an enforced breaker off.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

ENFORCED = ("max_daily_loss", "consecutive_losses_limit", "unusual_market_threshold")
NOT_ENFORCED_YET = ("max_correlation_spike", "latency_threshold_ms", "max_adverse_selection", "regime_break_threshold")


@dataclass(frozen=True)
class RiskConfig:
    max_daily_loss: float | None = 0.02
    max_correlation_spike: float | None = 0.8  # not enforced yet
    unusual_market_threshold: float | None = 3.0  # in standard deviations
    latency_threshold_ms: int | None = 500  # not enforced yet
    consecutive_losses_limit: int | None = 5
    max_adverse_selection: float | None = 0.6  # not enforced yet
    regime_break_threshold: float | None = 0.3  # not enforced yet
    sigma_lookback: int = 100  # returns behind the unusual-market test (not an A-Plus key)

    def breaker_values(self) -> dict[str, float | int | None]:
        """The seven A-Plus keys and values, as stored in a trained configuration's template."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name in ENFORCED + NOT_ENFORCED_YET}


# The A-Plus seed defaults, in their template order (trained configurations copy this dict).
CIRCUIT_BREAKER_DEFAULTS: dict[str, float | int] = {k: v for k, v in RiskConfig().breaker_values().items() if v is not None}
