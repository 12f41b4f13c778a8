"""The scale-out path: the online trainer as a Ray actor on a local instance consumes the same durable queue,
publishes versions, and the serving side's watcher swaps the promoted one in (one Ray start for the module)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pivotal.models.serving import ServingModel
from pivotal.services.online import ServingWatcher
from pivotal.training.checkpoints import CheckpointManager
from pivotal.training.online import OnlineConfig, is_online
from pivotal.training.online_ray import RayTrainer
from pivotal.training.promotion import GateConfig, PromotionLog
from pivotal.training.queue import QueuedSample
from tests.training.online_fixtures import base_checkpoint, make_samples, open_sqlite, sqlite_url

ray = pytest.importorskip("ray", reason="the optional extra pivotal[cluster] is not installed")
pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def test_ray_actor_trains_queued_samples_and_serving_swaps_in_the_promoted_version(local_ray: None, tmp_path: Path) -> None:
    root = tmp_path / "models"
    base = base_checkpoint(root)
    queue = open_sqlite(tmp_path)
    first = make_samples(8)
    # the second batch repeats the first one's inputs under new keys: the head trained on them has the lower loss on
    # them, so the gate (alpha 1: promote when the challenger's out-of-sample mean loss is lower) promotes it
    again = [QueuedSample(f"{s.key}|again", s.symbol, s.timeframe, s.as_of, s.known_at, s.arrays) for s in first]
    queue.put(first + again)
    serving = ServingModel(CheckpointManager(root).load(base), base.id)
    watcher = ServingWatcher(root, "m", serving)
    config = OnlineConfig(batch_size=8, steps_per_batch=5, block_ms=50, consumer="ray", gate=GateConfig(alpha=1.0, min_samples=2))

    trainer = RayTrainer("auto", root, "m", sqlite_url(tmp_path), config, max_steps=2, idle_exit_s=60)
    assert trainer.wait(timeout_s=300)["published"] == 2
    assert trainer.stop() == 0

    online = sorted((i for i in CheckpointManager(root).list("m") if is_online(i)), key=lambda i: i.id)
    assert [i.extra["sample_keys"] for i in online] == [[s.key for s in first], [s.key for s in again]]
    assert online[1].extra["parent"] == online[0].id and online[0].extra["parent"] == base.id
    log = PromotionLog(root, "m")
    assert [(e.action, e.version) for e in log.events()] == [("promote", base.id), ("promote", online[0].id)]
    assert queue.counts() == {"new": 0, "pending": 0, "acked": 16, "done": 16}
    assert serving.version == base.id
    assert watcher.check() == online[0].id  # the serving side picks the actor's promoted version up
    assert serving.version == online[0].id and watcher.check() is None
