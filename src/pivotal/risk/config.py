"""The one risk configuration: the seven A-Plus circuit-breaker settings with their defaults, and the risk engine's
windows, extra breakers, auto-close/auto-stop and pre-trade limits. Exact definitions: ``docs/risk.md``.

Who enforces what:

- :class:`pivotal.risk.engine.RiskEngine` (the full risk engine, a ``RiskGate``) enforces **all seven** A-Plus
  breakers — ``max_daily_loss`` (0.02), ``max_correlation_spike`` (0.8, needs ``correlation_reference``),
  ``unusual_market_threshold`` (3.0 σ), ``latency_threshold_ms`` (500, needs latency samples),
  ``consecutive_losses_limit`` (5), ``max_adverse_selection`` (0.6), ``regime_break_threshold`` (0.3) — plus stale
  market data, stale model and exchange error rate, the stop-loss auto-close, the max-drawdown auto-stop and the
  pre-trade checks. A trip latches until an explicit ``reset`` and is written to the audit log.
- :class:`pivotal.risk.gate.DefaultRiskGate` (what ``BacktestConfig(risk=...)`` uses) enforces only the three
  bar-judged breakers of :mod:`pivotal.risk.breakers` (``BAR_BREAKERS``: daily loss and loss streak for the rest of
  the UTC day, a 3σ bar for that bar), unchanged so that existing backtests keep their trades.

``None`` switches a setting off. Every new setting is off by default; the A-Plus defaults keep their values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

from pivotal.core.errors import UserInputError

BAR_BREAKERS = ("max_daily_loss", "consecutive_losses_limit", "unusual_market_threshold")
ENGINE_ONLY = ("max_correlation_spike", "latency_threshold_ms", "max_adverse_selection", "regime_break_threshold")
A_PLUS_KEYS = (
    "max_daily_loss", "max_correlation_spike", "unusual_market_threshold", "latency_threshold_ms",
    "consecutive_losses_limit", "max_adverse_selection", "regime_break_threshold",
)  # fmt: skip
ENFORCED = BAR_BREAKERS  # old name: enforced by the default (backtest) gate
NOT_ENFORCED_YET = ENGINE_ONLY  # old name: not enforced by the default gate; RiskEngine enforces them


@dataclass(frozen=True)
class RiskConfig:
    # -- the seven A-Plus breakers (template order) ------------------------------------------------------------------
    max_daily_loss: float | None = 0.02
    max_correlation_spike: float | None = 0.8  # RiskEngine only; needs correlation_reference
    unusual_market_threshold: float | None = 3.0  # in standard deviations
    latency_threshold_ms: int | None = 500  # RiskEngine only; needs latency samples
    consecutive_losses_limit: int | None = 5
    max_adverse_selection: float | None = 0.6  # RiskEngine only
    regime_break_threshold: float | None = 0.3  # RiskEngine only
    sigma_lookback: int = 100  # returns behind the unusual-market test (not an A-Plus key)
    # -- windows of the engine's breakers ----------------------------------------------------------------------------
    correlation_reference: str | None = None  # e.g. "BTC/USDT"; None: the correlation breaker has nothing to compare
    correlation_window: int = 24  # matched bar returns in the rolling correlation
    latency_samples: int = 5  # the latency breaker reads the median of the last this many samples
    adverse_horizon_ms: int = 60_000  # a fill is judged at the first mark at or after fill time + horizon
    adverse_window: int = 20  # judged fills behind the adverse-selection share (none before this many)
    regime_short: int = 24  # recent returns of the volatility change-point statistic
    regime_long: int = 96  # the returns before them it is compared with
    # -- extra breakers (off by default) -----------------------------------------------------------------------------
    stale_data_bars: float | None = None  # no closed bar within this many timeframes of the clock
    stale_model_ms: int | None = None  # the serving model's last update older than this
    max_error_rate: float | None = None  # exchange errors / requests in the window
    error_window_ms: int = 60_000
    error_min_requests: int = 10  # fewer requests in the window: no verdict
    # -- auto-close and auto-stop (off by default) -------------------------------------------------------------------
    stop_loss: float | None = None  # a position without its own stop is closed when the mark is this fraction adverse
    max_drawdown: float | None = None  # equity this fraction below its peak: HALTED and flatten
    # -- pre-trade limits (off by default; money in the portfolio's units) -------------------------------------------
    max_position_size: float | None = None  # base units per symbol, absolute
    max_leverage: float | None = None  # gross notional (open + order) / equity
    max_order_notional: float | None = None
    max_symbol_notional: float | None = None
    max_total_notional: float | None = None
    max_orders_per_second: int | None = None
    max_orders_per_minute: int | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None or isinstance(v, str):
                continue
            if isinstance(v, bool) or not isinstance(v, int | float) or math.isnan(v) or v <= 0:
                raise UserInputError(f"risk config: {f.name} must be a positive number or None (got {v!r})")
        for name in ("max_correlation_spike", "max_adverse_selection", "regime_break_threshold", "max_error_rate"):
            v = getattr(self, name)
            if v is not None and v > 1:
                raise UserInputError(f"risk config: {name} is a share or correlation in (0, 1] (got {v!r})")
        for name in ("max_daily_loss", "stop_loss", "max_drawdown"):
            v = getattr(self, name)
            if v is not None and v >= 1:
                raise UserInputError(f"risk config: {name} is a fraction in (0, 1) (got {v!r})")
        if self.correlation_window < 3 or self.latency_samples < 1 or self.regime_short < 2 or self.regime_long < 2:
            raise UserInputError(
                "risk config: correlation_window >= 3, latency_samples >= 1, regime_short and regime_long >= 2 "
                f"(got {self.correlation_window}, {self.latency_samples}, {self.regime_short}, {self.regime_long})"
            )

    def breaker_values(self) -> dict[str, float | int | None]:
        """The seven A-Plus keys and values, as stored in a trained configuration's template."""
        return {name: getattr(self, name) for name in A_PLUS_KEYS}

    @classmethod
    def off(cls, **settings: object) -> RiskConfig:
        """Every breaker off (the A-Plus seven set to None), then ``settings``: the engine adds nothing unasked."""
        return replace(cls(**{k: None for k in A_PLUS_KEYS}), **settings)  # type: ignore[arg-type]


# The A-Plus seed defaults, in their template order (trained configurations copy this dict).
CIRCUIT_BREAKER_DEFAULTS: dict[str, float | int] = {k: v for k, v in RiskConfig().breaker_values().items() if v is not None}
