"""Live pivot training samples (``training.live_samples``): L2 pivots → SHORT/LONG samples, check interval, spacing per
timeframe, de-duplication of the last N, statistics; on real Binance BTC/USDT 1m through the incremental detector."""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd
import pytest

from pivotal.structure.incremental import WilliamsMarketStructure
from pivotal.structure.pivots import wms_batch
from pivotal.structure.types import Kind, PivotEvent, PivotParams
from pivotal.training.live_samples import LivePivotConfig, LivePivotSampler

MIN = 60_000
T0 = 1_709_251_200_000  # 2024-03-01


def _event(kind: Kind = "L", level: int = 2, ts: int = T0, confirmed_ts: int | None = T0 + 5 * MIN) -> PivotEvent:
    return PivotEvent(level, kind, 10, 100.5, 15, ts, confirmed_ts)


def test_high_makes_short_low_makes_long_in_the_reference_structure() -> None:
    sampler = LivePivotSampler("ETH/USDT", LivePivotConfig(timeframes=("1m",)))
    assert sampler.offer("1m", _event("H", ts=T0))
    assert sampler.offer("1m", _event("L", ts=T0 + MIN))
    [training] = sampler.poll(T0 + 10 * MIN)
    high, low = training.samples
    assert (high.action, high.direction, low.action, low.direction) == ("SELL", "SHORT", "BUY", "LONG")
    assert high.to_dict() == {
        "test_case_id": "live_pivot_ETH/USDT_1m_2024-03-01T00:00:00",
        "symbol": "ETH/USDT",
        "timestamp": "2024-03-01T00:00:00+00:00",
        "as_of": T0 + MIN,
        "known_at": T0 + 5 * MIN,
        "action": "SELL",
        "expected_outcome": {
            "direction": "SHORT",
            "entry_price": 100.5,
            "exit_price": None,
            "profit_loss_pct": 0.0,
            "holding_period_seconds": 300,
        },
        "training_config": {"timeframes": ["1s", "1m", "1h", "1d"], "candles_per_timeframe": 200},
        "annotation_metadata": {"source": "live_pivot_detection", "pivot_level": "L2", "pivot_type": "high", "confidence": 1.0},
    }


def test_filters_check_interval_spacing_and_known_at() -> None:
    sampler = LivePivotSampler("BTC/USDT")
    assert not sampler.offer("1m", _event(level=1))  # only L2 by default
    assert not sampler.offer("1h", _event())  # 1h not monitored by default
    assert sampler.offer("1m", _event(ts=T0, confirmed_ts=T0 + 5 * MIN))
    assert sampler.poll(T0 + 5 * MIN - 1) == []  # not known yet: waits
    assert sampler.poll(T0 + 5 * MIN) == []  # known, but within 5 s of the last check
    [first] = sampler.poll(T0 + 5 * MIN + 4_999)  # 5 s after the check that found it not yet known
    assert first.at == T0 + 5 * MIN + 4_999 and len(first.samples) == 1
    sampler.offer("1m", _event(ts=T0 + MIN, confirmed_ts=T0 + 6 * MIN))
    sampler.offer("1s", _event(ts=T0 + MIN, confirmed_ts=T0 + 6 * MIN))
    later = sampler.poll(T0 + 6 * MIN)  # 55 s after the 1m training: only 1s (its own timeframe) trains
    assert [t.timeframe for t in later] == ["1s"]
    assert sampler.stats()["waiting_1m"] == 1
    [spaced] = sampler.poll(first.at + MIN + 1)  # 60 s after the 1m training, 5 s after the last check
    assert spaced.timeframe == "1m" and spaced.samples[0].pivot_ts == T0 + MIN
    sampler.report_loss("1m", 0.25)
    stats = sampler.stats()
    assert {k: stats[k] for k in ("total_trained_pivots", "trained_pivots_1m", "trained_pivots_1s", "last_loss_1m")} == {
        "total_trained_pivots": 3,
        "trained_pivots_1m": 2,
        "trained_pivots_1s": 1,
        "last_loss_1m": 0.25,
    }
    assert stats["last_training_1m"] == first.at + MIN + 1 and stats["waiting_1m"] == 0


def test_dedupe_remembers_the_last_n_trained_pivots() -> None:
    sampler = LivePivotSampler("BTC/USDT", LivePivotConfig(timeframes=("1m",), dedupe=2, check_interval_ms=0, min_spacing_ms=0))
    events = [_event(ts=T0 + i * MIN, confirmed_ts=T0 + i * MIN + 1) for i in range(3)]
    for i, e in enumerate(events):
        assert sampler.offer("1m", e)
        assert not sampler.offer("1m", e)  # already queued
        sampler.poll(T0 + i * MIN + 1)
    assert [sampler.offer("1m", e) for e in events] == [True, False, False]  # the oldest was forgotten
    assert sampler.duplicates == 5 and sampler.stats()["remembered_pivots"] == 2


def test_disabled_and_bad_input() -> None:
    off = LivePivotSampler("BTC/USDT", LivePivotConfig(enabled=False))
    assert not off.offer("1m", _event()) and off.poll(T0 + 10 * MIN) == [] and off.stats()["enabled"] is False
    with pytest.raises(ValueError, match="pass ts= and close_ts="):
        LivePivotSampler("BTC/USDT").offer("1m", _event(confirmed_ts=None))
    with pytest.raises(ValueError, match="unknown timeframe"):
        LivePivotConfig(timeframes=("7x",))


def test_every_l2_pivot_of_a_real_day_is_trained_once_with_spacing(shared_data: Path) -> None:
    frame = pd.read_parquet(shared_data / "binance/BTCUSDT-1m-2024.parquet")
    day = frame[(frame.timestamp >= T0) & (frame.timestamp < T0 + 86_400_000)]
    assert len(day) == 1440
    params = PivotParams()
    detector = WilliamsMarketStructure(params)
    config = LivePivotConfig(timeframes=("1m",), min_spacing_ms=5 * MIN)
    sampler = LivePivotSampler("BTC/USDT", config)
    offered: list[PivotEvent] = []
    trainings = []
    for i, (ts, o, h, lo, c) in enumerate(day[["timestamp", "open", "high", "low", "close"]].itertuples(index=False)):
        for event in detector.on_bar(i, o, h, lo, c, ts=int(ts), close_ts=int(ts) + MIN):
            offered.append(event)
            sampler.offer("1m", event)
        trainings += sampler.poll(int(ts) + MIN)
    trainings += sampler.poll(T0 + 2 * 86_400_000)  # flush what waited for spacing
    batch = wms_batch(high=day.high.to_numpy(), low=day.low.to_numpy(), open=day.open.to_numpy(), close=day.close.to_numpy())
    n_l2 = len(batch.get(2, "H")) + len(batch.get(2, "L"))
    samples = [s for t in trainings for s in t.samples]
    assert n_l2 > 10 and len(samples) == n_l2 == sampler.stats()["total_trained_pivots"]
    assert len({s.key for s in samples}) == n_l2  # each once
    assert all(s.known_at <= t.at and s.as_of <= s.known_at for t in trainings for s in t.samples)  # never before known
    gaps = [b.at - a.at for a, b in itertools.pairwise(trainings)]
    assert min(gaps) >= 5 * MIN
    assert {(s.kind, s.action) for s in samples} == {("H", "SELL"), ("L", "BUY")}
    assert [sampler.offer("1m", e) for e in offered if e.level == 2] == [False] * n_l2  # offered again: not retrained
