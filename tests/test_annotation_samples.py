"""Annotations as training samples (``training.annotation_samples``): exact labels and times, the realtime sample
structure, per-bar targets, the metrics; on real binance bars, causality (a sample's input is the input as of its
bar's close and bars appended later never change it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from pivotal.core.vocabulary import ACTIONS
from pivotal.data.candles import Candles
from pivotal.data.state.annotations import Annotation
from pivotal.features.assemble import build_input_from_series, prepare_series
from pivotal.features.encoding import encode
from pivotal.features.input_spec import InputSpec, WindowSpec
from pivotal.structure.types import PivotEvent
from pivotal.training.annotation_samples import (
    annotation_samples,
    market_state,
    sample_input,
    sample_set,
    samples_of,
    target_actions,
    to_test_case,
)
from pivotal.training.evaluation import classification_metrics
from pivotal.training.live_samples import LivePivotSampler

M = 60_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % M
BUY, SELL, HOLD = (ACTIONS.index(a) for a in ("BUY", "SELL", "HOLD"))


def ann(i: str, entry: int, exit_: int | None, direction: str | None = "LONG", tf: str = "1m", price: float = 100.0,
        exit_price: float | None = 102.0) -> Annotation:  # fmt: skip
    return Annotation(i, "manual", "BTC/USDT", tf, entry, price, exit_, exit_price if exit_ else None, direction,
                      notes="n", tags=("t",))  # fmt: skip


def test_entry_and_exit_samples_exact() -> None:
    entry, exit_ = samples_of(ann("a", T0, T0 + 5 * M, "LONG", price=100.0, exit_price=102.5))
    assert (entry.point, entry.bar_ts, entry.as_of, entry.known_at, entry.action) == ("entry", T0, T0 + M, T0 + 6 * M, "BUY")
    assert (exit_.point, exit_.bar_ts, exit_.as_of, exit_.known_at) == ("exit", T0 + 5 * M, T0 + 6 * M, T0 + 6 * M)
    assert exit_.action == "HOLD"
    assert entry.holding_period_s == 300 and entry.profit_loss_pct == pytest.approx(2.5, abs=1e-12)
    short_entry, _ = samples_of(ann("b", T0, T0 + 2 * M, "SHORT", price=100.0, exit_price=98.0))
    assert short_entry.action == "SELL" and short_entry.profit_loss_pct == pytest.approx(2.0, abs=1e-12)
    d = entry.to_dict({"x": 1}, ["1m"], 50)
    assert d["test_case_id"] == "annotation_a_entry" and d["market_state"] == {"x": 1}
    assert d["expected_outcome"] == {"direction": "LONG", "entry_price": 100.0, "exit_price": 102.5,
                                     "profit_loss_pct": pytest.approx(2.5), "holding_period_seconds": 300}  # fmt: skip
    assert d["annotation_metadata"]["notes"] == "n" and d["annotation_metadata"]["tags"] == ["t"]


def test_same_structure_as_live_pivot_samples() -> None:
    sampler = LivePivotSampler("BTC/USDT")
    sampler.offer("1m", PivotEvent(2, "L", 10, 99.0, 12, ts=T0, confirmed_ts=T0 + 3 * M))
    live = sampler.poll(T0 + 10 * M)[0].samples[0].to_dict()
    mine = samples_of(ann("a", T0, T0 + 5 * M))[0].to_dict()
    assert set(live) <= set(mine) and set(mine) - set(live) == {"market_state"}
    for key in ("expected_outcome", "training_config"):
        assert set(live[key]) == set(mine[key])


def test_unusable_annotations_are_skipped_with_the_reason() -> None:
    samples, skipped = annotation_samples([
        ann("late", T0 + 10 * M, T0 + 12 * M), ann("open", T0, None), ann("flat", T0, T0 + M, None),
        ann("early", T0, T0 + 3 * M, "SHORT"), ann("same", T0, T0),
    ])  # fmt: skip
    assert skipped == [("open", "no exit"), ("flat", "no direction (LONG or SHORT)"), ("same", "exit on the entry bar")]
    assert [(s.annotation_id, s.point, s.as_of) for s in samples] == [
        ("early", "entry", T0 + M), ("early", "exit", T0 + 4 * M), ("late", "entry", T0 + 11 * M), ("late", "exit", T0 + 13 * M),
    ]  # fmt: skip


def test_target_actions_per_bar() -> None:
    bars = T0 + M * np.arange(10)  # open times; the decision at each bar's close
    truth = target_actions([ann("a", T0 + M, T0 + 4 * M, "LONG"), ann("b", T0 + 3 * M, T0 + 6 * M, "SHORT"),
                            ann("c", T0 + 8 * M, None)], bars + M)  # fmt: skip
    assert truth.tolist() == [HOLD, BUY, BUY, SELL, SELL, SELL, HOLD, HOLD, HOLD, HOLD]
    hourly = target_actions([ann("h", T0, T0 + 60 * M, "LONG", tf="1h")], T0 + M * np.array([59, 60, 119, 120]))
    assert hourly.tolist() == [HOLD, BUY, BUY, HOLD]  # in force from the entry hour's close to the exit hour's close


def test_classification_metrics_exact() -> None:
    truth = np.array([BUY, BUY, SELL, HOLD, HOLD, HOLD])
    pred = np.array([BUY, SELL, SELL, HOLD, BUY, HOLD])
    m = classification_metrics(truth, pred)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [1, 0, 2]] and m["labels"] == ["BUY", "SELL", "HOLD"]
    assert m["accuracy"] == pytest.approx(4 / 6, abs=1e-15)
    assert m["per_class"]["BUY"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert m["per_class"]["SELL"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1}
    assert m["per_class"]["HOLD"] == {"precision": 1.0, "recall": pytest.approx(2 / 3), "f1": 0.8, "support": 3}
    assert m["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 0.8) / 3, abs=1e-15)
    empty = classification_metrics(np.array([HOLD]), np.array([HOLD]))
    assert empty["per_class"]["BUY"] == {"precision": None, "recall": None, "f1": None, "support": 0}
    assert empty["macro_f1"] == 1.0 and empty["accuracy"] == 1.0


# --------------------------------------------------------------------------------------------- real data

SPEC = InputSpec((WindowSpec("1m", 40),), min_bars=40, order_flow_windows_ms=())


def _minutes(shared_data: Path, n: int) -> Candles:
    c = Candles.from_arrow(pq.read_table(shared_data / "binance" / "BTCUSDT-1m.parquet"), "binance", "BTC/USDT", "1m")
    return c.slice(0, n)


def test_inputs_are_causal_and_equal_the_input_at_entry(shared_data: Path) -> None:
    full = _minutes(shared_data, 480)
    ts, close = np.asarray(full.ts), np.asarray(full.close)
    a = ann("r", int(ts[200]), int(ts[230]), "SHORT", price=float(close[200]), exit_price=float(close[230]))
    entry, exit_ = samples_of(a)
    short = prepare_series({("BTC/USDT", "1m"): full.slice(0, 260)}, SPEC.pivot_params)
    longer = prepare_series({("BTC/USDT", "1m"): full}, SPEC.pivot_params)
    exact = prepare_series({("BTC/USDT", "1m"): full.slice(0, 201)}, SPEC.pivot_params)  # ends with the entry bar
    for s in (entry, exit_):
        base = market_state(sample_input(short, s, SPEC))
        assert market_state(sample_input(longer, s, SPEC)) == base  # later bars change nothing
        assert market_state(build_input_from_series(longer, "BTC/USDT", s.as_of, SPEC)) == base
    at_entry = market_state(build_input_from_series(exact, "BTC/USDT", entry.as_of, SPEC))
    assert market_state(sample_input(longer, entry, SPEC)) == at_entry
    state = to_test_case(longer, entry, SPEC)["market_state"]
    assert state["ohlcv_1m"]["ts"] == [int(x) for x in ts[161:201]]  # the 40 bars closed by the entry bar's close
    assert all(p["confirmed_ts"] <= entry.as_of for p in state["pivot_points"]["BTC/USDT 1m"])
    assert state["pivot_points"]["BTC/USDT 1m"]  # 40 real minutes hold confirmed level-1 pivots

    got, kept, dropped = sample_set(longer, [entry, exit_], SPEC, levels=3)
    again, _, _ = sample_set(short, [entry, exit_], SPEC, levels=3)
    assert dropped == [] and kept == [entry, exit_]
    assert got.action.tolist() == [SELL, HOLD] and got.index.tolist() == [200, 230]
    assert got.action_known_at.tolist() == [230, 230] and got.time.tolist() == [entry.as_of, exit_.as_of]
    assert np.array_equal(got.windows, again.windows) and np.array_equal(got.context, again.context)
    want = encode(build_input_from_series(exact, "BTC/USDT", entry.as_of, SPEC), SPEC)
    assert np.array_equal(got.windows[0], want.windows.astype(np.float16))
    assert (got.kind == -1).all() and np.isnan(got.price).all()  # only the action is labelled


def test_incomplete_input_is_dropped_with_the_reason(shared_data: Path) -> None:
    full = _minutes(shared_data, 120)
    ts = np.asarray(full.ts)
    early = samples_of(ann("e", int(ts[5]), int(ts[60]), "LONG"))
    got, kept, dropped = sample_set(prepare_series({("BTC/USDT", "1m"): full}, SPEC.pivot_params), early, SPEC, 3)
    assert [s.point for s in kept] == ["exit"] and len(got) == 1
    assert dropped[0][0].point == "entry" and dropped[0][1].endswith("BTC/USDT 1m: 6 bars < minimum 40")
