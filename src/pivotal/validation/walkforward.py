"""Walk-forward splitting: the project's one time-series splitter (parameter search and model training alike).

Folds are built on timestamps (epoch ms), then mapped to bar indices, so they work for any bar series and for
sample sets alike. Rolling (default): train 90 days -> gap 7 days -> test 30 days, rolled by the test length.
Anchored: every train window starts at the first bar and grows.

Purge and embargo are measured in **time** (ms), never in rows, and mean what López de Prado means
(*Advances in Financial Machine Learning*, ch. 7):

- **purge** drops training samples whose outcome could reach into the test window. A sample at time ``t`` whose
  label (for a strategy: its trade) can last until ``t + purge_ms`` is dropped when ``t + purge_ms >= test start``.
  The gap counts towards it: with ``gap_ms >= purge_ms`` purging removes nothing more. Where outcomes are measured
  in bars and the series has holes, a bar-count horizon can last longer than any fixed time; ``split`` therefore
  also takes ``outcome_end`` (per sample, the open time of the last bar its outcome may use) and drops every
  training sample whose ``outcome_end >= test start``: exact, whatever the holes. For a strategy, purge at least
  its maximum holding time.
- **embargo** drops training samples that come right *after* a test window: those with
  ``test end <= t < test end + embargo_ms``, because their features (and serially correlated labels) carry
  information from that test period. In rolling and anchored walk-forward a later fold's train window contains the
  earlier folds' test windows; the embargo cuts the stretch after each of them out of that train window, leaving
  holes (:attr:`Window.exclude`). A fold's own test window always lies after its train window, so the embargo
  never touches the period just before a test.

The fixed ``gap`` (calendar time between the train window's end and the test window's start) is kept as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from pivotal.core.errors import UserInputError

DAY_MS = 86_400_000


@dataclass(frozen=True)
class Window:
    """Bars ``start <= i < end`` of a series, minus the ``exclude`` spans ``(a, b)`` (embargoed, ``a <= i < b``).

    For a strategy, signals must lie in the window; a trade runs to its natural exit, which may be after ``end``
    (the purge keeps such exits out of the next test window).
    """

    start: int
    end: int
    exclude: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise ValueError(f"window needs 0 <= start < end, got start={self.start} end={self.end}")
        for a, b in self.exclude:
            if not self.start <= a < b <= self.end:
                raise ValueError(f"excluded span [{a}, {b}) must lie inside the window [{self.start}, {self.end})")

    @property
    def bars(self) -> int:
        """Bars in the window, excluded spans not counted."""
        return self.end - self.start - sum(b - a for a, b in self.exclude)

    @property
    def segments(self) -> list[Window]:
        """The window's contiguous parts (itself when nothing is excluded)."""
        if not self.exclude:
            return [self]
        parts, cursor = [], self.start
        for a, b in self.exclude:
            if a > cursor:
                parts.append(Window(cursor, a))
            cursor = b
        if cursor < self.end:
            parts.append(Window(cursor, self.end))
        return parts

    def indices(self) -> np.ndarray:
        """Bar indices of the window, excluded spans removed."""
        return np.concatenate([np.arange(w.start, w.end, dtype=np.int64) for w in self.segments])


@dataclass(frozen=True)
class WalkForwardSpec:
    """Train/gap/test/step lengths, purge and embargo, all in epoch milliseconds."""

    train_ms: int = 90 * DAY_MS
    gap_ms: int = 7 * DAY_MS
    test_ms: int = 30 * DAY_MS
    step_ms: int | None = None  # None: roll by the test length, so test windows tile the series
    anchored: bool = False
    purge_ms: int = 0
    embargo_ms: int = 0

    def __post_init__(self) -> None:
        if self.train_ms <= 0 or self.test_ms <= 0 or self.gap_ms < 0 or (self.step_ms is not None and self.step_ms <= 0):
            raise UserInputError(
                f"walk-forward needs train > 0, test > 0, gap >= 0, step > 0 (days: {self.describe()}); fix --walk-forward"
            )
        if self.purge_ms < 0 or self.embargo_ms < 0:
            raise UserInputError(
                f"purge and embargo are durations >= 0; got purge {self.purge_ms} ms, embargo {self.embargo_ms} ms"
            )
        if self.purge_ms >= self.train_ms + self.gap_ms:
            raise UserInputError(
                f"purge {self.purge_ms / DAY_MS:g} d removes the whole train window (train {self.train_ms / DAY_MS:g} d + "
                f"gap {self.gap_ms / DAY_MS:g} d); lengthen TRAIN in --walk-forward or shorten --purge"
            )

    @classmethod
    def parse(cls, text: str, anchored: bool = False, purge_ms: int = 0, embargo_ms: int = 0) -> WalkForwardSpec:
        """'90/7/30' = train/gap/test in days (optionally '/step' as a fourth number)."""
        parts = text.split("/")
        try:
            days = [float(p) for p in parts]
        except ValueError:
            days = []
        if len(days) not in (3, 4):
            raise UserInputError(f"walk-forward {text!r}: expected TRAIN/GAP/TEST[/STEP] in days, e.g. 90/7/30")
        step = int(days[3] * DAY_MS) if len(days) == 4 else None
        return cls(int(days[0] * DAY_MS), int(days[1] * DAY_MS), int(days[2] * DAY_MS), step, anchored, purge_ms, embargo_ms)

    @property
    def step(self) -> int:
        return self.step_ms if self.step_ms is not None else self.test_ms

    def with_purge(self, purge_ms: int) -> WalkForwardSpec:
        return replace(self, purge_ms=purge_ms)

    def describe(self) -> str:
        step = f"/{self.step_ms / DAY_MS:g}" if self.step_ms is not None else ""
        return f"{self.train_ms / DAY_MS:g}/{self.gap_ms / DAY_MS:g}/{self.test_ms / DAY_MS:g}{step}"


@dataclass(frozen=True)
class Fold:
    number: int
    train: Window
    test: Window


def split(ts: np.ndarray, spec: WalkForwardSpec, outcome_end: np.ndarray | None = None) -> list[Fold]:
    """Folds whose whole test period lies inside the series (``ts`` sorted, epoch ms bar open times).

    ``outcome_end`` (optional, one per bar, non-decreasing): the open time of the last bar whose data the outcome of
    a sample at that bar may use (for a strategy holding at most H bars: ``ts[min(i + H, n - 1)]``). Training
    samples whose outcome reaches the test window are purged on top of ``spec.purge_ms``.
    """
    ts = np.asarray(ts, dtype=np.int64)
    if len(ts) < 2:
        raise UserInputError("walk-forward needs at least two bars")
    ends = None
    if outcome_end is not None:
        ends = np.asarray(outcome_end, dtype=np.int64)
        if ends.shape != ts.shape or np.any(np.diff(ends) < 0) or np.any(ends < ts):
            raise ValueError("outcome_end needs one non-decreasing time >= the bar's own time per bar")
    bar = int(np.diff(ts).min())
    first, end_of_data = int(ts[0]), int(ts[-1]) + bar
    folds: list[Fold] = []
    tests_ms: list[int] = []  # end times of the test windows so far (for the embargo)
    k = 0
    while True:
        train_end = first + spec.train_ms + k * spec.step
        train_start = first if spec.anchored else first + k * spec.step
        test_start = train_end + spec.gap_ms
        test_end = test_start + spec.test_ms
        if test_end > end_of_data:
            break
        cut = min(train_end, test_start - spec.purge_ms)  # purge: keep samples with t + purge < test start
        i0, i1, j0, j1 = np.searchsorted(ts, [train_start, cut, test_start, test_end]).tolist()
        if ends is not None:
            i1 = min(i1, int(np.searchsorted(ends, test_start)))  # outcome known before the test starts
        holes = _embargo(ts, tests_ms, spec.embargo_ms, i0, i1)
        if i0 < i1 and j0 < j1 and sum(b - a for a, b in holes) < i1 - i0:
            folds.append(Fold(len(folds), Window(i0, i1, holes), Window(j0, j1)))
            tests_ms.append(test_end)
        k += 1
    if not folds:
        days = (end_of_data - first) / DAY_MS
        need = (spec.train_ms + spec.gap_ms + spec.test_ms) / DAY_MS
        raise UserInputError(
            f"series spans {days:.1f} days; walk-forward needs at least train+gap+test = {need:.1f} days"
            + (" with train samples left after the purge" if spec.purge_ms or ends is not None else "")
        )
    return folds


def _embargo(ts: np.ndarray, test_ends: list[int], embargo_ms: int, i0: int, i1: int) -> tuple[tuple[int, int], ...]:
    """Index spans of [i0, i1) that lie within ``embargo_ms`` after one of the earlier test windows (merged, sorted)."""
    if embargo_ms <= 0 or i0 >= i1:
        return ()
    spans: list[tuple[int, int]] = []
    for end in test_ends:
        a, b = np.searchsorted(ts, [end, end + embargo_ms]).tolist()
        a, b = max(a, i0), min(b, i1)
        if a < b:
            if spans and a <= spans[-1][1]:
                spans[-1] = (spans[-1][0], max(b, spans[-1][1]))
            else:
                spans.append((a, b))
    return tuple(spans)


def holding_end(ts: np.ndarray, max_hold_bars: int) -> np.ndarray:
    """``outcome_end`` for a strategy that holds a position at most ``max_hold_bars`` bars after its signal bar:
    the open time of bar ``i + max_hold_bars`` (the last bar, at the series' end)."""
    ts = np.asarray(ts, dtype=np.int64)
    idx = np.minimum(np.arange(len(ts)) + int(max_hold_bars), len(ts) - 1)
    return ts[idx]


_UNITS_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": DAY_MS, "w": 7 * DAY_MS}


def parse_duration(text: str, option: str = "duration") -> int:
    """'50d', '12h', '90m', '30s', '2w' or a plain number of days (as in --walk-forward) -> milliseconds."""
    raw = text.strip().lower()
    unit = raw[-1] if raw and raw[-1] in _UNITS_MS else "d"
    number = raw[:-1] if raw and raw[-1] in _UNITS_MS else raw
    try:
        value = float(number)
    except ValueError:
        value = math.nan
    if not value >= 0 or math.isinf(value):
        raise UserInputError(f"{option} {text!r}: expected a duration >= 0 such as 50d, 12h, 90m or a number of days")
    return round(value * _UNITS_MS[unit])


def format_duration(ms: int) -> str:
    """Milliseconds as the largest whole unit (``51d``, ``204h``), else days with decimals."""
    for unit in ("d", "h", "m", "s"):
        if ms and ms % _UNITS_MS[unit] == 0:
            return f"{ms // _UNITS_MS[unit]}{unit}"
    return f"{ms / DAY_MS:g}d"
