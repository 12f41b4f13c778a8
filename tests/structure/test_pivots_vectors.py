"""Hand-worked vectors HV1-HV3 of spec A.9, for the batch engine and the incremental detector."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pivotal.structure.incremental import WilliamsMarketStructure, run_incremental
from pivotal.structure.pivots import validate_bars, with_timestamps, wms_batch, wms_events
from pivotal.structure.types import PivotParams, PivotSet
from tests.vectors import (
    HV1_EXPECTED,
    HV1_HIGH,
    HV2_CLOSE,
    HV2_HIGH,
    HV2_L1H_FIRST,
    HV2_L1L,
    HV2_LOW,
    HV2_OPEN,
    HV3_EXPECTED,
    HV3_HIGH,
    Triples,
)

# HV2 (spec A.9): level 2 is the same under every option profile; level 1 differs by tie rule and inside bars.
HV2_L2 = {(2, "H"): [(17, 25, 22)], (2, "L"): [(12, 13, 21)]}
HV2_PROFILES = {
    "a-first": (
        PivotParams(k=1, m=1, tie="first"),
        {(1, "H"): HV2_L1H_FIRST, (1, "L"): HV2_L1L},
    ),
    "b-last": (
        PivotParams(k=1, m=1, tie="last"),
        {(1, "H"): [(3, 24, 4), (6, 22, 7), (10, 20, 11), (12, 23, 13), (17, 25, 18), (21, 21, 22)], (1, "L"): HV2_L1L},
    ),
    "c-strict": (
        PivotParams(k=1, m=1, tie="strict"),
        {(1, "H"): [(6, 22, 7), (10, 20, 11), (12, 23, 13), (17, 25, 18), (21, 21, 22)], (1, "L"): HV2_L1L},
    ),
    "d-skip-inside": (
        PivotParams(k=1, m=1, tie="first", skip_inside=True),
        {
            (1, "H"): [(2, 24, 3), (6, 22, 7), (15, 24, 16), (17, 25, 18), (21, 21, 22)],
            (1, "L"): [(5, 17, 6), (9, 14, 10), (12, 13, 15), (20, 15, 21), (23, 12, 24)],
        },
    ),
}


def _as_dict(pivots: PivotSet) -> dict[tuple[int, str], Triples]:
    out: dict[tuple[int, str], Triples] = {}
    for level in range(1, len(pivots.highs) + 1):
        for kind in ("H", "L"):
            triples = pivots.get(level, kind).as_tuples()
            if triples:
                out[(level, kind)] = triples
    return out


def _both_engines(high, low, open_, close, params: PivotParams) -> list[PivotSet]:
    return [
        wms_batch(high=high, low=low, open=open_, close=close, params=params),
        run_incremental(open=open_, high=high, low=low, close=close, params=params),
    ]


def _hv1_low() -> list[int]:
    return [h - 4 for h in HV1_HIGH]


def test_hv1_both_engines_reproduce_the_hand_worked_levels() -> None:
    for result in _both_engines(HV1_HIGH, _hv1_low(), None, None, PivotParams(k=1, m=1, tie="first")):
        assert _as_dict(result) == HV1_EXPECTED


@pytest.mark.parametrize("profile", sorted(HV2_PROFILES))
def test_hv2_every_option_profile(profile: str) -> None:
    params, level1 = HV2_PROFILES[profile]
    for result in _both_engines(HV2_HIGH, HV2_LOW, HV2_OPEN, HV2_CLOSE, params):
        assert _as_dict(result) == {**level1, **HV2_L2}


def test_hv2_outside_bar_12_emits_low_before_high_because_it_closed_up() -> None:
    params = PivotParams(k=1, m=1, tie="first")
    batch_events = wms_events(
        wms_batch(high=HV2_HIGH, low=HV2_LOW, open=HV2_OPEN, close=HV2_CLOSE, params=params), HV2_OPEN, HV2_CLOSE
    )
    at_13 = [(e.label, e.index) for e in batch_events if e.confirmed_at == 13]
    assert at_13 == [("L1L", 12), ("L1H", 12)]
    detector = WilliamsMarketStructure(params)
    streamed = []
    for i in range(len(HV2_HIGH)):
        streamed += detector.on_bar(i, HV2_OPEN[i], HV2_HIGH[i], HV2_LOW[i], HV2_CLOSE[i])
    assert streamed == batch_events


def test_outside_bar_that_closes_down_emits_high_before_low() -> None:
    open_, close = list(HV2_OPEN), list(HV2_CLOSE)
    open_[12], close[12] = 22, 14  # same range, bearish body
    pivots = wms_batch(high=HV2_HIGH, low=HV2_LOW, open=open_, close=close, params=PivotParams(k=1, m=1))
    at_13 = [(e.label, e.index) for e in wms_events(pivots, open_, close) if e.confirmed_at == 13]
    assert at_13 == [("L1H", 12), ("L1L", 12)]


def test_hv2_event_labels_and_levels_in_emission_order() -> None:
    params = PivotParams(k=1, m=1, levels=2)
    events = wms_events(wms_batch(high=HV2_HIGH, low=HV2_LOW, open=HV2_OPEN, close=HV2_CLOSE, params=params), HV2_OPEN, HV2_CLOSE)
    at_21 = [e.label for e in events if e.confirmed_at == 21]
    assert at_21 == ["L1L", "L2L"]  # level-1 confirmation of bar 20 promotes L2L@12
    assert [e.confirmed_at for e in events] == sorted(e.confirmed_at for e in events)


def test_hv3_reaches_level_3_in_both_engines() -> None:
    low = [h - 4 for h in HV3_HIGH]
    for result in _both_engines(HV3_HIGH, low, None, None, PivotParams(k=1, m=1, tie="first")):
        assert _as_dict(result) == HV3_EXPECTED


def test_default_params_give_five_levels_of_sorted_int64_arrays() -> None:
    result = wms_batch(high=np.array(HV3_HIGH, float), low=np.array(HV3_HIGH, float) - 4)
    assert len(result.highs) == len(result.lows) == 5
    for arr in result.highs + result.lows:
        assert arr.index.dtype == np.int64 and arr.confirmed_at.dtype == np.int64 and arr.price.dtype == np.float64
        assert np.all(np.diff(arr.index) > 0)


def test_fewer_than_2k_plus_1_bars_give_no_pivots() -> None:
    result = wms_batch(high=[1.0, 3.0, 2.0, 1.0], low=[0.0, 2.0, 1.0, 0.0], params=PivotParams(k=2))
    assert all(len(a) == 0 for a in result.highs + result.lows)
    assert all(len(a) == 0 for a in wms_batch(high=[], low=[], params=PivotParams(k=1)).highs)


@pytest.mark.parametrize(
    ("row_values", "message"),
    [
        ({"high": np.nan}, "row 3: a price is NaN"),
        ({"high": 15.0, "low": 16.0}, "row 3: high < low"),
        ({"low": 22.5}, r"row 3: low > min\(open, close\)"),
        ({"high": 22.5}, r"row 3: high < max\(open, close\)"),
    ],
)
def test_bad_bars_are_rejected_naming_row_and_field(row_values: dict[str, float], message: str) -> None:
    cols = {"open": list(HV2_OPEN), "high": list(HV2_HIGH), "low": list(HV2_LOW), "close": list(HV2_CLOSE)}
    for field_name, value in row_values.items():
        cols[field_name][3] = value
    with pytest.raises(ValueError, match=message):
        wms_batch(high=cols["high"], low=cols["low"], open=cols["open"], close=cols["close"])
    with pytest.raises(ValueError, match=message):
        run_incremental(open=cols["open"], high=cols["high"], low=cols["low"], close=cols["close"], params=PivotParams())


def test_validation_without_body_checks_only_nan_and_range() -> None:
    validate_bars(np.array([2.0, 3.0]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"row 1: high < low \(high=1.0 low=2.0\)"):
        wms_batch(high=[2.0, 1.0], low=[1.0, 2.0])
    with pytest.raises(ValueError, match="low has 1 rows but high has 2"):
        wms_batch(high=[2.0, 1.0], low=[1.0])
    with pytest.raises(ValueError, match="pass both open and close"):
        wms_batch(high=[2.0], low=[1.0], open=[1.5])


def test_timestamps_follow_pivot_bar_open_and_confirming_bar_close() -> None:
    ts = 1_700_000_000_000 + 3_600_000 * np.arange(len(HV3_HIGH), dtype=np.int64)
    pivots = wms_batch(high=HV3_HIGH, low=[h - 4 for h in HV3_HIGH], params=PivotParams(k=1, m=1))
    timed = with_timestamps(pivots, ts, 3_600_000).get(3, "H")
    assert timed.ts.tolist() == [ts[11]]
    assert timed.confirmed_ts.tolist() == [ts[18] + 3_600_000]  # close of bar 18 = open of bar 19
    events = wms_events(pivots, HV3_HIGH, HV3_HIGH, ts=ts, tf_ms=3_600_000)
    assert {(e.label, e.ts, e.confirmed_ts) for e in events if e.level == 3} == {
        ("L3H", int(ts[11]), int(ts[19])),
        ("L3L", int(ts[10]), int(ts[18])),
    }
    bad = ts.copy()
    bad[5] = bad[4]
    with pytest.raises(ValueError, match=r"row 5: timestamp .* is not after row 4"):
        with_timestamps(pivots, bad, 3_600_000)


@pytest.mark.parametrize("profile", sorted(HV2_PROFILES))
def test_hv2_restore_at_every_bar_continues_like_uninterrupted(profile: str) -> None:
    params = HV2_PROFILES[profile][0]
    bars = list(zip(range(25), HV2_OPEN, HV2_HIGH, HV2_LOW, HV2_CLOSE, strict=True))
    whole = WilliamsMarketStructure(params)
    expected = [e for bar in bars for e in whole.on_bar(*bar)]
    for cut in range(len(bars)):
        head = WilliamsMarketStructure(params)
        events = [e for bar in bars[:cut] for e in head.on_bar(*bar)]
        restored = WilliamsMarketStructure.from_state(json.loads(json.dumps(head.state())))
        events += [e for bar in bars[cut:] for e in restored.on_bar(*bar)]
        assert events == expected, f"restore before bar {cut}"


def test_pending_shows_unconfirmed_candidates_at_the_right_edge() -> None:
    detector = WilliamsMarketStructure(PivotParams(k=1, m=1))
    for i in range(13):  # HV2 up to bar 12: the outside bar 12 is both H and L candidate, confirmed only at 13
        detector.on_bar(i, HV2_OPEN[i], HV2_HIGH[i], HV2_LOW[i], HV2_CLOSE[i])
    pending = {(f"L{p.level}{p.kind}", p.index, p.price) for p in detector.pending()}
    assert pending == {("L1H", 12, 23.0), ("L1L", 12, 13.0), ("L2L", 9, 14.0)}  # L1H@10 (20) is below L1H@6 (22)
    assert detector.levels[0].last_high().index == 10 and detector.levels[0].last_low().index == 9


def test_detector_rejects_out_of_order_bars_and_foreign_state() -> None:
    detector = WilliamsMarketStructure(PivotParams(k=1))
    detector.on_bar(5, 1.0, 2.0, 0.5, 1.5)
    with pytest.raises(ValueError, match=r"row 5: bar index must increase \(previous bar was 5\)"):
        detector.on_bar(5, 1.0, 2.0, 0.5, 1.5)
    state = detector.state()
    with pytest.raises(ValueError, match="state version 99 unsupported"):
        WilliamsMarketStructure.from_state({**state, "version": 99})
    with pytest.raises(ValueError, match=r"do not match params\.levels"):
        WilliamsMarketStructure.from_state({**state, "params": {**state["params"], "levels": 2}})
    with pytest.raises(ValueError, match="history must be >= 1"):
        WilliamsMarketStructure(PivotParams(), history=0)


def test_level_history_is_bounded_and_keeps_the_latest() -> None:
    detector = WilliamsMarketStructure(PivotParams(k=1, m=1), history=2)
    for i, h in enumerate(HV1_HIGH):
        detector.on_bar(i, h - 2, h, h - 4, h - 2)
    assert [e.index for e in detector.levels[0].highs] == [24, 27]
    assert detector.levels[1].last_low().index == 13 and detector.levels[2].last_high() is None


@pytest.mark.parametrize("skip_inside", [False, True])
@pytest.mark.parametrize("bad_rows", [[0], [1], [12], [23], [24], [24, 1], [2, 22]])
def test_the_first_bad_row_is_reported_wherever_it_lies(bad_rows: list[int], skip_inside: bool) -> None:
    high = np.array(HV2_HIGH, float)
    for row in bad_rows:
        high[row] = np.nan
    with pytest.raises(ValueError, match=f"row {min(bad_rows)}: a price is NaN"):
        wms_batch(high=high, low=HV2_LOW, open=HV2_OPEN, close=HV2_CLOSE, params=PivotParams(k=2, skip_inside=skip_inside))
    with pytest.raises(ValueError, match=f"row {min(bad_rows)}: a price is NaN"):
        wms_batch(high=high, low=HV2_LOW, params=PivotParams(k=2, skip_inside=skip_inside))
