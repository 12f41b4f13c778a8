"""COB features: exact bucket values, batch ≡ incremental, prefix replay (no emitted value changes), model input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pivotal.core.errors import UserInputError
from pivotal.data.orderbook.book import SequenceGap
from pivotal.data.orderbook.messages import DepthMessages
from pivotal.data.orderbook.replay import replay_top_of_book
from pivotal.data.trades import Trades
from pivotal.features.assemble import build_input_from_series
from pivotal.features.cob import (
    CobConfig,
    CobEngine,
    CobFeatures,
    cob_features,
    cob_heatmap,
    order_book_at,
    order_book_vector,
    replay_incremental,
)
from pivotal.features.completeness import check_completeness
from pivotal.features.input_spec import InputSpec, WindowSpec
from tests.orderbook.captures import CAPTURES, load_capture

CONFIG = CobConfig(bucket_size=1.0, buckets=2, ma_buckets=1, ma_windows=(1, 2))
SNAPSHOT = (
    100,
    np.array([(99.5, 1.0), (99.2, 2.0), (98.5, 3.0), (97.9, 7.0)]),
    np.array([(100.5, 1.0), (100.7, 3.0), (101.2, 2.0), (102.5, 9.0)]),
)


def _messages(rows: list[tuple[int, int, int, str, float, float]]) -> DepthMessages:
    """(event ms, U, u, side, price, qty) rows; local time = event time."""
    frame = pd.DataFrame(rows, columns=["event_ts_ms", "first_update_id", "final_update_id", "side", "price", "qty"])
    frame["local_ts_ns"] = frame["event_ts_ms"] * 1_000_000
    return DepthMessages.from_frame(frame)


MESSAGES = _messages(
    [
        (1000, 101, 101, "bid", 99.6, 1.0),  # second 1000: best bid 99.6
        (2300, 102, 102, "ask", 100.5, 0.0),  # closes 1000; best ask 100.7
        (4100, 103, 103, "bid", 98.2, 4.0),  # closes 2000 and 3000 (3000 had no event: unchanged book)
        (5000, 104, 104, "ask", 101.0, 1.0),  # closes 4000; second 5000 stays open (nothing after it)
    ]
)
TRADES = Trades(
    np.array([900, 1500, 1600, 2400]), np.arange(4), np.full(4, 100.0), np.array([9.0, 0.5, 0.25, 1.0]),
    np.array([False, False, True, True]),
)  # fmt: skip


def test_hand_computed_rows() -> None:
    f = cob_features(SNAPSHOT, MESSAGES, TRADES, CONFIG)
    assert f.ts.tolist() == [1000, 2000, 3000, 4000]
    assert f.known_at.tolist() == [2300, 4100, 4100, 5000]
    assert f.updates.tolist() == [1, 1, 0, 1]
    # second 1000: bids 99.6, 99.5, 99.2 | 98.5 ; asks 100.5, 100.7 | 101.2 ; mid 100.05 -> buckets [98,99) .. [101,102)
    assert f.mid[0] == (99.6 + 100.5) / 2 and f.spread[0] == 100.5 - 99.6
    assert f.bid_volume[0].tolist() == [3.0, 4.0, 0.0, 0.0]
    assert f.ask_volume[0].tolist() == [0.0, 0.0, 4.0, 2.0]
    assert f.imbalance[0].tolist() == [1.0, 1.0, -1.0, -1.0]
    assert f.vwap[0, 1] == (99.6 * 1.0 + 99.5 * 1.0 + 99.2 * 2.0) / 4.0
    assert f.agg_imbalance[0] == (4.0 - 4.0) / 8.0
    assert f.buy_volume[0] == 0.5 and f.sell_volume[0] == 0.25 and f.buy_ratio[0] == 0.5 / 0.75  # trade at 900: before
    # second 2000: ask 100.5 removed -> mid (99.6 + 100.7) / 2 = 100.15; trade at 2400 sold 1.0
    assert f.ask_volume[1].tolist() == [0.0, 0.0, 3.0, 2.0] and f.buy_ratio[1] == 0.0
    # second 3000: no event, same book, no trades
    assert np.array_equal(f.values[2, :4], f.values[1, :4]) and f.buy_ratio[2] == 0.5
    # imbalance MAs of buckets k = -1, 0 over 1 s and 2 s; agg MA over 2 s = mean of the last two rows
    assert f.imbalance_ma[2, 0].tolist() == f.imbalance[2, 1:3].tolist()
    assert f.imbalance_ma[2, 1].tolist() == ((f.imbalance[1, 1:3] + f.imbalance[2, 1:3]) / 2).tolist()
    assert f.agg_imbalance_ma[2, 1] == (f.agg_imbalance[1] + f.agg_imbalance[2]) / 2
    assert f.agg_imbalance_ma[0, 1] == f.agg_imbalance[0]  # window still filling: the rows it has
    assert np.isnan(f.vwap[0, 3]) is np.False_ and np.isnan(f.vwap[1, 0]) is np.False_
    incremental = replay_incremental(SNAPSHOT, MESSAGES, TRADES, CONFIG)
    assert _same(f, incremental)


def test_empty_bucket_has_zero_imbalance_and_no_vwap() -> None:
    f = cob_features((1, np.array([(100.2, 1.0)]), np.array([(100.4, 2.0)])), MESSAGES.head(0), None, CONFIG)
    assert len(f) == 0
    msgs = _messages([(1000, 2, 2, "bid", 100.1, 0.5), (2000, 3, 3, "bid", 100.1, 0.0)])
    f = cob_features((1, np.array([(100.2, 1.0)]), np.array([(100.4, 2.0)])), msgs, None, CONFIG)
    assert f.imbalance[0].tolist() == [0.0, 0.0, (1.5 - 2.0) / 3.5, 0.0]  # mid 100.3: all levels in [100, 101)
    assert np.isnan(f.vwap[0]).tolist() == [True, True, False, True]


@pytest.mark.parametrize("size", [0.1, 0.3, 0.07, 5.0, 1e9])  # the last two: every price in bucket 0
def test_buckets_follow_floor_of_price_over_size_at_every_boundary(size: float) -> None:
    """Prices on a 0.01 grid hit bucket edges where ``price / size`` rounds below the integer (0.3 / 0.1 =
    2.9999999999999996): the walk assigns each level to ``floor(price / size)`` and sums in level order, exactly as
    this per-level reference does (bit-identical volumes and VWAPs)."""
    bids = np.array([(round(1.0 - 0.01 * k, 2), 1.0 + (k % 7) * 0.125) for k in range(1, 100)])
    asks = np.array([(round(1.0 + 0.01 * k, 2), 0.5 + (k % 5) * 0.375) for k in range(1, 100)])
    msgs = _messages([(1000, 2, 2, "bid", 0.01, 0.0), (2000, 3, 3, "bid", 0.01, 0.0)])  # removes level 0.01
    config = CobConfig(size, buckets=40, ma_buckets=1, ma_windows=(1,))
    f = cob_features((1, bids, asks), msgs, None, config)
    mid = (0.99 + 1.01) / 2.0
    center = np.floor(mid / size)
    vol = np.zeros((2, 80))
    pv = np.zeros(80)
    for side, levels in ((0, bids[:-1]), (1, asks)):  # best first; bid 0.01 was removed
        for price, qty in levels:
            j = int(np.floor(price / size) - center) + 40
            if 0 <= j < 80:
                vol[side, j] += qty
                pv[j] += price * qty
    total = vol[0] + vol[1]
    assert np.array_equal(f.bid_volume[0], vol[0]) and np.array_equal(f.ask_volume[0], vol[1])
    with np.errstate(invalid="ignore"):
        assert np.array_equal(f.vwap[0], np.where(total > 0, pv / total, np.nan), equal_nan=True)
    assert np.count_nonzero(total) == (1 if size > 2 else {0.1: 20, 0.3: 7, 0.07: 29}[size])
    assert np.floor(0.3 / 0.1) == 2.0  # an edge that rounds down


def test_gap_in_batch_names_the_message() -> None:
    with pytest.raises(SequenceGap) as info:
        cob_features(SNAPSHOT, MESSAGES.drop(1), TRADES, CONFIG)
    assert (info.value.expected, info.value.received, info.value.message_index) == (102, 103, 1)


def test_bucket_size_defaults_and_errors() -> None:
    assert CobConfig.for_symbol("BTC/USDT").bucket_size == 10.0
    assert CobConfig.for_symbol("ETH/USDT:USDT").bucket_size == 1.0
    assert CobConfig.for_symbol("SOL/USDT", 0.1).bucket_size == 0.1
    with pytest.raises(UserInputError, match="no default COB bucket size for 'SOL/USDT'"):
        CobConfig.for_symbol("SOL/USDT")
    with pytest.raises(UserInputError, match="bucket_size must be a positive number"):
        CobConfig(0.0)


def test_order_book_at_is_causal_and_goes_stale() -> None:
    f = cob_features(SNAPSHOT, MESSAGES, TRADES, CONFIG)
    assert order_book_at(f, 2299) is None  # row 1000 becomes known at 2300
    vec = order_book_at(f, 2300)
    assert vec is not None and vec.dtype == np.float32 and np.array_equal(vec, order_book_vector(f, 0))
    assert np.array_equal(order_book_at(f, 4100), order_book_vector(f, 2))  # type: ignore[arg-type]
    assert order_book_at(f, 4000 + 1000 + 5000) is not None and order_book_at(f, 4000 + 1000 + 5001) is None
    assert np.isfinite(vec).all() and len(vec) == 4 * 4 + 2 * 2 + 1 + 2 + 2


def test_heatmap_slices_the_rows() -> None:
    f = cob_features(SNAPSHOT, MESSAGES, TRADES, CONFIG)
    h = cob_heatmap(f, seconds=3, buckets=1)
    assert h.ts.tolist() == [2000, 3000, 4000] and h.offsets.tolist() == [-1, 0]
    assert np.array_equal(h.imbalance, f.imbalance[1:, 1:3])
    assert np.array_equal(h.volume, f.bid_volume[1:, 1:3] + f.ask_volume[1:, 1:3])
    assert h.prices[0].tolist() == [99.0, 100.0]
    with pytest.raises(UserInputError):
        cob_heatmap(f, buckets=3)


def _same(a: CobFeatures, b: CobFeatures) -> bool:
    return (
        np.array_equal(a.ts, b.ts)
        and np.array_equal(a.known_at, b.known_at)
        and np.array_equal(a.updates, b.updates)
        and np.array_equal(a.values, b.values, equal_nan=True)
    )


# ---------------------------------------------------------------------------------------------- real captures


def _config(raw: str) -> CobConfig:
    return CobConfig.for_symbol(raw)


@pytest.mark.parametrize(("folder", "raw"), CAPTURES)
def test_batch_equals_incremental(shared_data: Path, folder: str, raw: str) -> None:
    cap = load_capture(shared_data, folder, raw)
    batch = cob_features(cap.snapshot, cap.messages, cap.trades, _config(raw))
    assert len(batch) == {"binance": 650, "binance-usdm": 480}[folder]
    assert _same(batch, replay_incremental(cap.snapshot, cap.messages, cap.trades, _config(raw)))
    assert np.all(batch.known_at >= batch.ts + 1000)  # nothing is known before its second ends
    assert np.all(np.diff(batch.ts) == 1000) and np.all(np.isfinite(batch.mid))
    # the bucket holding the mid always has volume on at least one side; the buckets partition prices around it
    assert np.all(batch.bid_volume[:, 20] + batch.ask_volume[:, 20] > 0)
    assert np.all(batch.bid_volume[:, 21:] == 0) and np.all(batch.ask_volume[:, :20] == 0)


@pytest.mark.parametrize(("folder", "raw"), CAPTURES)
def test_prefix_replay_never_changes_an_emitted_row(shared_data: Path, folder: str, raw: str) -> None:
    cap = load_capture(shared_data, folder, raw)
    full = cob_features(cap.snapshot, cap.messages, cap.trades, _config(raw))
    for cut in (50, 777, 3001, len(cap.messages) - 5):
        cut_ms = int(cap.messages.event_ms[cut])
        n = int(np.searchsorted(cap.trades.ts, cut_ms, side="left"))  # the stream before message `cut`
        t = cap.trades
        trades = Trades(t.ts[:n], t.trade_id[:n], t.price[:n], t.amount[:n], t.is_buyer_maker[:n])
        prefix = cob_features(cap.snapshot, cap.messages.head(cut), trades, _config(raw))
        assert len(prefix) > 0 and _same(prefix, full.head(len(prefix)))
        assert prefix.known_at.max() < cut_ms or prefix.known_at.max() == int(cap.messages.event_ms[cut - 1])
        # and the prefix emitted every row the full run had already made known before the cut
        assert len(prefix) == int(np.count_nonzero(full.known_at < cut_ms))


@pytest.mark.parametrize(("folder", "raw"), CAPTURES)
def test_top_of_book_from_the_cob_pass_equals_the_replay(shared_data: Path, folder: str, raw: str) -> None:
    cap = load_capture(shared_data, folder, raw)
    top = np.full((len(cap.messages), 4), -1.0)
    with_top = cob_features(cap.snapshot, cap.messages, cap.trades, _config(raw), top=top)
    ref = replay_top_of_book(cap.snapshot, cap.messages)
    assert np.array_equal(top, np.column_stack([ref.bid_px, ref.bid_qty, ref.ask_px, ref.ask_qty]), equal_nan=True)
    assert not ref.applied.all()  # stale messages (before the snapshot) get the unchanged top as well
    assert _same(with_top, cob_features(cap.snapshot, cap.messages, cap.trades, _config(raw)))


def test_top_of_book_buffer_must_fit() -> None:
    with pytest.raises(UserInputError, match=r"shape \(4, 4\)"):
        cob_features(SNAPSHOT, MESSAGES, TRADES, CONFIG, top=np.empty((3, 4)))


def test_order_book_reaches_the_model_input(shared_data: Path) -> None:
    cap = load_capture(shared_data, "binance-usdm", "BTCUSDT")
    rows = cob_features(cap.snapshot, cap.messages, cap.trades, _config("BTCUSDT"))
    spec = InputSpec((WindowSpec("1m", 10),), min_bars=1, require_order_book=True)
    t = int(rows.known_at[100])
    inp = build_input_from_series({}, "BTC/USDT:USDT", t, spec, order_book=rows)
    assert inp.order_book is not None and np.array_equal(inp.order_book, order_book_vector(rows, 100))
    assert check_completeness(inp, spec).parts["order_book"] == 1.0
    before = build_input_from_series({}, "BTC/USDT:USDT", int(rows.ts[0]), spec, order_book=rows)
    assert before.order_book is None  # no depth known yet: absent, and completeness says so
    result = check_completeness(before, spec)
    assert result.parts["order_book"] == 0.0 and "order_book: absent" in result.missing
    assert build_input_from_series({}, "BTC/USDT:USDT", t, spec).order_book is None  # no COB given: unchanged


def test_engine_reports_a_gap_and_resumes_after_a_new_snapshot() -> None:
    engine = CobEngine(CONFIG)
    engine.on_snapshot(*SNAPSHOT)
    assert engine.on_depth(101, 101, None, [(99.6, 1.0)], [], 1000) == 0
    assert engine.on_depth(102, 102, None, [], [(100.5, 0.0)], 2300) == 1
    with pytest.raises(SequenceGap) as info:
        engine.on_depth(104, 104, None, [], [], 3100)  # 103 was lost
    assert (info.value.expected, info.value.received) == (103, 104)
    with pytest.raises(SequenceGap, match="apply a REST depth snapshot first"):
        engine.on_depth(105, 105, None, [], [], 3200)
    engine.on_snapshot(200, SNAPSHOT[1], SNAPSHOT[2])
    assert engine.on_depth(199, 201, None, [], [], 7000) == 0  # opens second 7000 (2000..6000 are not known)
    assert engine.on_depth(202, 202, None, [], [], 8000) == 1
    rows = engine.features()
    assert rows.ts.tolist() == [1000, 7000] and rows.known_at.tolist() == [2300, 8000]
    fresh = cob_features(
        (200, SNAPSHOT[1], SNAPSHOT[2]),
        _messages([(7000, 199, 201, "bid", 1.0, 0.0), (8000, 202, 202, "bid", 1.0, 0.0)]),
        None,
        CONFIG,
    )
    assert np.array_equal(rows.values[1], fresh.values[0], equal_nan=True)  # MAs restarted like a batch replay
