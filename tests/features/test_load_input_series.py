"""Filling a coarser window from the base timeframe where the store does not cover it (issue #8), on tiny series."""

from __future__ import annotations

import numpy as np
import pytest

from pivotal.data.candles import Candles
from pivotal.features.assemble import base_timeframes, fill_from_base, load_input_series
from pivotal.features.input_spec import InputSpec, WindowSpec

pytestmark = pytest.mark.unit
H = 3_600_000
D = 24 * H


def hourly(hours: int, start: int = 0, skip: tuple[int, ...] = ()) -> Candles:
    """``hours`` hourly bars from ``start`` (ms); bar i opens at 100 + i, high +1, low -1, close +0.5, volume 1."""
    idx = np.array([i for i in range(hours) if i not in skip], np.int64)
    price = 100.0 + idx
    return Candles(start + idx * H, price, price + 1, price - 1, price + 0.5, np.ones(len(idx)), "x", "A/B", "1h")


def daily(days: list[int], close: float = 7.0) -> Candles:
    ts = np.array(days, np.int64) * D
    ones = np.full(len(days), close)
    return Candles(ts, ones, ones + 1, ones - 1, ones, ones, "x", "A/B", "1d")


def test_stored_bars_are_kept_and_missing_days_come_from_complete_hourly_buckets() -> None:
    base = hourly(4 * 24, skip=(30,))  # day 1 lacks one hour: incomplete, never aggregated
    stored = daily([0])  # the store has day 0 only (a made-up bar that differs from the hourly aggregate)
    out = fill_from_base(stored, base, "1d")
    assert out.ts.tolist() == [0, 2 * D, 3 * D]
    assert out.close.tolist() == [7.0, 100 + 71 + 0.5, 100 + 95 + 0.5]  # stored as is; then the last hour's close
    assert out.open.tolist() == [7.0, 148.0, 172.0] and out.high.tolist() == [8.0, 172.0, 196.0]
    assert out.volume.tolist() == [7.0, 24.0, 24.0] and out.timeframe == "1d"


def test_nothing_stored_gives_the_aggregate_and_no_base_gives_the_store() -> None:
    base = hourly(48)
    assert fill_from_base(Candles.empty("x", "A/B", "1d"), base, "1d").ts.tolist() == [0, D]
    assert fill_from_base(daily([5]), Candles.empty("x", "A/B", "1h"), "1d").ts.tolist() == [5 * D]


def test_an_off_grid_stored_bar_blocks_the_buckets_it_overlaps() -> None:
    stored = Candles(np.array([D + 12 * H]), *([np.array([1.0])] * 5), "x", "A/B", "1d")  # opens at noon
    out = fill_from_base(stored, hourly(4 * 24), "1d")
    assert out.ts.tolist() == [0, D + 12 * H, 3 * D]  # days 1 and 2 overlap the stored bar


def test_load_input_series_fills_coarser_windows_of_each_symbol_from_its_finest() -> None:
    spec = InputSpec((WindowSpec("1h", 5), WindowSpec("4h", 5), WindowSpec("1h", 5, "C/D")), min_bars=1)
    assert base_timeframes(spec, "A/B") == {"A/B": "1h", "C/D": "1h"}
    provided = {("A/B", "1h"): hourly(24), ("C/D", "1h"): hourly(8)}
    out = load_input_series(None, "x", "A/B", spec, provided)
    assert sorted(out) == [("A/B", "1h"), ("A/B", "4h"), ("C/D", "1h")]
    assert out[("A/B", "4h")].ts.tolist() == [i * 4 * H for i in range(6)]
    spec_missing = InputSpec((WindowSpec("1h", 5), WindowSpec("1d", 5)), min_bars=1)
    assert ("A/B", "1d") not in load_input_series(None, "x", "A/B", spec_missing, {("A/B", "1h"): hourly(20)})
