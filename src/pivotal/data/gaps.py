"""Gap ledger: the missing bars between stored bars of one series."""

from __future__ import annotations

import numpy as np

from pivotal.core.timeframes import timeframe_ms
from pivotal.data.store import Gap


def find_gaps(ts: np.ndarray, timeframe: str) -> list[Gap]:
    """Missing spans of a sorted, grid-aligned open-time array: one ``Gap`` per hole between stored bars."""
    step = timeframe_ms(timeframe)
    ts = np.asarray(ts, dtype=np.int64)
    if len(ts) < 2:
        return []
    jumps = np.diff(ts)
    holes = np.flatnonzero(jumps > step)
    starts = ts[holes] + step
    ends = ts[holes + 1]
    missing = jumps[holes] // step - 1
    return [Gap(int(s), int(e), int(m)) for s, e, m in zip(starts, ends, missing, strict=True)]


def missing_bars(first_ts: int, last_ts: int, rows: int, timeframe: str) -> int:
    """Bars absent between the first and last stored bar."""
    return (last_ts - first_ts) // timeframe_ms(timeframe) + 1 - rows
