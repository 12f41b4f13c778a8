"""The online trainer: publish versions trained through the newest label, skip done/repeated samples, survive kill -9
at every crash point on both queue backends without losing or double-counting a sample, gate and log promotions."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from pivotal.training.checkpoints import CheckpointInfo, CheckpointManager
from pivotal.training.online import OnlineConfig, OnlineTrainer, is_online, read_metrics
from pivotal.training.promotion import GateConfig, PromotionLog
from pivotal.training.queue import open_queue
from tests.training.online_fixtures import base_checkpoint, make_samples, open_sqlite, redis_url  # noqa: F401

FAST = OnlineConfig(batch_size=8, steps_per_batch=1, block_ms=0, consumer="t")


def lineage(root: Path, name: str = "m") -> list[CheckpointInfo]:
    """Online versions from the head back to the first (parent links)."""
    infos = {i.id: i for i in CheckpointManager(root).list(name)}
    online = sorted((i for i in infos.values() if is_online(i)), key=lambda i: i.id)
    chain, node = [], online[-1] if online else None
    while node is not None and is_online(node):
        chain.append(node)
        node = infos.get(node.extra["parent"])
    return chain[::-1]


def trained_keys(root: Path) -> list[str]:
    return [k for info in lineage(root) for k in info.extra["sample_keys"]]


def test_step_publishes_a_version_trained_through_the_newest_label(tmp_path: Path) -> None:
    root = tmp_path / "models"
    base = base_checkpoint(root)
    q = open_sqlite(tmp_path)
    samples = make_samples(6, "BTC/USDT") + make_samples(2, "ETH/USDT", start=10)
    q.put(samples)
    trainer = OnlineTrainer(root, "m", q, FAST)
    assert trainer.start().id == base.id
    assert PromotionLog(root, "m").serving() == base.id  # the starting checkpoint is logged as serving
    result = trainer.step()
    assert result is not None and result.version is not None and result.trained == 8
    info = CheckpointManager(root).resolve(f"m/{result.version}")
    assert info.extra["parent"] == base.id
    assert info.extra["sample_keys"] == [s.key for s in samples]
    assert info.extra["trained_through_by_symbol"] == {"BTC/USDT": samples[5].known_at, "ETH/USDT": samples[7].known_at}
    assert info.extra["trained_through"] == samples[7].known_at
    assert q.counts()["done"] == 8 and q.counts()["pending"] == 0
    assert trainer.step() is None  # drained
    (line,) = read_metrics(root, "m")
    assert line["version"] == result.version and line["trained"] == 8 and line["gate"] is None


def test_read_metrics_last_reads_the_tail_of_a_long_feed(tmp_path: Path) -> None:
    from pivotal.training.online import METRICS_FILE, _tail_lines
    from pivotal.training.promotion import ONLINE_DIR

    feed = tmp_path / ONLINE_DIR / "m" / METRICS_FILE
    feed.parent.mkdir(parents=True)
    rows = [{"version": f"v{i}", "loss_after": i / 7} for i in range(500)]
    feed.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"version": "torn')
    assert read_metrics(tmp_path, "m", last=3) == rows[-2:]  # the torn last line is skipped, as in a full read
    assert read_metrics(tmp_path, "m", last=1000) == rows == read_metrics(tmp_path, "m")
    for block in (7, 64, 1 << 16):  # lines cut across reading blocks
        assert _tail_lines(feed, 4, block) == [json.dumps(r) for r in rows[-3:]] + ['{"version": "torn']


def test_done_and_repeated_samples_are_skipped(tmp_path: Path) -> None:
    root = tmp_path / "models"
    base_checkpoint(root)
    q = open_sqlite(tmp_path)
    samples = make_samples(4)
    q.put(samples[:2] + samples[:1])  # a producer retried one put
    q.mark_done([samples[1].key])  # already trained
    result = OnlineTrainer(root, "m", q, FAST).step()
    assert result is not None
    assert (result.trained, result.skipped_done, result.skipped_repeat) == (1, 1, 1)
    assert trained_keys(root) == [samples[0].key]
    assert q.counts()["pending"] == 0


def test_gate_refuses_or_promotes_and_logs_each_decision(tmp_path: Path) -> None:
    root = tmp_path / "models"
    base = base_checkpoint(root)
    q = open_sqlite(tmp_path)
    q.put(make_samples(24))
    config = OnlineConfig(batch_size=8, steps_per_batch=1, block_ms=0, consumer="t", gate=GateConfig(alpha=0.05, min_samples=20))
    trainer = OnlineTrainer(root, "m", q, config)
    first = trainer.step()
    second = trainer.step()  # 8 out-of-sample samples < min_samples 20: refused
    assert first is not None and second is not None and second.gate is not None
    assert not second.promoted and "only 8 samples < 20" in second.gate.reason
    log = PromotionLog(root, "m")
    assert [(e.action, e.version) for e in log.events()] == [("promote", base.id), ("refuse", first.version)]
    assert log.serving() == base.id


def test_always_promoting_gate_serves_the_previous_head(tmp_path: Path) -> None:
    root = tmp_path / "models"
    base_checkpoint(root)
    q = open_sqlite(tmp_path)
    q.put(make_samples(16))
    config = OnlineConfig(batch_size=8, steps_per_batch=3, block_ms=0, consumer="t", gate=GateConfig(alpha=1.0, min_samples=2))
    trainer = OnlineTrainer(root, "m", q, config)
    first = trainer.step()
    second = trainer.step()
    assert first is not None and second is not None and second.gate is not None
    # alpha 1: promoted exactly when the challenger's mean out-of-sample loss is lower
    assert second.promoted == (second.gate.mean_diff > 0)
    assert PromotionLog(root, "m").serving() == (first.version if second.promoted else lineage(root)[0].extra["parent"])


def test_pruning_keeps_recent_versions_and_every_served_one(tmp_path: Path) -> None:
    root = tmp_path / "models"
    base = base_checkpoint(root)
    q = open_sqlite(tmp_path)
    q.put(make_samples(40))
    config = OnlineConfig(batch_size=4, steps_per_batch=1, block_ms=0, keep=3, consumer="t")
    trainer = OnlineTrainer(root, "m", q, config)
    trainer.start()
    trainer.run(max_steps=10)
    ids = {i.id for i in CheckpointManager(root).list("m")}
    online = sorted(i.id for i in CheckpointManager(root).list("m") if is_online(i))
    assert len(online) == 3 and base.id in ids and trainer.head is not None and trainer.head.id == online[-1]


CHILD = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from pivotal.training import online
    from pivotal.training.queue import open_queue

    root, url, point, ready = Path(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])
    queue = open_queue(url, reclaim_ms=200)
    trainer = online.OnlineTrainer(root, "m", queue, online.OnlineConfig(batch_size=8, steps_per_batch=1, block_ms=0,
                                                                         consumer="doomed"))
    steps = [0]

    def hang():
        ready.write_text(str(os.getpid()))
        time.sleep(600)

    def wrap(obj, attr, before=True):
        real = getattr(obj, attr)
        def hooked(*a, **k):
            if steps[0] == 1 and before:
                hang()
            out = real(*a, **k)
            if steps[0] == 1 and not before:
                hang()
            return out
        setattr(obj, attr, hooked)

    if point == "mid_training":          # the second batch is taken, its training half done
        wrap(online.SupervisedModel, "train_step", before=True)
    elif point == "after_publish":       # the new version is in the index, its keys not yet done
        wrap(queue, "mark_done", before=True)
    elif point == "after_done":          # keys done, entries not yet acked
        wrap(queue, "ack", before=True)
    trainer.start()
    while True:
        trainer.step()
        steps[0] += 1
    """
)


def _crash_and_recover(tmp_path: Path, url: str, point: str) -> tuple[list[str], list[str]]:
    root = tmp_path / "models"
    base_checkpoint(root)
    producer = open_queue(url)
    samples = make_samples(24)
    producer.put(samples)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    ready = tmp_path / "ready"
    child = subprocess.Popen([sys.executable, str(script), str(root), url, point, str(ready)], env={**os.environ})
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert child.poll() is None, f"trainer child exited early with {child.returncode}"
            assert time.monotonic() < deadline, "trainer child never reached the crash point"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)  # kill -9 mid-batch
    finally:
        child.wait(30)
    assert child.returncode == -signal.SIGKILL
    time.sleep(0.25)  # past reclaim_ms: the dead trainer's pending entries are redelivered
    queue = open_queue(url, reclaim_ms=200)
    trainer = OnlineTrainer(root, "m", queue, OnlineConfig(batch_size=8, steps_per_batch=1, block_ms=0, consumer="heir"))
    trainer.start()
    for _ in range(10):
        trainer.step()
    assert queue.counts()["pending"] == 0
    queue.close()
    producer.close()
    return trained_keys(root), [s.key for s in samples]


POINTS = ["mid_training", "after_publish", "after_done"]


@pytest.mark.parametrize("point", POINTS)
def test_kill9_loses_and_double_counts_nothing_embedded(tmp_path: Path, point: str) -> None:
    trained, expected = _crash_and_recover(tmp_path, f"sqlite:{tmp_path / 'q.sqlite'}", point)
    assert sorted(trained) == sorted(expected)  # every sample once: none lost, none trained twice
    assert len(trained) == len(set(trained))


@pytest.mark.redis
@pytest.mark.parametrize("point", POINTS)
def test_kill9_loses_and_double_counts_nothing_redis(tmp_path: Path, point: str, redis_url: str) -> None:  # noqa: F811
    trained, expected = _crash_and_recover(tmp_path, redis_url, point)
    assert sorted(trained) == sorted(expected)
    assert len(trained) == len(set(trained))


def test_module_entry_point_runs_until_idle(tmp_path: Path) -> None:
    root = tmp_path / "models"
    base_checkpoint(root)
    q = open_sqlite(tmp_path)
    q.put(make_samples(10))
    out = subprocess.run(
        [sys.executable, "-m", "pivotal.training.online", "--root", str(root), "--name", "m", "--queue",
         f"sqlite:{tmp_path / 'queue.sqlite'}", "--batch-size", "5", "--steps", "1", "--block-ms", "50", "--idle-exit-s", "0.3"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert json.loads(out.stdout.strip().splitlines()[-1])["published"] == 2
    assert sorted(trained_keys(root)) == sorted(s.key for s in make_samples(10))


def test_cli_train_live_publishes_and_reports_bad_input(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pivotal.cli.main import app

    root = tmp_path / "pivotal-data" / "models"  # the data dir of the isolated settings
    base_checkpoint(root)
    q = open_sqlite(tmp_path)
    q.put(make_samples(5))
    url = f"sqlite:{tmp_path / 'queue.sqlite'}"
    args = ["models", "train-live", "m", "--queue", url, "--max-steps", "1", "--no-tensorboard", "--nice", "0"]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    (version,) = [i.id for i in CheckpointManager(root).list("m") if is_online(i)]
    assert f"newest version {version}" in out.output
    bad = CliRunner().invoke(app, ["models", "train-live", "m", "--queue", "sqlite:", "--nice", "0"])
    assert bad.exit_code == 1 and "give sqlite:PATH or redis://" in bad.output
    missing = CliRunner().invoke(app, ["models", "train-live", "nobody", "--queue", url, "--nice", "0"])
    assert missing.exit_code == 1 and "no checkpoints for model 'nobody'" in missing.output


def test_reservoir_keeps_a_uniform_sample_of_everything_offered() -> None:
    from pivotal.training.online import Reservoir

    samples = make_samples(40)
    r = Reservoir(10, seed=3)
    r.add(samples[:6])
    assert [s.key for s in r.items] == [s.key for s in samples[:6]] and r.seen == 6  # below size: all kept, in order
    r.add(samples[6:])
    assert len(r.items) == 10 and r.seen == 40 and len({s.key for s in r.items}) == 10
    drawn = r.draw(4)
    assert len({s.key for s in drawn}) == 4 and {s.key for s in drawn} <= {s.key for s in r.items}
    assert len(r.draw(50)) == 10 and r.draw(0) == [] and Reservoir(5).draw(3) == []
    counts = np.zeros(40)  # algorithm R: each of the 40 offered is kept with probability 10/40
    position = {s.key: i for i, s in enumerate(samples)}
    for seed in range(400):
        kept = Reservoir(10, seed=seed)
        kept.add(samples)
        for s in kept.items:
            counts[position[s.key]] += 1
    assert abs(counts.mean() - 100.0) < 1e-9 and counts.min() > 60 and counts.max() < 140  # expected 100 each


def test_replay_trains_fresh_samples_with_drawn_past_ones_at_the_given_rate(tmp_path: Path) -> None:
    root = tmp_path / "models"
    base_checkpoint(root)
    q = open_sqlite(tmp_path)
    q.put(make_samples(24))
    config = OnlineConfig(batch_size=8, steps_per_batch=1, block_ms=0, consumer="t", replay=12, replay_ratio=0.5, lr=2e-5)
    trainer = OnlineTrainer(root, "m", q, config)
    trainer.start()
    assert trainer.model is not None and {g["lr"] for g in trainer.model.optimizer.param_groups} == {2e-5}
    results = [trainer.step(), trainer.step(), trainer.step()]
    assert [r.replayed for r in results if r is not None] == [0, 4, 4]  # nothing to replay at first; then 8 x 0.5
    assert trainer.reservoir is not None and trainer.reservoir.seen == 24 and len(trainer.reservoir.items) == 12
    assert [line["replayed"] for line in read_metrics(root, "m")] == [0, 4, 4]
    assert trained_keys(root) == [s.key for s in make_samples(24)]  # the lineage records each fresh sample once
    with pytest.raises(ValueError, match="replay and replay_ratio must be >= 0 and lr > 0"):
        OnlineConfig(replay=-1)
    with pytest.raises(ValueError, match="lr > 0"):
        OnlineConfig(lr=0.0)


def test_pruning_keeps_only_the_last_served_versions_and_rollback_refuses_a_pruned_one(tmp_path: Path) -> None:
    """A live node promotes dozens of versions a day: keeping every one that served grew the checkpoint index (rewritten
    on every publish) without bound, so only the last ``keep_served`` stay; a rollback past them is refused, unlogged."""
    from pivotal.core.errors import UserInputError
    from pivotal.services import online

    root = tmp_path / "models"
    base = base_checkpoint(root)
    q = open_sqlite(tmp_path)
    q.put(make_samples(40))
    config = OnlineConfig(batch_size=4, steps_per_batch=1, block_ms=0, keep=1, keep_served=3, consumer="t")
    trainer = OnlineTrainer(root, "m", q, config)
    trainer.start()
    log = PromotionLog(root, "m")
    for _ in range(8):
        assert trainer.step() is not None and trainer.head is not None
        log.promote(trainer.head.id, reason="test")
    assert trainer.step() is not None and trainer.head is not None  # its prune sees all 8 promotions
    served = log.history()
    assert served[0] == base.id and len(served) == 9
    stored = {i.id for i in CheckpointManager(root).list("m")}
    assert stored == {base.id, *served[-3:], trainer.head.id}
    assert online.rollback(root, "m").version == served[-2]
    assert online.rollback(root, "m").version == served[-3]
    events = len(log.events())
    with pytest.raises(UserInputError, match=f"version {served[-4]}, which served before {served[-3]}, is no longer stored"):
        online.rollback(root, "m")
    assert len(log.events()) == events and log.serving() == served[-3]
