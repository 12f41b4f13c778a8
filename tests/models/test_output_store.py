"""OutputStore: memory cap, persistence round trip on both store backends, as-of queries."""

from __future__ import annotations

from pathlib import Path

import pytest

from pivotal.data.duckdb_store import DuckDBStore
from pivotal.data.store import MarketStore
from pivotal.models.io import ModelOutput
from pivotal.models.output_store import OutputStore

MINUTE = 60_000
T0 = 1_735_689_600_000


def out(name: str, ts: int, symbol: str = "ETH/USDT", action: str = "HOLD") -> ModelOutput:
    probs = {"BUY": 0.2, "SELL": 0.2, "HOLD": 0.6}
    return ModelOutput("cnn", name, symbol, ts, 0.6, action, probs, metadata={"n": ts})  # type: ignore[arg-type]


def test_memory_keeps_the_last_1000_per_model() -> None:
    outputs = OutputStore()
    for i in range(1005):
        outputs.add(out("a", T0 + i * MINUTE))
    outputs.add(out("b", T0))
    recent = outputs.recent("a")
    assert len(recent) == 1000
    assert recent[0].timestamp == T0 + 5 * MINUTE and recent[-1].timestamp == T0 + 1004 * MINUTE
    assert [o.timestamp for o in outputs.recent("a", 2)] == [T0 + 1003 * MINUTE, T0 + 1004 * MINUTE]
    assert len(outputs.recent("b")) == 1 and outputs.models() == ["a", "b"]


def test_emitted_outputs_never_change() -> None:
    outputs = OutputStore()
    assert outputs.add(out("a", T0, action="BUY"))
    assert not outputs.add(out("a", T0, action="SELL"))
    assert [o.action for o in outputs.recent("a")] == ["BUY"]


def test_persistence_round_trip_and_queries(store: MarketStore) -> None:
    writer = OutputStore(store, capacity=3)
    for i in range(5):
        writer.add(out("cnn_a", T0 + i * MINUTE))
        writer.add(out("dqn_b", T0 + i * MINUTE + 1, symbol="BTC/USDT"))
    writer.add(out("dqn_b", T0 + 30 * MINUTE))
    assert not writer.add(out("cnn_a", T0))  # already persisted, even though evicted from memory
    reader = OutputStore(store)  # a fresh process: memory empty, history in the store
    everything = reader.query()
    assert len(everything) == 11
    assert everything == sorted(everything, key=lambda o: (o.timestamp, o.model_name))
    assert reader.query("cnn_a")[0] == out("cnn_a", T0)
    assert [o.timestamp for o in reader.query("cnn_a", start=T0 + MINUTE, end=T0 + 3 * MINUTE)] == [T0 + MINUTE, T0 + 2 * MINUTE]
    assert {o.model_name for o in reader.query(symbol="BTC/USDT")} == {"dqn_b"}
    assert [o.timestamp for o in reader.query("cnn_a", limit=2)] == [T0 + 3 * MINUTE, T0 + 4 * MINUTE]
    assert reader.models() == ["cnn_a", "dqn_b"]


@pytest.mark.parametrize("persisted", [False, True])
def test_last_predictions_are_as_of_t(tmp_path: Path, persisted: bool) -> None:
    store = DuckDBStore(tmp_path / "o.duckdb") if persisted else None
    outputs = OutputStore(store)
    outputs.add(out("cnn_a", T0))
    outputs.add(out("cnn_a", T0 + 2 * MINUTE))
    outputs.add(out("dqn_b", T0 + MINUTE))
    outputs.add(out("dqn_b", T0 + MINUTE, symbol="BTC/USDT"))
    last = outputs.last_predictions("ETH/USDT", T0 + MINUTE)
    assert {k: v.timestamp for k, v in last.items()} == {"cnn_a": T0, "dqn_b": T0 + MINUTE}
    assert outputs.last_predictions("ETH/USDT", T0 - 1) == {}
    assert outputs.last_predictions("ETH/USDT", T0 + 5 * MINUTE)["cnn_a"].timestamp == T0 + 2 * MINUTE
    if store is not None:
        store.close()


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        OutputStore(capacity=0)
