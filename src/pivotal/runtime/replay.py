"""Replay sessions (COBY's ReplayManager): a recorded feed played back as if live — create, start, pause, resume,
seek, set speed, stop, status — with the same event types a live feed emits.

Pacing keeps the original timing: at speed s an event ``known_at`` later than the anchor by d ms is emitted d/s ms of
the injected :class:`~pivotal.core.clock.Clock` after it. The anchor is (clock time, *virtual* market time): pausing
freezes virtual time and resuming continues from it, a speed change keeps it continuous, and a seek or start emits
the first event at once. Speed 0 means as fast as possible (no pacing); otherwise 0.1x to 100x.

Waiting goes through an injected sleeper (milliseconds). With a ``SimulatedClock`` and no sleeper the session
advances that clock, so tests run instantly and can assert exact emission times; with the wall clock it waits in
slices of at most ``max_sleep_ms`` that any control call interrupts. Control methods are thread-safe (an API thread
may call them while ``start()``'s thread plays); the consumer (``sink``) runs outside the lock, so a control call
never waits for it. An exception from the sink fails the session (status FAILED with the message).

The window is ``start <= known_at <= end`` (either open when None).
"""

from __future__ import annotations

import contextlib
import math
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from pivotal.core.clock import Clock, SimulatedClock, WallClock
from pivotal.core.errors import UserInputError
from pivotal.core.events import MarketEvent
from pivotal.runtime.feed import Feed

MIN_SPEED, MAX_SPEED = 0.1, 100_000.0  # 100,000x: an hourly bar every 36 ms, a daily bar every 0.9 s

Sink = Callable[[MarketEvent], None]
Sleeper = Callable[[int], None]  # milliseconds


class ReplayStatus(StrEnum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    COMPLETED = "completed"
    FAILED = "failed"


_ENDED = (ReplayStatus.STOPPED, ReplayStatus.COMPLETED, ReplayStatus.FAILED)


def check_speed(speed: float) -> float:
    """``speed`` if it is 0 (as fast as possible) or in [0.1, 100]; else a one-line UserInputError."""
    speed = float(speed)
    if speed == 0 or MIN_SPEED <= speed <= MAX_SPEED:
        return speed
    raise UserInputError(f"replay speed {speed:g} is out of range; use 0 (as fast as possible) or {MIN_SPEED:g} to {MAX_SPEED:g}")


@dataclass(frozen=True)
class ReplayState:
    """A snapshot of one session (COBY's ReplaySession fields); times are epoch ms, None when not yet reached."""

    session_id: str
    status: ReplayStatus
    start: int | None
    end: int | None
    current_time: int | None  # known_at of the last emitted event
    speed: float
    events_replayed: int
    total_events: int | None  # in the window from its start (None when the feed cannot say)
    progress: float  # 0..1 of the window's time span
    created_at: int
    started_at: int | None = None
    paused_at: int | None = None
    stopped_at: int | None = None
    completed_at: int | None = None
    error_message: str | None = None


class ReplaySession:
    """One recorded feed played into ``sink`` (see the module docstring for pacing and threading)."""

    def __init__(
        self,
        feed: Feed,
        sink: Sink,
        *,
        start: int | None = None,
        end: int | None = None,
        speed: float = 0.0,
        clock: Clock | None = None,
        sleep: Sleeper | None = None,
        session_id: str | None = None,
        max_sleep_ms: int = 250,
    ) -> None:
        if start is not None and end is not None and start > end:
            raise UserInputError(f"replay window is empty: start {start} is after end {end}")
        self.feed, self.sink = feed, sink
        self.start_ms, self.end_ms = start, end
        self.session_id = session_id or uuid.uuid4().hex[:12]
        self.clock: Clock = clock or WallClock()
        self._interrupt = threading.Event()
        if sleep is None:
            sleep = self.clock.advance if isinstance(self.clock, SimulatedClock) else self._wall_sleep
        self._sleep = sleep
        self._max_sleep = max(1, int(max_sleep_ms))
        self._lock = threading.RLock()  # the condition's lock, taken directly (a C-level context manager) per event
        self._cond = threading.Condition(self._lock)
        self._speed = check_speed(speed)
        self._status = ReplayStatus.CREATED
        self._anchor: tuple[int, float] | None = None  # (clock ms, virtual market ms)
        self._pending: MarketEvent | None = None
        self._seek: int | None = None
        self._current: int | None = None
        self._count = 0
        self._times: dict[str, int | None] = {"created": self.clock.now_ms(), "started": None, "paused": None,
                                               "stopped": None, "completed": None}  # fmt: skip
        self._error: str | None = None
        self._thread: threading.Thread | None = None
        span = feed.span()
        self._span = None if span is None else (max(span[0], start or span[0]), min(span[1], end if end is not None else span[1]))
        total = feed.count(start)
        if total is not None and end is not None:
            after = feed.count(end + 1)
            total = None if after is None else total - after
        self._total = total

    # -- control (thread-safe) -------------------------------------------------------------------------------------
    def start(self) -> None:
        """Play in a background thread; returns at once (``join`` waits for the end)."""
        with self._cond:
            self._begin()
            self._thread = threading.Thread(target=self._play_quietly, name=f"replay-{self.session_id}", daemon=True)
        self._thread.start()

    def run(self) -> ReplayState:
        """Play in the calling thread until the window ends or ``stop``; the sink's exception propagates."""
        with self._cond:
            self._begin()
        self._play()
        return self.status()

    def pause(self) -> None:
        with self._cond:
            if self._status is ReplayStatus.RUNNING:
                now = self.clock.now_ms()
                self._anchor = None if self._anchor is None else (now, self._virtual(now))
                self._status, self._times["paused"] = ReplayStatus.PAUSED, now
                self._wake()

    def resume(self) -> None:
        with self._cond:
            if self._status is ReplayStatus.PAUSED:
                now = self.clock.now_ms()
                self._anchor = None if self._anchor is None else (now, self._anchor[1])  # virtual time went on hold
                self._status = ReplayStatus.RUNNING
                self._wake()

    def set_speed(self, speed: float) -> None:
        speed = check_speed(speed)
        with self._cond:
            now = self.clock.now_ms()
            if speed == 0:
                self._anchor = None
            elif self._anchor is not None and self._speed > 0:
                virtual = self._virtual(now) if self._status is ReplayStatus.RUNNING else self._anchor[1]
                self._anchor = (now, virtual)
            self._speed = speed
            self._wake()

    def seek(self, t: int) -> None:
        """Continue from the first event with ``known_at >= t`` (emitted at once); ``t`` must lie in the window."""
        with self._cond:
            if self._status in _ENDED:
                raise UserInputError(f"replay {self.session_id} has ended ({self._status}); create a new session")
            lo = self.start_ms if self.start_ms is not None else (self._span[0] if self._span else None)
            hi = self.end_ms if self.end_ms is not None else (self._span[1] if self._span else None)
            if (lo is not None and t < lo) or (hi is not None and t > hi):
                raise UserInputError(f"seek time {t} is outside the replay window [{lo}, {hi}]")
            self._seek, self._anchor = int(t), None
            self._wake()

    def stop(self) -> None:
        with self._cond:
            if self._status not in _ENDED:
                self._status, self._times["stopped"] = ReplayStatus.STOPPED, self.clock.now_ms()
                self._wake()

    def join(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def status(self) -> ReplayState:
        with self._cond:
            span, current = self._span, self._current
            if span is None or current is None:
                progress = 1.0 if self._status is ReplayStatus.COMPLETED else 0.0
            else:
                progress = 1.0 if span[1] <= span[0] else min(1.0, max(0.0, (current - span[0]) / (span[1] - span[0])))
            t = self._times
            return ReplayState(
                self.session_id, self._status, self.start_ms, self.end_ms, current, self._speed, self._count, self._total,
                progress, t["created"] or 0, t["started"], t["paused"], t["stopped"], t["completed"], self._error,
            )  # fmt: skip

    # -- the loop ---------------------------------------------------------------------------------------------------
    def _begin(self) -> None:
        if self._status is not ReplayStatus.CREATED:
            raise UserInputError(f"replay {self.session_id} was already started ({self._status})")
        self._status, self._times["started"] = ReplayStatus.RUNNING, self.clock.now_ms()

    def _play_quietly(self) -> None:
        with contextlib.suppress(Exception):  # recorded in the status as FAILED with its message
            self._play()

    def _play(self) -> None:
        try:
            self._loop()
        except Exception as exc:
            with self._cond:
                self._status, self._error = ReplayStatus.FAILED, str(exc) or type(exc).__name__
                self._times["stopped"] = self.clock.now_ms()
            raise

    def _loop(self) -> None:
        events: Iterator[MarketEvent] = self.feed.events(self.start_ms)
        while True:
            if not self._speed:
                self._drain(events)
            with self._cond:
                while self._status is ReplayStatus.PAUSED:
                    self._cond.wait()
                if self._status is not ReplayStatus.RUNNING:
                    return
                if self._seek is not None:
                    events, self._pending, self._seek = self.feed.events(self._seek), None, None
                if self._pending is None:
                    self._pending = next(events, None)
                event = self._pending
                if event is None or (self.end_ms is not None and event.known_at > self.end_ms):
                    self._status, self._times["completed"] = ReplayStatus.COMPLETED, self.clock.now_ms()
                    return
                wait = 0
                if self._speed > 0:
                    now = self.clock.now_ms()
                    if self._anchor is None:
                        self._anchor = (now, float(event.known_at))
                    wall, virtual = self._anchor
                    due = wall + math.ceil((event.known_at - virtual) / self._speed)
                    wait = min(due - now, self._max_sleep)
                if wait <= 0:
                    self._pending, self._current = None, event.known_at
                    self._count += 1
            if wait > 0:
                self._sleep(wait)
                continue
            self.sink(event)

    def _drain(self, events: Iterator[MarketEvent]) -> None:
        """Speed 0's fast path: emit events back to back while the session runs at speed 0 with no seek and no held
        event (rechecked under the lock before each event, so a control call acts before the next event, as in
        ``_loop``). Returns to ``_loop`` for everything else: pause, stop, seek, a speed change, the window's end."""
        lock, sink, end, running = self._lock, self.sink, self.end_ms, ReplayStatus.RUNNING
        while True:
            with lock:
                if self._status is not running or self._seek is not None or self._pending is not None or self._speed:
                    return
                event = next(events, None)
                if event is None or (end is not None and event.known_at > end):
                    self._pending = event  # ``_loop`` ends the session on it
                    return
                self._current = event.known_at
                self._count += 1
            sink(event)

    def _virtual(self, now: int) -> float:
        """Market time reached at clock time ``now`` (never past the event waiting to be emitted)."""
        assert self._anchor is not None
        wall, virtual = self._anchor
        reached = virtual + (now - wall) * self._speed
        pending = self._pending
        return min(reached, float(pending.known_at)) if pending is not None else reached

    def _wake(self) -> None:
        self._cond.notify_all()
        self._interrupt.set()

    def _wall_sleep(self, ms: int) -> None:
        self._interrupt.wait(ms / 1000)
        self._interrupt.clear()


class ReplayManager:
    """Sessions by id (COBY's create_replay_session / get_replay_status), for the API to come."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, ReplaySession] = {}

    def create(self, feed: Feed, sink: Sink, **options: object) -> str:
        session = ReplaySession(feed, sink, **options)  # type: ignore[arg-type]
        with self._lock:
            self._sessions[session.session_id] = session
        return session.session_id

    def get(self, session_id: str) -> ReplaySession:
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None:
            raise UserInputError(f"no replay session {session_id!r}; list them with ReplayManager.sessions()")
        return session

    def sessions(self) -> list[ReplayState]:
        with self._lock:
            return [s.status() for s in self._sessions.values()]

    def delete(self, session_id: str) -> None:
        self.get(session_id).stop()
        with self._lock:
            self._sessions.pop(session_id, None)
