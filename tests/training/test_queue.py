"""The sample queue on both backends: round trip, at-least-once (pending, reclaim), ack, done keys, URLs."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pivotal.core.errors import UserInputError
from pivotal.training.queue import QueuedSample, SampleQueue, open_queue, to_batch
from pivotal.training.queue_embedded import SqliteSampleQueue
from tests.training.online_fixtures import make_samples, redis_url  # noqa: F401  (fixture)


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def queue_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """``make(reclaim_ms)`` → a queue of the backend; every queue made is closed afterwards."""
    made: list[SampleQueue] = []
    url = f"sqlite:{tmp_path / 'q.sqlite'}" if request.param == "sqlite" else request.getfixturevalue("redis_url")

    def make(reclaim_ms: int = 30_000) -> SampleQueue:
        made.append(open_queue(url, reclaim_ms=reclaim_ms))
        return made[-1]

    yield make
    for q in made:
        q.close()


def test_sample_round_trip_keeps_arrays_exactly() -> None:
    (s,) = make_samples(1)
    back = QueuedSample.decode(s.encode())
    assert (back.key, back.symbol, back.timeframe, back.as_of, back.known_at) == (
        s.key,
        s.symbol,
        s.timeframe,
        s.as_of,
        s.known_at,
    )
    for name, value in s.arrays.items():
        np.testing.assert_array_equal(back.arrays[name], value)
        assert back.arrays[name].dtype == value.dtype


def test_sample_rejects_label_known_before_input() -> None:
    (s,) = make_samples(1)
    with pytest.raises(ValueError, match=r"known_at .* is before as_of"):
        QueuedSample(s.key, s.symbol, s.timeframe, s.as_of, s.as_of - 1, s.arrays)


def test_to_batch_stacks_in_order() -> None:
    samples = make_samples(3)
    batch = to_batch(samples)
    assert batch["windows"].shape == (3, 1, 16, 3) and str(batch["windows"].dtype) == "torch.float32"
    assert batch["action"].tolist() == [0, 1, 2]
    assert batch["kind"][:, 0].tolist() == [0, 1, 0]


def test_take_ack_and_nothing_redelivered_after_ack(queue_factory) -> None:  # type: ignore[no-untyped-def]
    q = queue_factory()
    assert q.put(make_samples(5)) == 5
    first = q.take("a", 3)
    assert [d.sample.key for d in first] == [s.key for s in make_samples(5)[:3]]
    assert all(d.deliveries == 1 for d in first)
    second = q.take("b", 10)
    assert [d.sample.key for d in second] == [s.key for s in make_samples(5)[3:]]
    assert q.ack("a", [d.id for d in first]) == 3
    assert q.ack("b", [d.id for d in second]) == 2
    assert q.take("c", 10) == []
    assert q.counts()["pending"] == 0


def test_unacked_entries_are_reclaimed_by_another_consumer(queue_factory) -> None:  # type: ignore[no-untyped-def]
    q = queue_factory(reclaim_ms=400)
    q.put(make_samples(4))
    taken = q.take("dead", 4)
    assert q.take("alive", 4) == []  # pending, not yet idle long enough
    time.sleep(0.45)
    again = q.take("alive", 4)
    assert [d.sample.key for d in again] == [d.sample.key for d in taken]
    assert all(d.deliveries == 2 for d in again)
    q.ack("alive", [d.id for d in again])
    time.sleep(0.45)
    assert q.take("alive", 4) == []


def test_done_keys_are_idempotent(queue_factory) -> None:  # type: ignore[no-untyped-def]
    q = queue_factory()
    keys = [s.key for s in make_samples(3)]
    q.mark_done(keys[:2])
    q.mark_done(keys[:2])
    assert q.done(keys) == set(keys[:2])
    assert q.done([]) == set()
    assert q.counts()["done"] == 2


def test_queue_persists_across_reopen(tmp_path: Path) -> None:
    q = SqliteSampleQueue(tmp_path / "q.sqlite")
    q.put(make_samples(2))
    q.take("a", 1)
    q.close()
    again = SqliteSampleQueue(tmp_path / "q.sqlite", reclaim_ms=0)
    assert [d.sample.key for d in again.take("b", 5)] == [s.key for s in make_samples(2)]
    again.close()


def test_embedded_ack_deletes_the_entry_and_keeps_the_count(tmp_path: Path) -> None:
    """A live run queues hundreds of thousands of samples: acked entries must not stay in the file."""
    q = SqliteSampleQueue(tmp_path / "q.sqlite")
    q.put(make_samples(3))
    got = q.take("a", 2)
    assert q.ack("a", [d.id for d in got]) == 2
    assert q.ack("a", [d.id for d in got]) == 0  # acked once, counted once
    rows = q._db.execute("SELECT key, state FROM entries ORDER BY seq").fetchall()
    assert rows == [(make_samples(3)[2].key, 0)]
    assert q.counts() == {"new": 1, "pending": 0, "acked": 2, "done": 0}
    assert [d.sample.key for d in q.take("b", 5)] == [make_samples(3)[2].key]
    q.close()
    again = SqliteSampleQueue(tmp_path / "q.sqlite")
    assert again.counts() == {"new": 0, "pending": 1, "acked": 2, "done": 0}  # the count survives a reopen
    again.close()


def test_embedded_file_stays_near_its_backlog_over_many_acks(tmp_path: Path) -> None:
    """Put, take and ack 60 rounds of 64 samples with 8 KB payloads (a live sample's size): the file stops growing
    after the first rounds, where blanking payloads kept a page per acked row."""
    q = SqliteSampleQueue(tmp_path / "q.sqlite")
    base = make_samples(1)[0]
    pages = []
    for r in range(60):
        big = {**base.arrays, "windows": np.ones(1024)}
        batch = [dataclasses.replace(base, key=f"{base.key}|{r}|{i}", arrays=big) for i in range(64)]
        q.put(batch)
        got = q.take("a", 64)
        assert q.ack("a", [d.id for d in got]) == 64
        pages.append(q._db.execute("PRAGMA page_count").fetchone()[0] - q._db.execute("PRAGMA freelist_count").fetchone()[0])
    assert q.counts()["acked"] == 60 * 64
    assert max(pages[10:]) <= max(pages[:10]), pages
    q.close()


def test_embedded_purge_removes_old_layout_rows_and_counts_them(tmp_path: Path) -> None:
    q = SqliteSampleQueue(tmp_path / "q.sqlite")
    q.put(make_samples(3))
    q._db.execute("UPDATE entries SET state = 2, payload = x'' WHERE seq <= 2")  # what an older version left
    assert q.counts()["acked"] == 2
    assert q.purge() == 2 and q.counts() == {"new": 1, "pending": 0, "acked": 2, "done": 0}
    q._db.execute("UPDATE entries SET state = 2, payload = x''")  # the last one too, then reopened
    q.close()
    again = SqliteSampleQueue(tmp_path / "q.sqlite")
    assert again._db.execute("SELECT COUNT(*) FROM entries").fetchone() == (0,)
    assert again.counts() == {"new": 0, "pending": 0, "acked": 3, "done": 0}
    again.close()


def test_embedded_reclaim_uses_the_injected_clock(tmp_path: Path) -> None:
    now = [1_000]
    q = SqliteSampleQueue(tmp_path / "q.sqlite", reclaim_ms=500, now_ms=lambda: now[0])
    q.put(make_samples(1))
    q.take("a", 1)
    now[0] += 499
    assert q.take("b", 1) == []
    now[0] += 1
    assert len(q.take("b", 1)) == 1


def test_open_queue_rejects_empty_url() -> None:
    with pytest.raises(UserInputError, match="give sqlite:PATH or redis://"):
        open_queue("sqlite:")


def test_live_pivot_sample_becomes_a_queued_sample_with_its_action() -> None:
    from pivotal.training.live_samples import LivePivotSample

    live = LivePivotSample("BTC/USDT", "1m", 2, "H", 60_000, 120_000, 240_000, 100.5, 300, ("1m",), 200)
    from pivotal.training.queue import from_live_pivot

    q = from_live_pivot(live, np.zeros((1, 16, 3)), np.zeros(4), levels=2)
    assert (q.key, q.as_of, q.known_at) == ("BTC/USDT|1m|2|H|60000", 120_000, 240_000)
    batch = to_batch([q])
    assert batch["action"].tolist() == [1] and batch["kind"].tolist() == [[-1, -1]]  # SELL; pivot heads masked


def test_pivot_outcome_becomes_a_pivot_head_sample_and_other_targets_are_refused() -> None:
    from pivotal.models.output_store import InputRef
    from pivotal.training.outcomes import Label, Outcome
    from pivotal.training.queue import from_pivot_outcome

    ref = InputRef("spec", 120_000, "0" * 64)
    label = Label("pivot_L2", -0.0125, -1, 600_000, {"bars_until": 3.0})
    low = Outcome("cnn", "v1", "ETH/USDT", "1m", 120_000, ref, 0.01, 1, label, False)
    q = from_pivot_outcome(low, np.zeros((1, 16, 3)), np.zeros(4), levels=3)
    assert (q.key, q.as_of, q.known_at) == ("outcome|ETH/USDT|1m|L2|120000", 120_000, 600_000)
    batch = to_batch([q])
    assert batch["kind"].tolist() == [[-1, 1, -1]] and batch["action"].tolist() == [-1]  # a low; the action masked
    assert batch["price"][0, 1].item() == pytest.approx(-0.0125) and batch["bars"][0, 1].item() == 3.0
    assert torch_isnan(batch["price"][0, 0]) and torch_isnan(batch["bars"][0, 2])
    for target, direction in (("return_5m", 1), ("pivot_L4", 1), ("pivot_L2", 0)):
        bad = Outcome("cnn", "v1", "ETH/USDT", "1m", 120_000, ref, 0.0, 1, Label(target, 0.0, direction, 600_000), True)
        with pytest.raises(ValueError, match=r"is not a pivot outcome of levels 1\.\.3"):
            from_pivot_outcome(bad, np.zeros((1, 16, 3)), np.zeros(4), levels=3)


def torch_isnan(value: object) -> bool:
    return bool(np.isnan(float(value)))  # type: ignore[arg-type]
