"""Property tests of spec A.10 (1-6) plus state save/restore, against a naive reference written from the spec text."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pivotal.structure.incremental import WilliamsMarketStructure, run_incremental
from pivotal.structure.pivots import wms_batch, wms_events
from pivotal.structure.types import PivotParams, PivotSet

Bars = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # open, high, low, close


# --- naive O(n*k) reference, transcribed from spec A.3 ------------------------------------------------------------
def naive_sel(x: list[float], w: int, tie: str) -> list[int]:
    def beats_left(a: float, b: float) -> bool:
        return a >= b if tie == "last" else a > b

    def beats_right(a: float, b: float) -> bool:
        return a >= b if tie == "first" else a > b

    return [
        j
        for j in range(w, len(x) - w)
        if all(beats_left(x[j], x[j - d]) and beats_right(x[j], x[j + d]) for d in range(1, w + 1))
    ]


def naive_effective(high: list[float], low: list[float], skip: bool) -> list[int]:
    if not skip or not high:
        return list(range(len(high)))
    eff, mother = [0], 0
    for t in range(1, len(high)):
        if not (high[t] < high[mother] and low[t] > low[mother]):
            eff.append(t)
            mother = t
    return eff


def naive_wms(high: list[float], low: list[float], p: PivotParams) -> dict[tuple[int, str], list[tuple[int, float, int]]]:
    eff = naive_effective(high, low, p.skip_inside)
    out = {}
    for kind, sign, prices in (("H", 1.0, high), ("L", -1.0, low)):
        x = [sign * prices[t] for t in eff]
        cur = [(eff[j], prices[eff[j]], eff[j + p.k]) for j in naive_sel(x, p.k, p.tie)]
        out[(1, kind)] = cur
        for lvl in range(2, p.levels + 1):
            v = [sign * piv[1] for piv in cur]
            cur = [(cur[j][0], cur[j][1], cur[j + p.m][2]) for j in naive_sel(v, p.m, p.tie)]
            out[(lvl, kind)] = cur
    return out


# --- strategies ---------------------------------------------------------------------------------------------------
def _bars_from(high: np.ndarray, spread: np.ndarray, o_frac: np.ndarray, c_frac: np.ndarray) -> Bars:
    low = high - spread
    return (low + np.round(o_frac * spread), high, low, low + np.round(c_frac * spread))


@st.composite
def small_tick_bars(draw: st.DrawFn) -> Bars:
    """Few distinct integer prices, so ties, plateaus, inside and outside bars are frequent."""
    n = draw(st.integers(0, 60))
    ints = st.lists(st.integers(0, 10), min_size=n, max_size=n)
    high = np.array(draw(ints), float)
    spread = np.array(draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)), float)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return _bars_from(high, spread, rng.random(n), rng.random(n))


@st.composite
def random_walk_bars(draw: st.DrawFn) -> Bars:
    """Integer-tick random walk long enough to reach levels 3-5."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(50, 600))
    high = 1000.0 + np.cumsum(rng.integers(-8, 9, n)).astype(float)
    return _bars_from(high, rng.integers(0, 5, n).astype(float), rng.random(n), rng.random(n))


series = st.one_of(small_tick_bars(), random_walk_bars())
params_st = st.builds(
    PivotParams,
    k=st.integers(1, 4),
    m=st.integers(1, 2),
    levels=st.integers(1, 5),
    tie=st.sampled_from(["first", "last", "strict"]),
    skip_inside=st.booleans(),
)


def as_dict(pivots: PivotSet) -> dict[tuple[int, str], list[tuple[int, float, int]]]:
    return {(lvl, kind): pivots.get(lvl, kind).as_tuples() for lvl in range(1, len(pivots.highs) + 1) for kind in "HL"}


# --- A.10 -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("skip_inside", [False, True])
@pytest.mark.parametrize("m", [1, 2])
@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("tie", ["first", "last", "strict"])
def test_every_option_combination_agrees_on_a_tie_rich_walk(tie: str, k: int, m: int, skip_inside: bool) -> None:
    """Deterministic sweep of all 48 combinations (hypothesis below samples them with more varied series)."""
    rng = np.random.default_rng(7)
    n = 4000
    high = 100.0 + np.cumsum(rng.integers(-3, 4, n)).astype(float)  # small steps: many equal highs and lows
    o, h, lo, c = _bars_from(high, rng.integers(0, 4, n).astype(float), rng.random(n), rng.random(n))
    params = PivotParams(k=k, m=m, levels=5, tie=tie, skip_inside=skip_inside)
    batch = wms_batch(high=h, low=lo, open=o, close=c, params=params)
    assert as_dict(batch) == naive_wms(h.tolist(), lo.tolist(), params)
    assert as_dict(run_incremental(open=o, high=h, low=lo, close=c, params=params)) == as_dict(batch)
    assert len(batch.get(2, "H")) > 0 and len(batch.get(2, "L")) > 0 and len(batch.get(3, "H")) + len(batch.get(3, "L")) > 0


@settings(max_examples=150, deadline=None)
@given(bars=series, params=params_st)
def test_batch_equals_incremental_equals_naive_reference(bars: Bars, params: PivotParams) -> None:
    o, h, lo, c = bars
    batch = wms_batch(high=h, low=lo, open=o, close=c, params=params)
    assert as_dict(batch) == naive_wms(h.tolist(), lo.tolist(), params)
    assert as_dict(run_incremental(open=o, high=h, low=lo, close=c, params=params)) == as_dict(batch)


@settings(max_examples=60, deadline=None)
@given(bars=series, params=params_st)
def test_incremental_events_come_in_batch_event_order(bars: Bars, params: PivotParams) -> None:
    o, h, lo, c = bars
    detector = WilliamsMarketStructure(params)
    streamed = [e for i in range(len(h)) for e in detector.on_bar(i, o[i], h[i], lo[i], c[i])]
    assert streamed == wms_events(wms_batch(high=h, low=lo, open=o, close=c, params=params), o, c)


@settings(max_examples=40, deadline=None)
@given(bars=series, params=params_st, data=st.data())
def test_no_repaint_prefix_equals_known_part_of_full_run(bars: Bars, params: PivotParams, data: st.DataObject) -> None:
    o, h, lo, c = bars
    full = wms_batch(high=h, low=lo, open=o, close=c, params=params)
    n = len(h)
    cuts = range(n) if n <= 80 else data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=40))
    for t in cuts:
        prefix = wms_batch(high=h[: t + 1], low=lo[: t + 1], open=o[: t + 1], close=c[: t + 1], params=params)
        assert as_dict(prefix) == as_dict(full.known_at(t)), f"rewrite at t={t}"


@settings(max_examples=80, deadline=None)
@given(bars=series, params=params_st)
def test_lag_spacing_and_nesting(bars: Bars, params: PivotParams) -> None:
    o, h, lo, c = bars
    result = wms_batch(high=h, low=lo, open=o, close=c, params=params)
    for kind in "HL":
        level1 = result.get(1, kind)
        if not params.skip_inside:
            assert np.all(level1.confirmed_at - level1.index == params.k)
        else:
            assert np.all(level1.confirmed_at - level1.index >= params.k)
        if params.tie == "first":
            assert np.all(np.diff(level1.index) >= params.k + 1)
        for lvl in range(2, params.levels + 1):
            upper, lower = result.get(lvl, kind), result.get(lvl - 1, kind)
            assert set(upper.index.tolist()) <= set(lower.index.tolist())
            assert np.all(np.diff(upper.confirmed_at) > 0)
            assert np.all(upper.confirmed_at >= upper.index + params.k)


@settings(max_examples=80, deadline=None)
@given(bars=series, params=params_st)
def test_mirror_symmetry_swaps_highs_and_lows(bars: Bars, params: PivotParams) -> None:
    o, h, lo, c = bars
    result = wms_batch(high=h, low=lo, open=o, close=c, params=params)
    mirrored = wms_batch(high=-lo, low=-h, open=-o, close=-c, params=params)
    for lvl in range(1, params.levels + 1):
        for kind, other in (("H", "L"), ("L", "H")):
            a, b = result.get(lvl, kind), mirrored.get(lvl, other)
            assert np.array_equal(a.index, b.index) and np.array_equal(a.confirmed_at, b.confirmed_at)
            assert np.array_equal(a.price, -b.price)


@settings(max_examples=80, deadline=None)
@given(bars=series, params=params_st, data=st.data())
def test_restored_detector_continues_exactly(bars: Bars, params: PivotParams, data: st.DataObject) -> None:
    o, h, lo, c = bars
    n = len(h)
    cut = data.draw(st.integers(0, n))
    ts = 1_600_000_000_000 + 60_000 * np.arange(n)
    whole = WilliamsMarketStructure(params, history=4)
    first = WilliamsMarketStructure(params, history=4)
    events_whole, events_split = [], []
    for i in range(n):
        bar = (i, o[i], h[i], lo[i], c[i], ts[i], ts[i] + 60_000)  # numpy scalars: state() must still be plain JSON
        events_whole += whole.on_bar(*bar)
        if i == cut:
            first = WilliamsMarketStructure.from_state(json.loads(json.dumps(first.state())))
        events_split += first.on_bar(*bar)
    assert events_split == events_whole
    assert first.state() == whole.state()
    assert first.pending() == whole.pending()
    for mine, theirs in zip(first.levels, whole.levels, strict=True):
        assert (mine.last_high(), mine.last_low()) == (theirs.last_high(), theirs.last_low())


@settings(max_examples=60, deadline=None)
@given(bars=random_walk_bars(), params=params_st, data=st.data())
def test_pending_holds_every_future_pivot_and_nothing_confirmed(bars: Bars, params: PivotParams, data: st.DataObject) -> None:
    o, h, lo, c = bars
    full = wms_batch(high=h, low=lo, open=o, close=c, params=params)
    t = data.draw(st.integers(0, len(h) - 1))
    detector = WilliamsMarketStructure(params)
    for i in range(t + 1):
        detector.on_bar(i, o[i], h[i], lo[i], c[i])
    pending = {(p.level, p.kind, p.index) for p in detector.pending()}
    for lvl in range(1, params.levels + 1):
        for kind in "HL":
            arr = full.get(lvl, kind)
            known_below = full.get(lvl - 1, kind).known_at(t).index if lvl > 1 else np.arange(t + 1)
            future = arr.index[(arr.confirmed_at > t) & np.isin(arr.index, known_below)]
            assert {(lvl, kind, int(i)) for i in future} <= pending
            confirmed = arr.known_at(t).index
            assert not {(lvl, kind, int(i)) for i in confirmed} & pending
