"""``SqliteSampleQueue``: the embedded sample queue, one SQLite file, no server (``training.queue`` semantics).

Why SQLite and not DuckDB: producers (the serving process) and the trainer (another process) write the queue at the
same time; DuckDB lets only one process open a file for writing, SQLite in WAL mode serialises writers across
processes. Every take/ack/mark-done is one ``BEGIN IMMEDIATE`` transaction, so a killed process leaves either all or
nothing of it.

Tables: ``entries`` (seq, key, payload, enqueued_ms, state 0 new / 1 pending / 2 acked, consumer, delivered_ms,
deliveries), ``done`` (sample keys trained into a published checkpoint) and ``counters`` (entries acked so far). An
ack deletes the entry in the same transaction that counts it, so a trainer that keeps up holds the file near the size
of its backlog plus the done keys (Redis Streams deletes acked entries the same way). Measured: only blanking the
payload, as this queue first did, left each acked row alone on its ~4 KB page (the sequence only grows, so SQLite
never refilled them): 200 MB after 13 replayed days. Opening a file of that layout ``purge``s its acked rows.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pivotal.training.queue import DEFAULT_RECLAIM_MS, Delivery, QueuedSample

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    payload BLOB NOT NULL,
    enqueued_ms INTEGER NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
    consumer TEXT,
    delivered_ms INTEGER,
    deliveries INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS entries_state ON entries (state, seq);
CREATE TABLE IF NOT EXISTS done (key TEXT PRIMARY KEY, done_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters (name, value) VALUES ('acked', 0);
"""


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class SqliteSampleQueue:
    """The embedded ``SampleQueue`` (see the module doc). ``now_ms`` is injectable for tests of the reclaim rule."""

    def __init__(self, path: Path, reclaim_ms: int = DEFAULT_RECLAIM_MS, now_ms: Callable[[], int] = _wall_ms) -> None:
        if reclaim_ms < 0:
            raise ValueError(f"reclaim_ms must be >= 0 (got {reclaim_ms})")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.reclaim_ms = reclaim_ms
        self.now_ms = now_ms
        self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self.purge()  # a file written before acks deleted their entries: its acked rows go (counted) at once

    def __repr__(self) -> str:
        return f"SqliteSampleQueue({str(self.path)!r})"

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: committed when the block ends, rolled back when it raises."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def put(self, samples: Sequence[QueuedSample]) -> int:
        now = self.now_ms()
        rows = [(s.key, s.encode(), now) for s in samples]
        with self._tx():
            self._db.executemany("INSERT INTO entries (key, payload, enqueued_ms) VALUES (?, ?, ?)", rows)
        return len(rows)

    def take(self, consumer: str, max_n: int, block_ms: int = 0) -> list[Delivery]:
        deadline = time.monotonic() + block_ms / 1000
        while True:
            out = self._take_once(consumer, max_n)
            if out or time.monotonic() >= deadline:
                return out
            time.sleep(min(0.02, max(0.0, deadline - time.monotonic())))

    def _take_once(self, consumer: str, max_n: int) -> list[Delivery]:
        now = self.now_ms()
        with self._tx():
            rows = self._db.execute(
                "SELECT seq, payload, deliveries FROM entries WHERE state = 1 AND delivered_ms <= ? ORDER BY seq LIMIT ?",
                (now - self.reclaim_ms, max_n),
            ).fetchall()
            if len(rows) < max_n:
                rows += self._db.execute(
                    "SELECT seq, payload, deliveries FROM entries WHERE state = 0 ORDER BY seq LIMIT ?", (max_n - len(rows),)
                ).fetchall()
            self._db.executemany(
                "UPDATE entries SET state = 1, consumer = ?, delivered_ms = ?, deliveries = deliveries + 1 WHERE seq = ?",
                [(consumer, now, seq) for seq, _, _ in rows],
            )
        return [Delivery(str(seq), QueuedSample.decode(payload), n + 1) for seq, payload, n in rows]

    def ack(self, consumer: str, ids: Iterable[str]) -> int:
        seqs = [(int(i),) for i in ids]
        with self._tx():
            cursor = self._db.executemany("DELETE FROM entries WHERE seq = ? AND state = 1", seqs)
            acked = int(cursor.rowcount)
            self._db.execute("UPDATE counters SET value = value + ? WHERE name = 'acked'", (acked,))
        return acked

    def mark_done(self, keys: Iterable[str]) -> None:
        now = self.now_ms()
        with self._tx():
            self._db.executemany("INSERT OR IGNORE INTO done (key, done_ms) VALUES (?, ?)", [(k, now) for k in keys])

    def done(self, keys: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            marks = ",".join("?" * len(chunk))
            found.update(k for (k,) in self._db.execute(f"SELECT key FROM done WHERE key IN ({marks})", chunk))
        return found

    def counts(self) -> dict[str, int]:
        by_state = dict(self._db.execute("SELECT state, COUNT(*) FROM entries GROUP BY state").fetchall())
        (done,) = self._db.execute("SELECT COUNT(*) FROM done").fetchone()
        (acked,) = self._db.execute("SELECT value FROM counters WHERE name = 'acked'").fetchone()
        return {"new": by_state.get(0, 0), "pending": by_state.get(1, 0), "acked": int(acked) + by_state.get(2, 0),
                "done": int(done)}  # fmt: skip

    def purge(self) -> int:
        """Remove the acked rows an older file still holds, counted (the done keys stay: the idempotency record)."""
        with self._tx():
            cursor = self._db.execute("DELETE FROM entries WHERE state = 2")
            self._db.execute("UPDATE counters SET value = value + ? WHERE name = 'acked'", (cursor.rowcount,))
        return int(cursor.rowcount)

    def close(self) -> None:
        self._db.close()
