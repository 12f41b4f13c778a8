"""The replay clock: the exchange's "now" is a point in the recorded data.

It satisfies ``core.clock.Clock``. With ``speed > 0`` it runs ``speed`` times faster than the wall clock from where it
was last set; with ``speed == 0`` it stands still and only moves when told (the replay driver moves it event by event,
as fast as the clients read). It never moves backwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class ReplayClock:
    def __init__(self, start_ms: int, speed: float = 0.0, wall: Callable[[], float] = time.monotonic) -> None:
        if speed < 0:
            raise ValueError(f"replay speed must be >= 0, got {speed}")
        self._wall = wall
        self._anchor_ms = int(start_ms)
        self._anchor_wall = wall()
        self._speed = float(speed)
        self._paused = False

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def paced(self) -> bool:
        """True while the clock moves by itself (speed > 0 and not paused)."""
        return self._speed > 0 and not self._paused

    def now_ms(self) -> int:
        if not self.paced:
            return self._anchor_ms
        return self._anchor_ms + int((self._wall() - self._anchor_wall) * 1000.0 * self._speed)

    def _rebase(self) -> None:
        self._anchor_ms, self._anchor_wall = self.now_ms(), self._wall()

    def advance_to(self, t_ms: int) -> None:
        """Jump forward to ``t_ms`` (no-op if already past it)."""
        now = self.now_ms()
        self._anchor_ms, self._anchor_wall = max(now, int(t_ms)), self._wall()

    def set_speed(self, speed: float) -> None:
        if speed < 0:
            raise ValueError(f"replay speed must be >= 0, got {speed}")
        self._rebase()
        self._speed = float(speed)

    def pause(self) -> None:
        self._rebase()
        self._paused = True

    def resume(self) -> None:
        self._rebase()
        self._paused = False

    def wall_seconds_until(self, t_ms: int) -> float:
        """Wall seconds until the clock reaches ``t_ms`` (inf when it does not move by itself)."""
        if not self.paced:
            return float("inf")
        return max(0.0, (t_ms - self.now_ms()) / 1000.0 / self._speed)
