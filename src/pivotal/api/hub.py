"""The WebSocket hub: every message gets the next sequence number and goes to every connected client; the last
``buffer`` messages are kept so that a client that reconnects with ``?last_seq=N`` gets what it missed, or
``{"type": "reload"}`` when N fell out of the buffer (the client then reloads its state over HTTP).

``publish(kind, payload)`` may be called from any thread (the backtest workers, later the runtime: closed candles,
pivots, predictions, decisions, orders and fills, breaker trips, training progress). Delivery to a client goes through
its own bounded queue; a client that falls a whole buffer behind is told to reload instead of slowing the others.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

RELOAD: dict[str, Any] = {"type": "reload"}


@dataclass(eq=False)
class Subscriber:
    """One connected client: its queue and the loop that drains it."""

    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[dict[str, Any]]
    lagging: bool = field(default=False)


class Hub:
    """Sequence numbers, a bounded replay buffer and fan-out to subscribers (thread-safe)."""

    def __init__(self, buffer: int = 1000) -> None:
        if buffer < 1:
            raise ValueError("the replay buffer needs at least one message")
        self.buffer_size = buffer
        self._lock = threading.Lock()
        self._seq = 0
        self._buffer: deque[dict[str, Any]] = deque(maxlen=buffer)
        self._subscribers: set[Subscriber] = set()

    @property
    def last_seq(self) -> int:
        return self._seq

    def publish(self, kind: str, payload: Any) -> dict[str, Any]:
        """Number, buffer and send one message; returns it. Safe from any thread."""
        with self._lock:
            self._seq += 1
            message = {"seq": self._seq, "type": kind, "ts": time.time_ns() // 1_000_000, "payload": payload}
            self._buffer.append(message)
            targets = list(self._subscribers)
        for sub in targets:
            try:
                sub.loop.call_soon_threadsafe(self._deliver, sub, message)
            except RuntimeError:  # its loop is closed: the client is gone
                self.unsubscribe(sub)
        return message

    def _deliver(self, sub: Subscriber, message: dict[str, Any]) -> None:
        if sub.lagging:
            return
        try:
            sub.queue.put_nowait(message)
        except asyncio.QueueFull:
            sub.lagging = True  # it fell a whole buffer behind: it must reload, the others go on
            while not sub.queue.empty():
                sub.queue.get_nowait()
            sub.queue.put_nowait(RELOAD)

    def subscribe(self, last_seq: int | None = None) -> tuple[Subscriber, list[dict[str, Any]]]:
        """Register a client (on the running loop) and return what it missed since ``last_seq``: the buffered messages
        after it, ``[RELOAD]`` when some of them are no longer buffered (or N is from before a server restart), nothing
        for a fresh client (None). Taken
        under the lock, so no message falls between the replay and the live stream."""
        sub = Subscriber(asyncio.get_running_loop(), asyncio.Queue(maxsize=self.buffer_size))
        with self._lock:
            self._subscribers.add(sub)
            if last_seq is None or last_seq == self._seq:
                missed: list[dict[str, Any]] = []
            elif last_seq > self._seq:  # a number from before a restart of the server: its state is gone
                missed = [RELOAD]
            else:
                oldest = self._buffer[0]["seq"] if self._buffer else self._seq + 1
                missed = [RELOAD] if last_seq < oldest - 1 or last_seq < 0 else [m for m in self._buffer if m["seq"] > last_seq]
        return sub, missed

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(sub)

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._subscribers)
