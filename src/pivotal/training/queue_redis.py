"""``RedisSampleQueue``: the sample queue on Redis Streams (``training.queue`` semantics), for a trainer on another
machine or a Ray actor.

One stream (``XADD``) with one consumer group (``XGROUP CREATE ... MKSTREAM``); ``take`` first reclaims entries
pending longer than ``reclaim_ms`` with ``XAUTOCLAIM`` (their consumer died), then reads new ones with
``XREADGROUP ... >``; ``ack`` is ``XACK`` (and ``XDEL``: an acked entry is never needed again). The done keys are a
Redis set ``<stream>:done``. Durability is Redis's own (AOF/RDB as configured on the server).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from pivotal.training.queue import DEFAULT_RECLAIM_MS, Delivery, QueuedSample

DEFAULT_STREAM = "pivotal:samples"
DEFAULT_GROUP = "trainers"


class RedisSampleQueue:
    """The Redis Streams ``SampleQueue`` (see the module doc)."""

    def __init__(
        self, client: Any, stream: str = DEFAULT_STREAM, group: str = DEFAULT_GROUP, reclaim_ms: int = DEFAULT_RECLAIM_MS
    ) -> None:
        import redis

        self.client = client
        self.stream = stream
        self.group = group
        self.reclaim_ms = reclaim_ms
        self.done_key = f"{stream}:done"
        try:
            client.xgroup_create(stream, group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    @classmethod
    def from_url(cls, url: str, reclaim_ms: int = DEFAULT_RECLAIM_MS) -> RedisSampleQueue:
        """``redis://HOST:PORT/DB?stream=NAME&group=NAME``."""
        import redis

        parts = urlsplit(url)
        query = parse_qs(parts.query)
        stream = query.get("stream", [DEFAULT_STREAM])[0]
        group = query.get("group", [DEFAULT_GROUP])[0]
        client = redis.Redis.from_url(urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")))
        return cls(client, stream, group, reclaim_ms)

    def __repr__(self) -> str:
        return f"RedisSampleQueue(stream={self.stream!r}, group={self.group!r})"

    def put(self, samples: Sequence[QueuedSample]) -> int:
        pipe = self.client.pipeline(transaction=True)
        for s in samples:
            pipe.xadd(self.stream, {b"key": s.key.encode(), b"sample": s.encode()})
        pipe.execute()
        return len(samples)

    def take(self, consumer: str, max_n: int, block_ms: int = 0) -> list[Delivery]:
        out = self._reclaim(consumer, max_n)
        if len(out) < max_n:
            block = block_ms if (block_ms > 0 and not out) else None
            reply = self.client.xreadgroup(self.group, consumer, {self.stream: ">"}, count=max_n - len(out), block=block)
            for _, entries in reply or []:
                out += [self._delivery(entry_id, fields, 1) for entry_id, fields in entries if fields]
        return out

    def _reclaim(self, consumer: str, max_n: int) -> list[Delivery]:
        claimed = self.client.xautoclaim(self.stream, self.group, consumer, self.reclaim_ms, start_id="0-0", count=max_n)
        entries = claimed[1] if claimed else []
        if not entries:
            return []
        counts = {
            _text(p["message_id"]): int(p["times_delivered"])
            for p in self.client.xpending_range(self.stream, self.group, "-", "+", max(len(entries), 1) * 4, consumer)
        }
        return [self._delivery(i, f, counts.get(_text(i), 2)) for i, f in entries if f]

    @staticmethod
    def _delivery(entry_id: Any, fields: dict[Any, Any], deliveries: int) -> Delivery:
        return Delivery(_text(entry_id), QueuedSample.decode(fields[b"sample"]), deliveries)

    def ack(self, consumer: str, ids: Iterable[str]) -> int:
        ids = list(ids)
        if not ids:
            return 0
        pipe = self.client.pipeline(transaction=True)
        pipe.xack(self.stream, self.group, *ids)
        pipe.xdel(self.stream, *ids)
        acked, _ = pipe.execute()
        return int(acked)

    def mark_done(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        if keys:
            self.client.sadd(self.done_key, *keys)

    def done(self, keys: Sequence[str]) -> set[str]:
        if not keys:
            return set()
        flags = self.client.smismember(self.done_key, list(keys))
        return {k for k, f in zip(keys, flags, strict=True) if f}

    def counts(self) -> dict[str, int]:
        pending = int(self.client.xpending(self.stream, self.group)["pending"])
        length = int(self.client.xlen(self.stream))
        return {"new": max(length - pending, 0), "pending": pending, "acked": 0, "done": int(self.client.scard(self.done_key))}

    def drop(self) -> None:
        """Delete the stream and its done set (tests, or resetting a run)."""
        self.client.delete(self.stream, self.done_key)

    def close(self) -> None:
        self.client.close()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
