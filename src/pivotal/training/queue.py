"""A durable queue of training samples between the serving side (producers) and the trainer process (the consumer).

Semantics, the same for every backend:

- **At-least-once delivery.** ``take`` hands out entries; an entry stays *pending* (owned by that consumer) until
  ``ack``. A pending entry whose consumer died (no ack within ``reclaim_ms``) is handed out again, to whoever takes
  next. Nothing is lost when a trainer is killed.
- **Idempotent consumption by sample key.** A sample counts as trained once its key is in the queue's *done* set
  (``mark_done``); ``done`` answers which keys are. The trainer skips (and acks) delivered samples already done, so a
  redelivery after a crash never trains the same sample twice into one lineage (see ``training.online`` for the
  order of publish / mark-done / ack that makes this hold at every crash point).

Backends (one per file): ``queue_embedded.SqliteSampleQueue`` (the default; a SQLite file, no server) and
``queue_redis.RedisSampleQueue`` (Redis Streams with a consumer group). ``open_queue`` picks one from a URL.

A ``QueuedSample`` carries one encoded model input and its targets (``models.protocol`` conventions), plus when its
label became known (``known_at``): the newest ``known_at`` a checkpoint was trained on is its *trained through* time,
from which staleness is measured. Arrays travel as ``.npz`` bytes (no pickle).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import torch

from pivotal.core.errors import UserInputError
from pivotal.core.vocabulary import ACTIONS
from pivotal.models.protocol import Batch
from pivotal.training.live_samples import LivePivotSample

if TYPE_CHECKING:
    from pivotal.training.dataset import SampleSet
    from pivotal.training.outcomes import Outcome

ARRAYS = ("windows", "context", "kind", "price", "bars", "action")
DEFAULT_RECLAIM_MS = 30_000


@dataclass(frozen=True)
class QueuedSample:
    """One training sample. ``key`` identifies it across redeliveries (e.g. ``symbol|tf|L2|H|pivot_ts``)."""

    key: str
    symbol: str
    timeframe: str
    as_of: int  # epoch ms: the input's as-of time
    known_at: int  # epoch ms: when its label became known (>= as_of)
    arrays: dict[str, np.ndarray] = field(repr=False)

    def __post_init__(self) -> None:
        missing = [a for a in ARRAYS if a not in self.arrays]
        if missing or not self.key:
            raise ValueError(f"sample {self.key!r}: key must be non-empty and arrays must hold {ARRAYS} (missing {missing})")
        if self.known_at < self.as_of:
            raise ValueError(f"sample {self.key!r}: known_at {self.known_at} is before as_of {self.as_of}")

    def encode(self) -> bytes:
        buffer = io.BytesIO()
        meta = np.array([self.key, self.symbol, self.timeframe, str(self.as_of), str(self.known_at)])
        arrays: dict[str, Any] = {name: np.asarray(self.arrays[name]) for name in ARRAYS}
        np.savez(buffer, _meta=meta, **arrays)
        return buffer.getvalue()

    @classmethod
    def decode(cls, blob: bytes) -> QueuedSample:
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            key, symbol, timeframe, as_of, known_at = (str(x) for x in npz["_meta"])
            arrays = {name: npz[name] for name in ARRAYS}
        return cls(key, symbol, timeframe, int(as_of), int(known_at), arrays)


@dataclass(frozen=True)
class Delivery:
    """A sample handed to a consumer; ``ack`` it (by ``id``) once it is trained or skipped. ``deliveries`` counts how
    often it was handed out (> 1: a redelivery after a consumer died)."""

    id: str
    sample: QueuedSample
    deliveries: int = 1


@runtime_checkable
class SampleQueue(Protocol):
    """One stream of samples with one consumer group (see the module doc for the delivery semantics)."""

    def put(self, samples: Sequence[QueuedSample]) -> int:
        """Append samples durably; returns how many were appended."""
        ...

    def take(self, consumer: str, max_n: int, block_ms: int = 0) -> list[Delivery]:
        """Up to ``max_n`` entries for ``consumer``: pending ones of dead consumers (idle > reclaim_ms) first, then new
        ones; waits up to ``block_ms`` when there are none."""
        ...

    def ack(self, consumer: str, ids: Iterable[str]) -> int:
        """Entries done with (trained or skipped); they are never delivered again."""
        ...

    def mark_done(self, keys: Iterable[str]) -> None:
        """Sample keys now trained into a published checkpoint (idempotent)."""
        ...

    def done(self, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` are done."""
        ...

    def counts(self) -> dict[str, int]:
        """``entries`` (appended, not yet acked or acked but kept), ``pending`` (delivered, not acked), ``done`` keys."""
        ...

    def close(self) -> None: ...


def to_batch(samples: Sequence[QueuedSample]) -> Batch:
    """Stack samples into a model ``Batch`` (windows as float32)."""
    if not samples:
        raise ValueError("no samples to batch")
    return {
        name: torch.from_numpy(np.stack([np.asarray(s.arrays[name]) for s in samples]).astype(_dtype(name))) for name in ARRAYS
    }


def _dtype(name: str) -> type:
    return np.int64 if name in ("kind", "action") else np.float32


def samples_from_set(
    samples: SampleSet, rows: Sequence[int], symbol: str, timeframe: str, known_at_ms: Sequence[int], key_prefix: str = ""
) -> list[QueuedSample]:
    """``QueuedSample``s from rows of a ``training.dataset.SampleSet`` (``known_at_ms``: when each row's labels became
    known, epoch ms); the key is ``prefix|symbol|timeframe|as_of``."""
    out = []
    for row, known in zip(rows, known_at_ms, strict=True):
        as_of = int(samples.time[row])
        arrays = {name: np.asarray(getattr(samples, name)[row]) for name in ARRAYS}
        key = f"{key_prefix}|{symbol}|{timeframe}|{as_of}" if key_prefix else f"{symbol}|{timeframe}|{as_of}"
        out.append(QueuedSample(key, symbol, timeframe, as_of, max(int(known), as_of), arrays))
    return out


def from_live_pivot(sample: LivePivotSample, windows: np.ndarray, context: np.ndarray, levels: int) -> QueuedSample:
    """The queue form of a live pivot sample (``training.live_samples``): its input encoded as of ``sample.as_of``
    (``windows``, ``context``: the ``features.encoding`` arrays, as inference encodes them) and the reference's target,
    the action (SELL at a high pivot, BUY at a low one); the pivot heads' targets are unknown (masked)."""
    arrays: dict[str, np.ndarray] = {
        "windows": np.asarray(windows, np.float16),
        "context": np.asarray(context, np.float32),
        "kind": np.full(levels, -1, np.int64),
        "price": np.full(levels, np.nan, np.float32),
        "bars": np.full(levels, np.nan, np.float32),
        "action": np.array(ACTIONS.index(sample.action), np.int64),
    }
    key = "|".join(str(part) for part in sample.key)
    return QueuedSample(key, sample.symbol, sample.timeframe, sample.as_of, sample.known_at, arrays)


def from_pivot_outcome(
    outcome: Outcome, windows: np.ndarray, context: np.ndarray, levels: int, key_prefix: str = "outcome"
) -> QueuedSample:
    """The queue form of a resolved pivot outcome (``training.outcomes``, target ``pivot_L<l>``): the input the
    prediction was made from (``windows``, ``context``, encoded as of its as-of time) and the truth that settled it,
    as offline labels hold it (level ``l``'s kind 0 high / 1 low, log offset, bars until); the other levels and the
    action are unknown (masked). Known at the outcome's ``known_at``: the pivot heads learn from their own
    predictions' outcomes, never before those outcomes are final."""
    suffix = outcome.label.target.removeprefix("pivot_L")
    level = int(suffix) if suffix.isdigit() and suffix != outcome.label.target else 0
    if not 1 <= level <= levels or outcome.label.direction == 0:
        target, direction = outcome.label.target, outcome.label.direction
        raise ValueError(f"{target} (direction {direction}) is not a pivot outcome of levels 1..{levels}")
    kind = np.full(levels, -1, np.int64)
    price = np.full(levels, np.nan, np.float32)
    bars = np.full(levels, np.nan, np.float32)
    kind[level - 1] = 0 if outcome.label.direction > 0 else 1
    price[level - 1] = outcome.label.value
    until = float(outcome.label.extra.get("bars_until", -1.0))
    bars[level - 1] = until if until >= 0 else np.nan
    arrays: dict[str, np.ndarray] = {
        "windows": np.asarray(windows, np.float16),
        "context": np.asarray(context, np.float32),
        "kind": kind,
        "price": price,
        "bars": bars,
        "action": np.array(-1, np.int64),
    }
    key = f"{key_prefix}|{outcome.symbol}|{outcome.timeframe}|L{level}|{outcome.as_of}"
    return QueuedSample(key, outcome.symbol, outcome.timeframe, outcome.as_of, outcome.known_at, arrays)


def open_queue(url: str, reclaim_ms: int = DEFAULT_RECLAIM_MS) -> SampleQueue:
    """``sqlite:PATH`` (or a plain path) → the embedded queue; ``redis://HOST:PORT/DB?stream=NAME`` → Redis Streams."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        from pivotal.training.queue_redis import RedisSampleQueue

        return RedisSampleQueue.from_url(url, reclaim_ms=reclaim_ms)
    path = url.removeprefix("sqlite:")
    if not path:
        raise UserInputError(f"queue {url!r}: give sqlite:PATH or redis://HOST:PORT/DB?stream=NAME")
    from pivotal.training.queue_embedded import SqliteSampleQueue

    return SqliteSampleQueue(Path(path), reclaim_ms=reclaim_ms)
