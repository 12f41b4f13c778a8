"""Trend lines through the two most recent confirmed same-type pivots of one level (spec A.6).

A line through pivots ``(i1, v1)`` and ``(i2, v2)`` becomes known at the close of the bar that confirmed the second
pivot (``valid_from``) and is replaced when the next same-type pivot of that level is confirmed (``valid_until``).
Bar positions are the x axis, so a line's value at bar ``t`` is ``v2 + slope * (t - i2)``; timestamps only label
the end points (they would make the slope depend on gaps in the data).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from pivotal.structure.types import Kind, PivotArray, PivotSet

Direction = Literal["up", "down", "flat"]


@dataclass(frozen=True)
class TrendLine:
    """One line between two consecutive same-type pivots of ``level``.

    ``flat_tolerance`` is a fraction of ``v1``: a line whose total price change is within it is ``flat``.
    ``valid_until`` is the bar at whose close the next same-type pivot was confirmed (this line no longer
    applies from that bar on), or None while it is still the current line.
    """

    kind: Kind
    level: int
    i1: int
    v1: float
    i2: int
    v2: float
    valid_from: int
    valid_until: int | None = None
    start_ts: int | None = None
    end_ts: int | None = None
    flat_tolerance: float = 0.0

    @property
    def slope(self) -> float:
        """Price change per bar."""
        return (self.v2 - self.v1) / (self.i2 - self.i1)

    @property
    def intercept(self) -> float:
        """Value of the line at bar 0 of the series."""
        return self.v2 - self.slope * self.i2

    @property
    def price_change(self) -> float:
        return self.v2 - self.v1

    @property
    def duration_bars(self) -> int:
        return self.i2 - self.i1

    @property
    def duration_ms(self) -> int | None:
        if self.start_ts is None or self.end_ts is None:
            return None
        return self.end_ts - self.start_ts

    @property
    def direction(self) -> Direction:
        if abs(self.price_change) <= self.flat_tolerance * abs(self.v1):
            return "flat"
        return "up" if self.price_change > 0 else "down"

    def value_at(self, t: int | float | np.ndarray) -> float | np.ndarray:
        """The line projected to bar position ``t`` (scalar or array)."""
        return self.v2 + self.slope * (t - self.i2)

    def is_valid_at(self, t: int) -> bool:
        """True if this line is the current one at the close of bar ``t``."""
        return self.valid_from <= t and (self.valid_until is None or t < self.valid_until)


def _check_level_kind(level: int, kind: str) -> None:
    if kind not in ("H", "L"):
        raise ValueError(f"kind must be 'H' or 'L' (got {kind!r})")
    if level < 1:
        raise ValueError(f"level must be >= 1 (got {level})")


def _ts_at(ts: np.ndarray | None, i: int) -> int | None:
    return None if ts is None else int(ts[i])


def _line(arr: PivotArray, j: int, level: int, kind: Kind, ts: np.ndarray | None, tol: float, until: int | None) -> TrendLine:
    i1, i2 = int(arr.index[j - 1]), int(arr.index[j])
    return TrendLine(
        kind=kind,
        level=level,
        i1=i1,
        v1=float(arr.price[j - 1]),
        i2=i2,
        v2=float(arr.price[j]),
        valid_from=int(arr.confirmed_at[j]),
        valid_until=until,
        start_ts=_ts_at(ts, i1),
        end_ts=_ts_at(ts, i2),
        flat_tolerance=tol,
    )


def trend_lines(
    pivots: PivotSet,
    level: int = 2,
    kind: Kind = "H",
    ts: np.ndarray | None = None,
    flat_tolerance: float = 0.0,
) -> list[TrendLine]:
    """Every line of ``level``/``kind`` in the order they became known (the full causal history).

    ``ts``: bar open times (epoch ms) of the series, to fill ``start_ts``/``end_ts``.
    """
    _check_level_kind(level, kind)
    arr = pivots.get(level, kind)
    lines = []
    for j in range(1, len(arr)):
        until = int(arr.confirmed_at[j + 1]) if j + 1 < len(arr) else None
        lines.append(_line(arr, j, level, kind, ts, flat_tolerance, until))
    return lines


def active_trend_line(
    pivots: PivotSet,
    t: int,
    level: int = 2,
    kind: Kind = "H",
    ts: np.ndarray | None = None,
    flat_tolerance: float = 0.0,
) -> TrendLine | None:
    """The line known at the close of bar ``t`` (from pivots confirmed at or before ``t``), or None.

    Its ``valid_until`` is None: at bar ``t`` nobody can know when it will be replaced.
    """
    _check_level_kind(level, kind)
    arr = pivots.get(level, kind).known_at(t)
    if len(arr) < 2:
        return None
    return _line(arr, len(arr) - 1, level, kind, ts, flat_tolerance, None)


def trend_line_values(pivots: PivotSet, n: int, level: int = 2, kind: Kind = "H") -> np.ndarray:
    """Value at every bar ``t`` in ``0..n-1`` of the line active at ``t`` (NaN before the first line): a causal feature."""
    _check_level_kind(level, kind)
    arr = pivots.get(level, kind)
    t = np.arange(n)
    last = np.searchsorted(arr.confirmed_at, t, side="right") - 1  # newest pivot known at t
    out = np.full(n, np.nan)
    ok = last >= 1
    j2 = last[ok]
    i1, i2 = arr.index[j2 - 1], arr.index[j2]
    v1, v2 = arr.price[j2 - 1], arr.price[j2]
    out[ok] = v2 + (v2 - v1) / (i2 - i1) * (t[ok] - i2)
    return out
