"""The feed protocol: one ordered stream of timestamped market events, the same types historical and live.

A feed yields :mod:`pivotal.core.events` (``BarClosed``, ``TradeTick``, ``BookUpdate``) in ``known_at`` order; a bar
is emitted only once closed. ``events(start)`` begins at the first event with ``known_at >= start``, which is how a
replay seeks and how a restarted node resumes. ``span()`` is the feed's first and last ``known_at`` (None for an
empty or endless feed) and ``count(start)`` the number of events from ``start`` (None when unknown, e.g. live).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from pivotal.core.events import MarketEvent


@runtime_checkable
class Feed(Protocol):
    def events(self, start: int | None = None) -> Iterator[MarketEvent]:
        """Events with ``known_at >= start`` (all when None), in ``known_at`` order with the feed's documented ties."""
        ...

    def span(self) -> tuple[int, int] | None:
        """First and last ``known_at`` (None when empty or unbounded)."""
        ...

    def count(self, start: int | None = None) -> int | None:
        """How many events ``events(start)`` yields (None when unknown)."""
        ...
