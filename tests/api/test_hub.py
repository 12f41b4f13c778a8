"""The hub alone: sequence numbers, bounded replay, reload, and a slow client told to reload instead of holding up
the others."""

from __future__ import annotations

import asyncio
import threading

import pytest

from pivotal.api.hub import RELOAD, Hub


def test_replay_and_reload_boundaries() -> None:
    async def run() -> None:
        hub = Hub(buffer=3)
        for i in range(5):
            assert hub.publish("candle", {"i": i})["seq"] == i + 1  # buffered: 3, 4, 5
        cases = {None: [], 5: [], 4: [5], 2: [3, 4, 5], 1: ["reload"], 6: ["reload"], -1: ["reload"]}
        for last, expected in cases.items():
            sub, missed = hub.subscribe(last)
            assert [m["seq"] if "seq" in m else m["type"] for m in missed] == expected, last
            hub.unsubscribe(sub)
        assert hub.clients == 0

    asyncio.run(run())


def test_publish_from_other_threads_keeps_one_order() -> None:
    async def run() -> None:
        hub = Hub(buffer=1000)
        sub, _ = hub.subscribe()
        threads = [threading.Thread(target=lambda: [hub.publish("fill", {}) for _ in range(100)]) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        got = [(await sub.queue.get())["seq"] for _ in range(400)]
        assert sorted(got) == list(range(1, 401))  # every number once, none lost

    asyncio.run(run())


def test_a_client_a_whole_buffer_behind_is_told_to_reload() -> None:
    async def run() -> None:
        hub = Hub(buffer=3)
        slow, _ = hub.subscribe()
        fast, _ = hub.subscribe()
        for i in range(4):
            hub.publish("candle", {"i": i})
            await asyncio.sleep(0)  # delivery runs on the loop
            if i < 3:
                assert (await fast.queue.get())["seq"] == i + 1
        assert (await fast.queue.get())["seq"] == 4
        assert slow.lagging and slow.queue.qsize() == 1 and slow.queue.get_nowait() == RELOAD

    asyncio.run(run())


def test_buffer_must_hold_something() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Hub(buffer=0)
