"""Circuit breakers that can be judged on closed bars (the A-Plus seed defaults); disabled unless configured.

- ``max_daily_loss`` (0.02): once equity at a bar close is that fraction below the equity at the start of its UTC
  day, no new entries for the rest of that day.
- ``consecutive_losses_limit`` (5): after that many losing trades in a row, no new entries for the rest of the UTC
  day; the streak restarts the next day.
- ``unusual_move_sigma`` (3.0): a bar whose close-to-close return exceeds that many standard deviations of the
  previous ``sigma_lookback`` returns blocks entries decided at its close.

Breakers only block *new* entries; open positions keep their stop/target. Everything is judged at bar close with
data up to that bar, so the same object can run live.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

DAY_MS = 86_400_000


@dataclass(frozen=True)
class BreakerConfig:
    max_daily_loss: float | None = 0.02
    consecutive_losses_limit: int | None = 5
    unusual_move_sigma: float | None = 3.0
    sigma_lookback: int = 100


class CircuitBreakers:
    def __init__(self, config: BreakerConfig) -> None:
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
            if cfg.unusual_move_sigma is not None and len(self._returns) >= max(2, cfg.sigma_lookback // 2):
                mean = sum(self._returns) / len(self._returns)
                var = sum((x - mean) ** 2 for x in self._returns) / (len(self._returns) - 1)
                self._unusual = var > 0 and abs(ret - mean) > cfg.unusual_move_sigma * math.sqrt(var)
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
