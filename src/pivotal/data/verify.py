"""Invariants of one stored candle series, checked on its bars (``pivotal data verify``).

Validation keeps bad rows out of every write; these checks find what got in anyway (files of earlier releases, a
bug, SQL run by hand): duplicate or unsorted open times, times off the timeframe grid or outside the sane range,
non-finite or non-positive prices, OHLC bodies outside high/low, negative volume, and a gap ledger (the coverage
``data info`` reports) that disagrees with the bars.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from pivotal.data.alignment import is_aligned
from pivotal.data.candles import Candles
from pivotal.data.gaps import find_gaps, missing_bars
from pivotal.data.store import Problem, SeriesInfo
from pivotal.data.validation import sane_time_range


def _when(ms: int) -> str:
    try:
        return f"{datetime.fromtimestamp(ms / 1000, UTC):%Y-%m-%d %H:%M:%S} UTC ({ms})"
    except (OverflowError, OSError, ValueError):
        return f"ts {ms}"


def check_series(candles: Candles, info: SeriesInfo | None = None, now_ms: int | None = None) -> list[Problem]:
    """Every broken invariant of ``candles`` (bars as stored, in read order); ``info``: the ledger to compare."""
    key = (candles.exchange, candles.symbol, candles.timeframe)
    problems: list[Problem] = []

    def report(mask: np.ndarray, check: str, describe: object) -> None:
        hits = np.flatnonzero(mask)
        if len(hits):
            first = int(hits[0])
            example = describe(first) if callable(describe) else str(describe)
            problems.append(Problem(*key, check, len(hits), example))

    ts = np.asarray(candles.ts, dtype=np.int64)
    if len(ts) == 0:
        return problems
    step = np.diff(ts)
    report(step < 0, "open times not sorted", lambda i: _when(int(ts[i + 1])))
    report(step == 0, "duplicate open times", lambda i: _when(int(ts[i + 1])))
    report(~is_aligned(ts, candles.timeframe), f"open times off the {candles.timeframe} grid", lambda i: _when(int(ts[i])))
    lo, hi = sane_time_range(now_ms)
    report((ts < lo) | (ts > hi), "open times outside 2009-01-01 .. now + 1 day", lambda i: _when(int(ts[i])))
    prices = {name: np.asarray(getattr(candles, name), dtype=np.float64) for name in ("open", "high", "low", "close")}
    for name, values in prices.items():
        bad = ~np.isfinite(values) | (values <= 0)
        report(bad, f"{name} not a finite price > 0", lambda i, v=values: f"{_when(int(ts[i]))}: {float(v[i])!r}")
    body_low = np.minimum(prices["open"], prices["close"])
    body_high = np.maximum(prices["open"], prices["close"])
    report(prices["low"] > body_low, "low above open or close", lambda i: f"{_when(int(ts[i]))}: low {float(prices['low'][i])!r}")
    report(
        prices["high"] < body_high,
        "high below open or close",
        lambda i: f"{_when(int(ts[i]))}: high {float(prices['high'][i])!r}",
    )
    volume = np.asarray(candles.volume, dtype=np.float64)
    report(~np.isfinite(volume) | (volume < 0), "volume not finite >= 0", lambda i: f"{_when(int(ts[i]))}: {float(volume[i])!r}")
    if info is not None:
        problems.extend(_ledger(candles, info, ts))
    return problems


def _ledger(candles: Candles, info: SeriesInfo, ts: np.ndarray) -> list[Problem]:
    """The coverage ``data info`` shows (rows, gaps, missing bars) must equal what the distinct bars give."""
    unique = np.unique(ts)
    gaps = find_gaps(unique, candles.timeframe)
    expected = (len(unique), len(gaps), missing_bars(int(unique[0]), int(unique[-1]), len(unique), candles.timeframe))
    shown = (info.rows, info.gaps, info.missing_bars)
    if shown == expected:
        return []
    example = f"ledger says rows/gaps/missing {shown[0]}/{shown[1]}/{shown[2]}, distinct bars give {'/'.join(map(str, expected))}"
    return [
        Problem(
            candles.exchange, candles.symbol, candles.timeframe, "gap ledger inconsistent", abs(shown[0] - expected[0]), example
        )
    ]
