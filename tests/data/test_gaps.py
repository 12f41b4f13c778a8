"""The gap ledger as a pure function: hand vectors and a brute-force property."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from pivotal.data.gaps import find_gaps, missing_bars
from pivotal.data.store import Gap

M = 60_000


def test_hand_vector() -> None:
    ts = np.array([0, 1, 2, 5, 6, 10]) * M
    assert find_gaps(ts, "1m") == [Gap(3 * M, 5 * M, 2), Gap(7 * M, 10 * M, 3)]
    assert missing_bars(0, 10 * M, 6, "1m") == 5


def test_no_gaps_for_short_or_contiguous_series() -> None:
    assert find_gaps(np.array([], np.int64), "1h") == []
    assert find_gaps(np.array([0]), "1h") == []
    assert find_gaps(np.arange(5) * 3_600_000, "1h") == []


@given(st.sets(st.integers(0, 500), min_size=1, max_size=200))
def test_gaps_cover_exactly_the_absent_bars(present: set[int]) -> None:
    minutes = np.array(sorted(present), dtype=np.int64)
    gaps = find_gaps(minutes * M, "1m")
    absent = set(range(int(minutes[0]), int(minutes[-1]) + 1)) - present
    covered = {m for gap in gaps for m in range(gap.start // M, gap.end // M)}
    assert covered == absent
    assert (
        sum(g.missing for g in gaps) == len(absent) == missing_bars(int(minutes[0]) * M, int(minutes[-1]) * M, len(minutes), "1m")
    )
    assert all(g.end // M in present and (g.start // M - 1) in present for g in gaps)
