"""The incremental detector's fast event construction yields ordinary, frozen PivotEvents (guard for ``_new_event``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pivotal.structure.incremental import WilliamsMarketStructure, _new_event
from pivotal.structure.types import PivotEvent, PivotParams


def test_fast_events_equal_constructed_events() -> None:
    fast = _new_event(3, "L", 120, 64210.5, 131, 1_700_000_000_000, 1_700_000_660_000)
    slow = PivotEvent(3, "L", 120, 64210.5, 131, 1_700_000_000_000, 1_700_000_660_000)
    assert type(fast) is PivotEvent
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert dataclasses.astuple(fast) == dataclasses.astuple(slow)
    assert fast.label == "L3L"
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.price = 1.0  # type: ignore[misc]
    # the shortcut skips __init__: it is only valid while PivotEvent has no validation hook and keeps a __dict__
    assert not hasattr(PivotEvent, "__post_init__")
    assert [f.name for f in dataclasses.fields(PivotEvent)] == list(fast.__dict__)


def test_streamed_events_on_real_bars_are_plain_pivot_events(shared_data: Path) -> None:
    table = pq.read_table(shared_data / "binance/BTCUSDT-1m-2024.parquet").slice(0, 3_000).to_pydict()
    det = WilliamsMarketStructure(PivotParams(k=2), history=4)
    events: list[PivotEvent] = []
    rows = zip(table["open"], table["high"], table["low"], table["close"], table["timestamp"], strict=True)
    for i, (o, h, lo, c, ts) in enumerate(rows):
        events.extend(det.on_bar(i, o, h, lo, c, ts=ts, close_ts=ts + 60_000))
    assert {e.level for e in events} >= {1, 2, 3}
    assert all(e == PivotEvent(**dataclasses.asdict(e)) for e in events)
    assert all(e.confirmed_ts == table["timestamp"][e.confirmed_at] + 60_000 for e in events)
