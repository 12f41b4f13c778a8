"""Hot swap under load: every prediction is made by exactly one version's weights and attributed to that version, in
the result and in the inference history; a swap never waits for a running prediction."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pivotal.models.io import ModelOutput
from pivotal.models.output_store import InferenceHistory, InputRef
from pivotal.models.serving import ServingModel
from tests.stores import throwaway_store
from tests.training.online_fixtures import SHAPE, tiny_model

VERSIONS = [f"v{i}" for i in range(4)]
RNG = np.random.default_rng(7)
ENCODED = (
    RNG.normal(size=(SHAPE.n_windows, SHAPE.window_len, SHAPE.n_channels)).astype(np.float32),
    RNG.normal(size=SHAPE.n_context).astype(np.float32),
)


def fingerprint(out: ModelOutput) -> tuple[float, ...]:
    return (*out.action_probabilities.values(), out.confidence, *(p.price_offset for p in out.pivots))


def test_concurrent_predictions_and_swaps_never_mix_versions() -> None:
    models = {v: tiny_model(seed=i) for i, v in enumerate(VERSIONS)}
    expected = {v: fingerprint(m.predict(ENCODED)) for v, m in models.items()}
    assert len(set(expected.values())) == len(VERSIONS)  # the versions are distinguishable
    serving = ServingModel(models["v0"], "v0")
    seen: list[tuple[str, tuple[float, ...]]] = []
    stop = threading.Event()
    lock = threading.Lock()

    def predictor() -> None:
        mine = []
        for _ in range(150):
            served = serving.predict(ENCODED, symbol="BTC/USDT", timestamp=1)
            mine.append((served.version, fingerprint(served.output)))
        with lock:
            seen.extend(mine)

    def swapper() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            v = VERSIONS[i % len(VERSIONS)]
            serving.swap(models[v], v)

    threads = [threading.Thread(target=predictor) for _ in range(4)]
    swap_thread = threading.Thread(target=swapper)
    swap_thread.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    swap_thread.join()
    assert len(seen) == 600 and serving.swaps > 0
    wrong = [(v, fp) for v, fp in seen if not np.allclose(fp, expected[v], rtol=0, atol=1e-6)]
    assert wrong == []
    assert len({v for v, _ in seen}) > 1  # the swaps happened under load


class _Blocking:
    """A predictor that holds its prediction until released (a long inference)."""

    name = "m"

    def __init__(self, inner: Any) -> None:
        self.inner, self.entered, self.release = inner, threading.Event(), threading.Event()

    def predict(self, encoded: Any, symbol: str = "", timestamp: int = 0) -> ModelOutput:
        self.entered.set()
        self.release.wait(10)
        out: ModelOutput = self.inner.predict(encoded, symbol=symbol, timestamp=timestamp)
        return out


def test_swap_does_not_wait_for_a_running_prediction() -> None:
    slow = _Blocking(tiny_model(seed=0))
    serving = ServingModel(slow, "v0")
    result: list[Any] = []
    t = threading.Thread(target=lambda: result.append(serving.predict(ENCODED)))
    t.start()
    assert slow.entered.wait(10)
    assert serving.swap(tiny_model(seed=1), "v1") == "v0"  # returns while v0's prediction still runs
    assert serving.version == "v1"
    slow.release.set()
    t.join()
    assert result[0].version == "v0"
    assert serving.predict(ENCODED).version == "v1"


def test_inference_history_records_the_version_that_predicted(tmp_path: Path) -> None:
    with throwaway_store("duckdb", tmp_path) as store:
        history = InferenceHistory(store)
        serving = ServingModel(tiny_model(seed=0), "v0", history=history)
        ref = InputRef("single-1m", 0, "ab" * 32)
        made = []
        for i, version in enumerate(["v0", "v0", "v1", "v2", "v2"]):
            if version != serving.version:
                serving.swap(tiny_model(seed=int(version[1])), version)
            ts = 60_000 * (i + 1)
            made.append((serving.predict(ENCODED, "BTC/USDT", ts, "1m", InputRef("single-1m", ts, ref.digest)).version, ts))
        rows = [(p.model_version, p.as_of) for p in history.query(model_name="m")]
        assert rows == made == [("v0", 60_000), ("v0", 120_000), ("v1", 180_000), ("v2", 240_000), ("v2", 300_000)]


def test_prefer_serving_latency_sets_the_switch_interval_and_returns_the_previous_one() -> None:
    import sys

    from pivotal.models.serving import SERVING_SWITCH_INTERVAL_S, prefer_serving_latency

    before = sys.getswitchinterval()
    try:
        assert prefer_serving_latency() == pytest.approx(before)
        assert sys.getswitchinterval() == pytest.approx(SERVING_SWITCH_INTERVAL_S)
        assert prefer_serving_latency(0.002) == pytest.approx(SERVING_SWITCH_INTERVAL_S)
        assert sys.getswitchinterval() == pytest.approx(0.002)
    finally:
        sys.setswitchinterval(before)
