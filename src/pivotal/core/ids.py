"""Identifiers. Client order ids are deterministic per run (prefix + sequence) so a replay of the same run produces
the same ids, and a restarted node can find its own orders on the venue by id (idempotent retries)."""

from __future__ import annotations

import itertools
import re
import uuid

_SAFE = re.compile(r"[^A-Za-z0-9_-]")


def new_run_id() -> str:
    """A random run id (12 hex chars)."""
    return uuid.uuid4().hex[:12]


class OrderIdFactory:
    """``<prefix>-<n>``: at most 36 characters of ``[A-Za-z0-9_-]``, which every major venue accepts as a client id."""

    def __init__(self, prefix: str = "pv", start: int = 1) -> None:
        clean = _SAFE.sub("", prefix)[:24]
        if not clean:
            raise ValueError(f"client order id prefix {prefix!r} has no usable characters (letters, digits, _ or -)")
        self.prefix = clean
        self._counter = itertools.count(start)

    def next(self) -> str:
        return f"{self.prefix}-{next(self._counter)}"
