"""Circuit breakers that can be judged on closed bars; settings and defaults in :mod:`pivotal.risk.config`.

Breakers only block *new* entries; open positions keep their stop/target. Everything is judged at bar close with
data up to that bar, so the same object can run live.
"""

from __future__ import annotations

import math
from collections import deque

from pivotal.core.stats import DAY_MS
from pivotal.risk.config import RiskConfig


class CircuitBreakers:
    def __init__(self, config: RiskConfig) -> None:
        self.config = config
        self._day = -1
        self._day_start_equity = 1.0
        self._halted_day = -1
        self._losses = 0
        self._returns: deque[float] = deque(maxlen=config.sigma_lookback)
        self._prev_close = math.nan
        self._unusual = False
        self._last_equity = 1.0

    def on_bar_close(self, ts: int, close: float, equity: float) -> None:
        """Update with the closed bar (open time ``ts``) and the mark-to-market equity at its close."""
        day = ts // DAY_MS
        if day != self._day:
            self._day, self._day_start_equity, self._losses = day, self._last_equity, 0  # equity at the previous close
        self._last_equity = equity
        cfg = self.config
        if cfg.max_daily_loss is not None and equity <= self._day_start_equity * (1 - cfg.max_daily_loss):
            self._halted_day = day
        self._unusual = False
        if not math.isnan(self._prev_close) and self._prev_close > 0:
            ret = close / self._prev_close - 1.0
            if cfg.unusual_market_threshold is not None and len(self._returns) >= max(2, cfg.sigma_lookback // 2):
                mean = sum(self._returns) / len(self._returns)
                var = sum((x - mean) ** 2 for x in self._returns) / (len(self._returns) - 1)
                self._unusual = var > 0 and abs(ret - mean) > cfg.unusual_market_threshold * math.sqrt(var)
            self._returns.append(ret)
        self._prev_close = close

    def on_trade_closed(self, net_return: float) -> None:
        limit = self.config.consecutive_losses_limit
        self._losses = self._losses + 1 if net_return <= 0 else 0
        if limit is not None and self._losses >= limit:
            self._halted_day = self._day

    def allows_entry(self) -> bool:
        return self._halted_day != self._day and not self._unusual

    def reason(self) -> str:
        if self._halted_day == self._day:
            return "daily loss or loss streak"
        return "unusual move" if self._unusual else ""
