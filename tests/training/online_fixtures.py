"""Shared pieces of the online-training tests: a tiny CNN checkpoint, samples for it, the two queue backends.

The sample tensors are seeded random numbers (model inputs for the queue/trainer mechanics, not market data); the
real-data path is benchmarks/bench_online_training.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pivotal.models.cnn import CNNModel
from pivotal.models.protocol import CNNConfig, InputShape
from pivotal.training.checkpoints import CheckpointInfo, CheckpointManager
from pivotal.training.queue import QueuedSample, SampleQueue
from pivotal.training.queue_embedded import SqliteSampleQueue

SHAPE = InputShape(n_windows=1, window_len=16, n_channels=3, n_context=4, levels=2)
CONFIG = CNNConfig(shape=SHAPE, conv_channels=(4,), kernel=3, stride=2, gru_hidden=4, trunk_hidden=8, dropout=0.0)
T0 = 1_700_000_000_000


def tiny_model(name: str = "m", seed: int = 0) -> CNNModel:
    return CNNModel(CONFIG, name=name, seed=seed)


def base_checkpoint(root: Path, name: str = "m") -> CheckpointInfo:
    span = {"exchange": "binance", "symbol": "BTC/USDT", "timeframes": ["1m"], "start": T0 - 86_400_000, "end": T0}
    return CheckpointManager(root).save(tiny_model(name), "val_loss", 1.0, False, span)


def make_samples(n: int, symbol: str = "BTC/USDT", start: int = 0, seed: int = 0) -> list[QueuedSample]:
    rng = np.random.default_rng(seed + start)
    out = []
    for i in range(start, start + n):
        as_of = T0 + i * 60_000
        arrays = {
            "windows": rng.normal(size=(SHAPE.n_windows, SHAPE.window_len, SHAPE.n_channels)).astype(np.float16),
            "context": rng.normal(size=SHAPE.n_context).astype(np.float32),
            "kind": np.array([i % 2, -1], np.int64),
            "price": np.array([0.01 * (1 - 2 * (i % 2)), np.nan], np.float32),
            "bars": np.array([3.0, np.nan], np.float32),
            "action": np.array(i % 3, np.int64),
        }
        out.append(QueuedSample(f"{symbol}|1m|{as_of}", symbol, "1m", as_of, as_of + 180_000, arrays))
    return out


def redis_queue(url: str, reclaim_ms: int) -> SampleQueue:
    from pivotal.training.queue_redis import RedisSampleQueue

    return RedisSampleQueue.from_url(url, reclaim_ms=reclaim_ms)


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A fresh stream on the test Redis; deleted afterwards."""
    import redis

    from tests.conftest import REDIS_URL

    stream = f"pivotal-test:{uuid.uuid4().hex}"
    yield f"{REDIS_URL}?stream={stream}"
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(stream, f"{stream}:done")
    client.close()


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:{tmp_path / 'queue.sqlite'}"


def open_sqlite(tmp_path: Path, reclaim_ms: int = 30_000) -> SqliteSampleQueue:
    return SqliteSampleQueue(tmp_path / "queue.sqlite", reclaim_ms=reclaim_ms)
