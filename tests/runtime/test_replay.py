"""Replay sessions: exact pacing on a simulated clock (speed, pause/resume, set speed, seek), control from another
thread, status fields, failures."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from pivotal.core.clock import SimulatedClock
from pivotal.core.errors import UserInputError
from pivotal.core.events import MarketEvent
from pivotal.data.candles import Candles
from pivotal.runtime.feeds.historical import HistoricalFeed
from pivotal.runtime.replay import ReplayManager, ReplaySession, ReplayStatus, check_speed

pytestmark = pytest.mark.unit

MIN = 60_000
T0 = 1_700_000_000_000  # wall time the simulated clock starts at


def feed(n: int = 5) -> HistoricalFeed:
    ts = np.arange(n, dtype=np.int64) * MIN
    p = 100.0 + np.arange(n)
    return HistoricalFeed([Candles(ts, p, p + 1, p - 1, p, np.ones(n), "binance", "BTC/USDT", "1m")])


class Recorder:
    def __init__(self, clock: SimulatedClock) -> None:
        self.clock, self.seen = clock, []

    def __call__(self, event: MarketEvent) -> None:
        self.seen.append((self.clock.now_ms() - T0, event.known_at))


@pytest.mark.parametrize(("speed", "gap"), [(1.0, MIN), (2.0, MIN // 2), (0.1, 10 * MIN), (100.0, 600), (0.0, 0)])
def test_pacing_keeps_the_original_timing_scaled_by_speed(speed: float, gap: int) -> None:
    clock = SimulatedClock(T0)
    rec = Recorder(clock)
    state = ReplaySession(feed(), rec, speed=speed, clock=clock).run()
    assert rec.seen == [(i * gap, (i + 1) * MIN) for i in range(5)]
    assert state.status is ReplayStatus.COMPLETED and state.events_replayed == 5 and state.total_events == 5
    assert state.progress == 1.0 and state.current_time == 5 * MIN


def test_pause_freezes_market_time_and_resume_continues_it() -> None:
    clock = SimulatedClock(T0)
    calls = []

    def sleep(ms: int) -> None:  # the session waits in 10 s slices; during the second one the user pauses 100 s
        clock.advance(ms)
        calls.append(ms)
        if len(calls) == 2:
            session.pause()
            assert session.status().status is ReplayStatus.PAUSED
            clock.advance(100_000)
            session.resume()

    rec = Recorder(clock)
    session = ReplaySession(feed(2), rec, speed=1.0, clock=clock, sleep=sleep, max_sleep_ms=10_000)
    session.run()
    # 20 s of market time before the pause, 100 s paused, the remaining 40 s after it
    assert rec.seen == [(0, MIN), (160_000, 2 * MIN)]
    assert session.status().paused_at == T0 + 20_000


def test_set_speed_mid_wait_keeps_market_time_continuous() -> None:
    clock = SimulatedClock(T0)

    def sleep(ms: int) -> None:
        clock.advance(ms)
        if clock.now_ms() - T0 == 30_000:
            session.set_speed(2.0)  # 30 s of the 60 s gap done at 1x; the other 30 s at 2x take 15 s

    rec = Recorder(clock)
    session = ReplaySession(feed(3), rec, speed=1.0, clock=clock, sleep=sleep, max_sleep_ms=10_000)
    session.run()
    assert rec.seen == [(0, MIN), (45_000, 2 * MIN), (75_000, 3 * MIN)]
    assert session.status().speed == 2.0


def test_seek_jumps_and_emits_at_once_then_paces_again() -> None:
    clock = SimulatedClock(T0)
    rec = Recorder(clock)

    def sink(event: MarketEvent) -> None:
        rec(event)
        if event.known_at == MIN:
            session.seek(4 * MIN)

    session = ReplaySession(feed(6), sink, speed=1.0, clock=clock)
    state = session.run()
    assert rec.seen == [(0, MIN), (0, 4 * MIN), (MIN, 5 * MIN), (2 * MIN, 6 * MIN)]
    assert state.events_replayed == 4
    with pytest.raises(UserInputError, match="has ended"):
        session.seek(MIN)


def test_speed_zero_hands_over_to_pacing_seek_and_the_window_end_and_back() -> None:
    """Speed 0's fast path gives way before the next event to a speed change, a seek and the window's end, exactly
    as the paced loop does (control calls from the sink, a simulated clock)."""
    clock = SimulatedClock(T0)
    rec = Recorder(clock)
    done: set[int] = set()

    def sink(event: MarketEvent) -> None:
        rec(event)
        t = event.known_at
        if t in done:
            return
        done.add(t)
        if t == 2 * MIN:
            session.set_speed(1.0)  # the next event starts the pacing at once, the one after waits 60 s
        elif t == 4 * MIN:
            session.set_speed(0)
        elif t == 5 * MIN:
            session.seek(2 * MIN)  # back: 2..5 again (at speed 0, no second speed change), then on to the end

    session = ReplaySession(feed(9), sink, end=7 * MIN, clock=clock)
    state = session.run()
    assert rec.seen == [(0, MIN), (0, 2 * MIN), (0, 3 * MIN)] + [(MIN, k * MIN) for k in (4, 5, 2, 3, 4, 5, 6, 7)]
    assert state.status is ReplayStatus.COMPLETED and state.events_replayed == 11 and state.current_time == 7 * MIN
    assert state.completed_at == T0 + MIN and state.speed == 0 and state.total_events == 7


def test_seek_outside_the_window_is_refused() -> None:
    session = ReplaySession(feed(), lambda e: None, start=2 * MIN, end=4 * MIN, clock=SimulatedClock(T0))
    with pytest.raises(UserInputError, match=r"outside the replay window \[120000, 240000\]"):
        session.seek(5 * MIN)
    state = session.run()
    assert state.events_replayed == 3 and state.total_events == 3  # known_at 2, 3 and 4 minutes


def test_stop_ends_the_session_and_a_session_starts_once() -> None:
    clock = SimulatedClock(T0)
    seen: list[int] = []

    def sink(event: MarketEvent) -> None:
        seen.append(event.known_at)
        if len(seen) == 3:
            session.stop()

    session = ReplaySession(feed(), sink, clock=clock)
    state = session.run()
    assert seen == [MIN, 2 * MIN, 3 * MIN] and state.status is ReplayStatus.STOPPED and state.stopped_at == T0
    with pytest.raises(UserInputError, match="already started"):
        session.run()


def test_a_failing_sink_fails_the_session_with_its_message() -> None:
    def sink(event: MarketEvent) -> None:
        raise UserInputError("boom at the consumer")

    session = ReplaySession(feed(), sink, clock=SimulatedClock(T0))
    with pytest.raises(UserInputError):
        session.run()
    state = session.status()
    assert state.status is ReplayStatus.FAILED and state.error_message == "boom at the consumer"


def test_speed_limits() -> None:
    assert check_speed(0) == 0 and check_speed(0.1) == 0.1 and check_speed(3600) == 3600 and check_speed(100_000) == 100_000
    for bad in (0.05, 100_001, -1):
        with pytest.raises(UserInputError, match=r"use 0 \(as fast as possible\) or 0\.1 to 100000$"):
            check_speed(bad)


def test_control_from_another_thread() -> None:
    """An API thread pauses while the replay thread is inside the sink; the replay holds until resumed."""
    at_third, release = threading.Event(), threading.Event()
    seen: list[int] = []

    def sink(event: MarketEvent) -> None:
        seen.append(event.known_at)
        if len(seen) == 3:
            at_third.set()
            assert release.wait(30)

    manager = ReplayManager()
    sid = manager.create(feed(50), sink)  # wall clock, speed 0
    session = manager.get(sid)
    session.start()
    assert at_third.wait(30)
    session.pause()  # does not wait for the sink
    release.set()
    for _ in range(3000):  # the replay thread parks on its condition once the sink returns
        if session.status().events_replayed == 3 and session.status().status is ReplayStatus.PAUSED:
            break
        threading.Event().wait(0.01)
    assert session.status().status is ReplayStatus.PAUSED and len(seen) == 3
    session.resume()
    session.join(30)
    state = manager.sessions()[0]
    assert state.status is ReplayStatus.COMPLETED and state.events_replayed == 50 and len(seen) == 50
    manager.delete(sid)
    with pytest.raises(UserInputError, match="no replay session"):
        manager.get(sid)
