"""The walk-forward splitter: rolling, anchored, purge and embargo in time (López de Prado), windows with holes."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pivotal.core.errors import UserInputError
from pivotal.validation.walkforward import (
    DAY_MS,
    WalkForwardSpec,
    Window,
    format_duration,
    holding_end,
    parse_duration,
    split,
)

pytestmark = pytest.mark.unit

HOUR_MS = 3_600_000
T0 = 1_577_836_800_000  # 2020-01-01
DAY_BARS = 24


def hourly(days: int) -> np.ndarray:
    return T0 + np.arange(days * DAY_BARS, dtype=np.int64) * HOUR_MS


def spans(folds: list) -> list[tuple[int, int, int, int]]:
    return [(f.train.start, f.train.end, f.test.start, f.test.end) for f in folds]


def test_validation_imports_without_optuna_or_ray() -> None:
    code = (
        "import sys; sys.modules['optuna'] = None; sys.modules['ray'] = None\n"
        "import pivotal.validation, pivotal.validation.walkforward, pivotal.validation.significance\n"
        "assert 'pivotal.optimize' not in sys.modules, sorted(m for m in sys.modules if m.startswith('pivotal'))\n"
        "print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_default_is_90_7_30_rolling_by_the_test_length() -> None:
    # 200 days: folds start at day 0, 30 and 60 (the fourth would test days 187..217 > 200)
    assert spans(split(hourly(200), WalkForwardSpec())) == [
        (0, 90 * DAY_BARS, 97 * DAY_BARS, 127 * DAY_BARS),
        (30 * DAY_BARS, 120 * DAY_BARS, 127 * DAY_BARS, 157 * DAY_BARS),
        (60 * DAY_BARS, 150 * DAY_BARS, 157 * DAY_BARS, 187 * DAY_BARS),
    ]


def test_anchored_train_windows_start_at_the_first_bar_and_grow() -> None:
    folds = split(hourly(200), WalkForwardSpec(anchored=True))
    assert [f.train.start for f in folds] == [0, 0, 0]
    assert [f.train.end for f in folds] == [90 * DAY_BARS, 120 * DAY_BARS, 150 * DAY_BARS]


def test_parse_days_and_errors() -> None:
    spec = WalkForwardSpec.parse("60/2/14/7", anchored=True, purge_ms=3 * DAY_MS, embargo_ms=DAY_MS)
    assert (spec.train_ms, spec.gap_ms, spec.test_ms, spec.step, spec.anchored, spec.purge_ms, spec.embargo_ms) == (
        60 * DAY_MS,
        2 * DAY_MS,
        14 * DAY_MS,
        7 * DAY_MS,
        True,
        3 * DAY_MS,
        DAY_MS,
    )
    with pytest.raises(UserInputError, match="expected TRAIN/GAP/TEST"):
        WalkForwardSpec.parse("90-7-30")
    with pytest.raises(UserInputError, match=r"series spans 50\.0 days; walk-forward needs at least .* = 127\.0 days"):
        split(hourly(50), WalkForwardSpec())
    with pytest.raises(UserInputError, match="purge and embargo are durations >= 0"):
        WalkForwardSpec(purge_ms=-1)
    with pytest.raises(UserInputError) as info:
        WalkForwardSpec(purge_ms=97 * DAY_MS)
    assert str(info.value) == (
        "purge 97 d removes the whole train window (train 90 d + gap 7 d); lengthen TRAIN in --walk-forward or shorten --purge"
    )


def test_missing_bars_map_to_the_next_stored_bar() -> None:
    ts = hourly(140)
    ts = np.delete(ts, np.arange(90 * DAY_BARS, 98 * DAY_BARS))  # days 90..97 missing (includes the test start)
    fold = split(ts, WalkForwardSpec())[0]
    assert ts[fold.test.start] == T0 + 98 * DAY_MS
    assert fold.train.end == 90 * DAY_BARS


def test_purge_is_time_before_the_test_start_and_the_gap_counts_towards_it() -> None:
    purged = split(hourly(200), WalkForwardSpec(purge_ms=10 * DAY_MS))
    # test starts at day 97; a sample at t survives when t + 10 d < day 97, i.e. t < day 87
    assert spans(purged)[0] == (0, 87 * DAY_BARS, 97 * DAY_BARS, 127 * DAY_BARS)
    assert spans(split(hourly(200), WalkForwardSpec(purge_ms=7 * DAY_MS))) == spans(split(hourly(200), WalkForwardSpec()))
    assert spans(split(hourly(200), WalkForwardSpec(purge_ms=5 * HOUR_MS))) == spans(split(hourly(200), WalkForwardSpec()))


def test_outcome_end_purges_exactly_across_holes_in_the_data() -> None:
    """A 2-day (48-bar) hold with a 10-day hole just before the test: 48 bars then last 12 days, not 2."""
    ts = np.delete(hourly(200), np.arange(85 * DAY_BARS, 95 * DAY_BARS))  # days 85..94 missing
    spec = WalkForwardSpec(90 * DAY_MS, 0, 30 * DAY_MS)
    by_time = split(ts, WalkForwardSpec(90 * DAY_MS, 0, 30 * DAY_MS, purge_ms=2 * DAY_MS))[0]
    exact = split(ts, spec, holding_end(ts, 48))[0]
    assert exact.test.start == by_time.test.start == 85 * DAY_BARS  # the first bar at or after day 90 is day 95's
    assert by_time.train.end == 85 * DAY_BARS  # every stored bar before the hole is older than day 88
    assert exact.train.end == 85 * DAY_BARS - 48  # a signal at bar i holds until bar i + 48
    last = exact.train.end - 1
    assert last + 48 < exact.test.start and by_time.train.end - 1 + 48 >= by_time.test.start


def test_holding_end_is_the_open_time_of_the_last_held_bar() -> None:
    ts = np.array([0, 10, 20, 50, 60], dtype=np.int64)
    assert holding_end(ts, 2).tolist() == [20, 50, 60, 60, 60]
    with pytest.raises(ValueError, match="non-decreasing"):
        split(ts, WalkForwardSpec(20, 0, 10), outcome_end=ts[::-1].copy())


def test_embargo_drops_training_samples_right_after_an_earlier_test_window() -> None:
    folds = split(hourly(200), WalkForwardSpec(embargo_ms=3 * DAY_MS))
    # fold 0 tests days 97..127; fold 2 trains on days 60..150, so days 127..130 are embargoed out of it
    assert [f.train.exclude for f in folds] == [(), (), ((127 * DAY_BARS, 130 * DAY_BARS),)]
    assert spans(folds) == spans(split(hourly(200), WalkForwardSpec()))
    anchored = split(hourly(230), WalkForwardSpec(anchored=True, embargo_ms=3 * DAY_MS))
    assert anchored[3].train.exclude == ((127 * DAY_BARS, 130 * DAY_BARS), (157 * DAY_BARS, 160 * DAY_BARS))
    train = anchored[3].train
    assert train.bars == 180 * DAY_BARS - 6 * DAY_BARS
    assert [(w.start, w.end) for w in train.segments] == [(0, 127 * DAY_BARS), (130 * DAY_BARS, 157 * DAY_BARS),
                                                          (160 * DAY_BARS, 180 * DAY_BARS)]  # fmt: skip
    assert np.array_equal(train.indices(), np.concatenate([np.arange(w.start, w.end) for w in train.segments]))


def test_window_rejects_holes_outside_it() -> None:
    assert Window(0, 10).segments == [Window(0, 10)]
    assert Window(0, 10, ((0, 3),)).segments == [Window(3, 10)]
    with pytest.raises(ValueError, match=r"excluded span \[8, 12\) must lie inside the window \[0, 10\)"):
        Window(0, 10, ((8, 12),))


def test_durations() -> None:
    assert parse_duration("50d") == 50 * DAY_MS
    assert parse_duration("12h") == 12 * HOUR_MS
    assert parse_duration("1.5") == 36 * HOUR_MS  # a plain number is days, as in --walk-forward
    assert parse_duration("2w") == 14 * DAY_MS
    assert parse_duration("90m") == 90 * 60_000
    with pytest.raises(UserInputError, match=r"--purge 'x': expected a duration >= 0"):
        parse_duration("x", "--purge")
    with pytest.raises(UserInputError):
        parse_duration("-1d")
    assert [format_duration(v) for v in (50 * DAY_MS, 204 * HOUR_MS, 90 * 60_000, 0)] == ["50d", "204h", "90m", "0d"]


@given(
    st.integers(60, 400),
    st.integers(5, 60),
    st.integers(0, 10),
    st.integers(3, 40),
    st.booleans(),
    st.integers(0, 96),
    st.integers(0, 96),
    st.integers(0, 60),
)
@settings(max_examples=80, deadline=None)
def test_folds_never_leak(
    days: int, train: int, gap: int, test: int, anchored: bool, purge_h: int, embargo_h: int, hold: int
) -> None:
    """No kept training sample's outcome (purge in time, or a ``hold``-bar horizon) reaches its test window; none
    lies within the embargo after an earlier test window; test windows are disjoint and in time order."""
    ts = hourly(days)
    purge, embargo = purge_h * HOUR_MS, embargo_h * HOUR_MS
    try:
        spec = WalkForwardSpec(train * DAY_MS, gap * DAY_MS, test * DAY_MS, anchored=anchored, purge_ms=purge, embargo_ms=embargo)
        folds = split(ts, spec, holding_end(ts, hold))
    except UserInputError:
        assert days < train + gap + test
        return
    for k, fold in enumerate(folds):
        kept = fold.train.indices()
        test_start = int(ts[fold.test.start])
        assert np.all(ts[kept] + purge < test_start)
        assert np.all(np.minimum(kept + hold, len(ts) - 1) < fold.test.start)
        assert test_start - int(ts[kept[-1]]) >= gap * DAY_MS + HOUR_MS
        for earlier in folds[:k]:
            end = int(ts[earlier.test.end - 1]) + HOUR_MS
            assert not np.any((ts[kept] >= end) & (ts[kept] < end + embargo))
    for a, b in itertools.pairwise(folds):
        assert a.test.start < b.test.start
        assert a.test.end <= b.test.start  # rolling by the test length: test windows tile, never overlap
