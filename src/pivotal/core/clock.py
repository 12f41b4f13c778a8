"""Time is injected. Everything that needs "now" takes a :class:`Clock`, so a backtest, a replay and a live node run
the same code, and tests control time exactly. All times are epoch milliseconds (UTC)."""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    def now_ms(self) -> int:
        """Current time in epoch milliseconds."""
        ...


class WallClock:
    """The machine's clock (UTC)."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class SimulatedClock:
    """A clock that only moves when told to; never moves backwards."""

    def __init__(self, start_ms: int = 0) -> None:
        self._now = int(start_ms)

    def now_ms(self) -> int:
        return self._now

    def set(self, t_ms: int) -> None:
        if t_ms < self._now:
            raise ValueError(f"simulated clock cannot move backwards ({t_ms} < {self._now})")
        self._now = int(t_ms)

    def advance(self, delta_ms: int) -> None:
        self.set(self._now + int(delta_ms))
