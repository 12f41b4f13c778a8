"""Standard (floor) pivot points from completed higher-timeframe bars, mapped causally onto lower-timeframe bars.

``P = (H+L+C)/3``, ``R1 = 2P-L``, ``S1 = 2P-H``, ``R2 = P+(H-L)``, ``S2 = P-(H-L)``, ``R3 = H+2(P-L)``,
``S3 = L-2(H-P)``. A lower bar opening at ``ts`` sees the levels of the last higher bar that *closed* at or before
``ts`` (close time = open time + timeframe), never those of the higher bar it is part of.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pivotal.core.timeframes import timeframe_ms
from pivotal.data.candles import Candles
from pivotal.data.resample import resample

LEVEL_NAMES = ("p", "r1", "r2", "r3", "s1", "s2", "s3")


@dataclass(frozen=True)
class FloorPivots:
    """One value per bar for each level; ``source`` is the position of the higher bar used (-1: none closed yet)."""

    p: np.ndarray
    r1: np.ndarray
    r2: np.ndarray
    r3: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    s3: np.ndarray
    source: np.ndarray

    def as_dict(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in LEVEL_NAMES}


def floor_levels(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> FloorPivots:
    """Levels computed from each bar itself (``source`` = its own position)."""
    h, lo, c = (np.asarray(a, dtype=np.float64) for a in (high, low, close))
    if not len(h) == len(lo) == len(c):
        raise ValueError(f"high, low and close must have the same length (got {len(h)}, {len(lo)}, {len(c)})")
    p = (h + lo + c) / 3.0
    rng = h - lo
    return FloorPivots(
        p=p,
        r1=2.0 * p - lo,
        r2=p + rng,
        r3=h + 2.0 * (p - lo),
        s1=2.0 * p - h,
        s2=p - rng,
        s3=lo - 2.0 * (h - p),
        source=np.arange(len(p), dtype=np.int64),
    )


def map_floor_pivots(
    lower_ts: np.ndarray,
    higher_ts: np.ndarray,
    higher_tf_ms: int,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
) -> FloorPivots:
    """Floor pivots of the higher bars (open times ``higher_ts``, sorted) for every lower bar opening at ``lower_ts``.

    NaN (and ``source`` -1) for lower bars that open before the first higher bar has closed.
    """
    if higher_tf_ms <= 0:
        raise ValueError(f"higher_tf_ms must be positive (got {higher_tf_ms})")
    higher_ts = np.asarray(higher_ts, dtype=np.int64)
    if len(higher_ts) > 1 and np.any(np.diff(higher_ts) <= 0):
        raise ValueError("higher_ts must be strictly increasing (sorted, no duplicate bars)")
    levels = floor_levels(high, low, close)
    if len(higher_ts) != len(levels.p):
        raise ValueError(f"higher_ts has {len(higher_ts)} rows, the price arrays {len(levels.p)}")
    close_ts = higher_ts + higher_tf_ms
    source = np.searchsorted(close_ts, np.asarray(lower_ts, dtype=np.int64), side="right") - 1
    known = source >= 0
    mapped = {}
    for name in LEVEL_NAMES:
        out = np.full(len(source), np.nan)
        out[known] = getattr(levels, name)[source[known]]
        mapped[name] = out
    return FloorPivots(**mapped, source=source.astype(np.int64))


def floor_pivots_from_lower(candles: Candles, higher_timeframe: str) -> FloorPivots:
    """Floor pivots of ``higher_timeframe`` bars aggregated from ``candles`` themselves, mapped back causally.

    Only complete higher bars count (``data.resample``): after a hole in the data, bars keep seeing the levels of the
    last complete higher bar, exactly as they would with a stored higher-timeframe series that lacks that bar.
    """
    higher, _ = resample(candles, higher_timeframe)
    return map_floor_pivots(candles.ts, higher.ts, timeframe_ms(higher_timeframe), higher.high, higher.low, higher.close)
