"""The live feed (ccxt.pro, unmodified) against the local test exchange replaying recorded BTC/USDT: closed bars equal
the recorded candles exactly, every bar arrives once through disconnects, duplicated and reordered messages, no open
candle is emitted (lock-step on the exchange clock), the backoff schedule with a fake sleeper, the 24-hour rollover
with a fake clock. Loopback only; every exchange and feed thread is stopped at the end of its test."""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pivotal.core.clock import SimulatedClock
from pivotal.core.events import BarClosed, MarketEvent, TradeTick
from pivotal.data.candles import Candles
from pivotal.data.loaders import load_candles_file
from pivotal.runtime.feed import Feed
from pivotal.runtime.feeds import LiveFeed, LiveFeedError, backoff_delay, live_feed_for
from pivotal.testexchange import Faults, TestExchange
from pivotal.testexchange.tape import SymbolData, load_symbol

pytestmark = pytest.mark.timeout(60)

Make = Callable[..., TestExchange]
MIN = 60_000


@pytest.fixture(scope="module")
def btc_market(shared_data: Path) -> dict[str, SymbolData]:
    return {"BTCUSDT": load_symbol(shared_data, "BTCUSDT", ("1m", "1h"))}


@pytest.fixture(scope="module")
def recorded(shared_data: Path) -> dict[str, Candles]:
    """The recorded candles as stored (read here independently of the test exchange's loader)."""
    return {
        "1m": load_candles_file(shared_data / "binance" / "BTCUSDT-1m-2024.parquet", timeframe="1m"),
        "1h": load_candles_file(shared_data / "binance" / "BTCUSDT-1h-2018-2026.parquet", timeframe="1h"),
    }


@pytest.fixture
def make_exchange(shared_data: Path, btc_market: dict[str, SymbolData]) -> Make:
    def make(**options: Any) -> TestExchange:
        return TestExchange(shared_data, ["BTC/USDT"], preloaded=btc_market, **options)

    return make


@pytest.fixture(autouse=True)
def _nothing_left_running() -> Iterator[None]:
    yield
    alive = [t.name for t in threading.enumerate() if t.name in ("pivotal-testexchange", "pivotal-live-feed")]
    assert alive == [], f"threads still running: {alive}"


class FakeSleeper:
    """Records the backoff waits and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


def collect(feed: LiveFeed, want: Callable[[list[MarketEvent]], bool], timeout_s: float = 20.0) -> list[MarketEvent]:
    events: list[MarketEvent] = []
    while not want(events):
        event = feed.poll(timeout_s)
        assert event is not None, f"no event within {timeout_s} s after {len(events)}; health {feed.health()}"
        events.append(event)
    return events


def bars_of(events: list[MarketEvent], tf: str) -> list[BarClosed]:
    return [e for e in events if isinstance(e, BarClosed) and e.timeframe == tf]


def n_bars(tf: str, n: int) -> Callable[[list[MarketEvent]], bool]:
    return lambda events: len(bars_of(events, tf)) >= n


def assert_recorded(bars: list[BarClosed], candles: Candles, first_close_after: int) -> None:
    """The bars are the recorded candles closing after ``first_close_after``, in order, none missing or repeated."""
    tf_ms = int(candles.ts[1] - candles.ts[0])
    assert candles.ts[-1] + tf_ms > first_close_after
    i = int((candles.ts + tf_ms > first_close_after).argmax())
    expected = [
        (int(candles.ts[k]), float(candles.open[k]), float(candles.high[k]), float(candles.low[k]), float(candles.close[k]),
         float(candles.volume[k]), int(candles.ts[k]) + tf_ms)
        for k in range(i, i + len(bars))
    ]  # fmt: skip
    got = [(b.bar.ts, b.bar.open, b.bar.high, b.bar.low, b.bar.close, b.bar.volume, b.bar.close_ts) for b in bars]
    assert got == expected
    assert [b.known_at for b in bars] == [b.bar.close_ts for b in bars]
    assert [b.bar.index for b in bars] == list(range(len(bars)))


def test_backoff_doubles_from_1_to_60_seconds_with_bounded_jitter() -> None:
    rng = random.Random(3)
    assert [backoff_delay(k, rng, jitter=0.0) for k in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    for k in range(10):
        d = min(60.0, 2.0**k)
        assert 0.8 * d <= backoff_delay(k, rng) <= d


def test_an_open_candle_waits_for_its_close_mark_or_a_later_candle() -> None:
    """The closed rule on hand-written candles (the test exchange sends only closed klines, Binance also sends
    ``x: false`` updates of the open one): values of a candle are emitted only once final and closed."""
    feed = LiveFeed(object(), ["BTC/USDT"], ["1m"])  # never started: the rule alone, no exchange
    stream, key = feed._streams["BTC/USDT"][0], ("BTCUSDT", "1m")
    stream.next_close = 2 * MIN  # the candle opening at 1 min is the next to emit

    def emitted() -> list[tuple[int, float, float]]:
        out = []
        while not feed._queue.empty():
            bar = feed._queue.get_nowait()
            assert isinstance(bar, BarClosed)
            out.append((bar.bar.ts, bar.bar.close, bar.bar.volume))
        return out

    async def run() -> None:
        feed._take_candles(stream, [[MIN, 10.0, 12.0, 9.0, 11.0, 5.0]], key)  # x: false, mid-candle
        await feed._emit_ready(stream)
        assert emitted() == []
        feed._observe(2 * MIN + 500)  # the exchange clock passed the close, but these values may be partial
        await feed._emit_ready(stream)
        assert emitted() == []
        feed._marks.add((*key, MIN))  # the x: true message with the final values
        feed._take_candles(stream, [[MIN, 10.0, 12.0, 8.0, 11.5, 7.0]], key)
        await feed._emit_ready(stream)
        assert emitted() == [(MIN, 11.5, 7.0)]
        feed._take_candles(stream, [[2 * MIN, 11.5, 12.0, 11.0, 11.2, 1.0]], key)  # x: false of the next candle
        await feed._emit_ready(stream)
        assert emitted() == []
        feed._take_candles(stream, [[2 * MIN, 11.5, 12.5, 11.0, 12.0, 3.0], [3 * MIN, 12.0, 12.0, 12.0, 12.0, 0.1]], key)
        await feed._emit_ready(stream)  # a later candle was seen: the earlier one is complete (and closed by then)
        assert emitted() == [(2 * MIN, 12.0, 3.0)]
        feed._take_candles(stream, [[MIN, 10.0, 12.0, 8.0, 11.5, 7.0], [2 * MIN, 11.5, 12.5, 11.0, 12.0, 3.0]], key)
        await feed._emit_ready(stream)  # repeated messages of emitted candles
        assert emitted() == [] and feed.health().duplicates_dropped == 2  # dropped, counted
        feed._marks.add((*key, 4 * MIN))
        feed._take_candles(stream, [[4 * MIN, 1.0, 1.0, 1.0, 1.0, 1.0]], key)  # marked, but its close is ahead
        feed._health.exchange_time_ms = 4 * MIN  # of the exchange clock as observed (cannot be closed yet)
        await feed._emit_ready(stream)
        assert [t for t, _, _ in emitted()] == [3 * MIN]  # the 3-min candle: a later one was seen

    asyncio.run(run())


def test_a_slow_consumer_makes_the_feed_wait_and_loses_nothing(make_exchange: Make, recorded: dict[str, Candles]) -> None:
    with make_exchange() as ex:
        feed = LiveFeed(ex.ccxt_pro_client, ["BTC/USDT"], ["1m"], queue_size=3)
        with feed:
            feed.start()
            time.sleep(0.5)  # the replay races on; ccxt's candle cache (1000) overflows, the queue is full
            events = collect(feed, n_bars("1m", 40))
            health = feed.health()
        start = ex.start_ms
    assert health.queue_waits >= 1, health
    assert_recorded(bars_of(events, "1m"), recorded["1m"], start)


def test_replayed_stream_equals_the_recorded_closed_candles(make_exchange: Make, recorded: dict[str, Candles]) -> None:
    with make_exchange() as ex:
        feed = live_feed_for(ex.ccxt_pro_client, ["BTC/USDT"], ["1m", "1h"])
        assert isinstance(feed, Feed) and feed.span() is None and feed.count() is None
        with feed:
            events = collect(feed, lambda ev: len(bars_of(ev, "1m")) >= 150 and len(bars_of(ev, "1h")) >= 2)
            health = feed.health()
        start = ex.start_ms
    assert_recorded(bars_of(events, "1m"), recorded["1m"], start)
    assert_recorded(bars_of(events, "1h"), recorded["1h"], start)
    keys = [(e.known_at, 0 if e.timeframe == "1m" else 1) for e in events if isinstance(e, BarClosed)]
    assert keys == sorted(keys)  # close-time order per symbol; at the same close the 1m bar before the 1h bar
    assert (health.reconnects, health.backfilled_bars, health.duplicates_dropped) == (0, 0, 0)
    assert set(health.last_message_ms) == {"BTC/USDT 1m", "BTC/USDT 1h"}


def test_disconnects_duplicates_and_reorders_lose_and_repeat_no_bar(make_exchange: Make, recorded: dict[str, Candles]) -> None:
    faults = Faults(ws={5: "disconnect", 9: "duplicate", 14: "reorder", 20: "disconnect", 30: "duplicate"})
    sleeper, seed = FakeSleeper(), 11
    with make_exchange(faults=faults) as ex:
        feed = LiveFeed(ex.ccxt_pro_client, ["BTC/USDT"], ["1m"], sleep=sleeper, rng=random.Random(seed))
        with feed:
            events = collect(feed, n_bars("1m", 60))
            health = feed.health()
        start, served = ex.start_ms, list(faults.served)
    assert served == ["ws#5:disconnect", "ws#9:duplicate", "ws#14:reorder", "ws#20:disconnect", "ws#30:duplicate"]
    assert_recorded(bars_of(events, "1m"), recorded["1m"], start)  # every closed bar once, in order
    # the bar lost with each dropped socket came over REST. A socket that dropped while no watch was pending is
    # reconnected by ccxt.pro unseen (the gap it leaves is filled all the same), and a duplicate that reaches ccxt's
    # candle cache before the feed reads it is merged there: the counters vary with timing, the bars do not.
    assert health.backfilled_bars >= 2 and health.reconnects <= 2
    rng = random.Random(seed)
    assert sleeper.delays == [backoff_delay(0, rng) for _ in range(health.reconnects)]  # data between: backoff restarts


def test_failed_reconnects_back_off_exponentially_to_60_seconds(make_exchange: Make, recorded: dict[str, Candles]) -> None:
    plan = dict.fromkeys(range(1, 9), "500") | {3: "503"}  # the first 8 syncs fail (-1001, -1008)
    sleeper, seed = FakeSleeper(), 5
    with make_exchange(faults=Faults(rest={"/api/v3/time": plan})) as ex:
        feed = LiveFeed(ex.ccxt_pro_client, ["BTC/USDT"], ["1m"], sleep=sleeper, rng=random.Random(seed))
        with feed:
            events = collect(feed, n_bars("1m", 5))
            health = feed.health()
        start = ex.start_ms
    rng = random.Random(seed)
    expected = [backoff_delay(k, rng) for k in range(8)]
    assert sleeper.delays == expected
    assert [round(d) for d in expected] != [] and max(expected) <= 60 and expected[-1] > 0.8 * 60
    assert health.reconnects == 8
    assert_recorded(bars_of(events, "1m"), recorded["1m"], start)


def test_no_open_candle_is_emitted_on_the_exchange_clock(make_exchange: Make, recorded: dict[str, Candles]) -> None:
    with make_exchange() as ex:
        ex.pause()  # lock-step: the exchange clock moves only when the test advances it
        start = ex.start_ms
        with LiveFeed(ex.ccxt_pro_client, ["BTC/USDT"], ["1m"]) as feed:
            seen: list[BarClosed] = []
            for _ in range(12):
                ex.advance(25_000)
                now = ex.now_ms()
                while (event := feed.poll(0.4)) is not None:
                    assert isinstance(event, BarClosed)
                    assert event.bar.close_ts <= now  # closed on the exchange's clock when it was emitted
                    seen.append(event)
            now = ex.now_ms()
            closes = (now // MIN) - (start // MIN)  # bars closed in (start, now]
            seen += [e for e in collect(feed, lambda ev: len(ev) + len(seen) >= closes) if isinstance(e, BarClosed)]
            assert feed.poll(0.5) is None  # and not the candle still open at ``now``
    assert len(seen) == closes
    assert_recorded(seen, recorded["1m"], start)


def test_24_hour_rollover_reconnects_and_backfills(make_exchange: Make, recorded: dict[str, Candles]) -> None:
    clock = SimulatedClock(0)
    with make_exchange() as ex:
        feed = LiveFeed(ex.ccxt_pro_client, ["BTC/USDT"], ["1m"], clock=clock, max_connection_ms=23 * 3_600_000)
        with feed:
            events = collect(feed, n_bars("1m", 10))
            assert feed.health().rollovers == 0
            clock.set(23 * 3_600_000)  # 23 h of connection on the feed's clock
            events += collect(feed, lambda ev: len(ev) >= 40)
            health = feed.health()
        start = ex.start_ms
    assert (health.rollovers, health.reconnects) == (1, 1)
    assert_recorded(bars_of(events, "1m"), recorded["1m"], start)


def test_trades_arrive_once_in_id_order_and_merge_with_bars(make_exchange: Make, shared_data: Path) -> None:
    with make_exchange(faults=Faults(ws={5: "duplicate", 10: "reorder"})) as ex:
        with LiveFeed(ex.ccxt_pro_client, ["BTC/USDT"], ["1m"], trades=True) as feed:
            events = collect(feed, n_bars("1m", 2))
        start = ex.start_ms
    trades = [e for e in events if isinstance(e, TradeTick)]
    tr = pd.read_parquet(shared_data / "binance" / "BTCUSDT-trades.parquet").sort_values(["timestamp", "trade_id"])
    expected = [int(x) for x in tr[tr.timestamp > start].trade_id.head(len(trades))]
    assert [t.trade_id for t in trades] == expected and len(trades) > 100
    keys = [(e.known_at, 0 if isinstance(e, BarClosed) else 1) for e in events]
    assert keys == sorted(keys)  # one known_at order per symbol; a bar before the trades printed at its close


def test_a_start_in_the_past_is_backfilled_over_rest_then_streamed(make_exchange: Make, recorded: dict[str, Candles]) -> None:
    with make_exchange() as ex:
        start = ex.start_ms - 45 * MIN  # a restarted node resumes from its last processed event
        with LiveFeed(ex.ccxt_pro_client, ["BTC/USDT"], ["1m"]) as feed:
            events = list(itertools.islice(feed.events(start), 80))
            health = feed.health()
    bars = bars_of(events, "1m")
    assert bars[0].known_at >= start and bars[0].known_at - MIN < start
    assert_recorded(bars, recorded["1m"], start - 1)
    assert health.backfilled_bars >= 45


def test_several_symbols_in_one_close_order(shared_data: Path, recorded: dict[str, Candles]) -> None:
    eth = load_candles_file(shared_data / "binance" / "ETHUSDT-1m-2024.parquet", timeframe="1m")
    start = 1727755200000  # 2024-10-01 04:00 UTC: both recorded (ETHUSDT-1m-2024 has no minutes in Aug-Sep 2024)
    with TestExchange(shared_data, ["BTC/USDT", "ETH/USDT"], timeframes=("1m",), start=start) as ex:
        with LiveFeed(ex.ccxt_pro_client, ["BTC/USDT", "ETH/USDT"], ["1m"]) as feed:
            events = collect(feed, lambda ev: min(sum(e.symbol == s for e in ev) for s in ("BTC/USDT", "ETH/USDT")) >= 30)
        start = ex.start_ms
    by_symbol = {s: [e for e in events if isinstance(e, BarClosed) and e.symbol == s] for s in ("BTC/USDT", "ETH/USDT")}
    assert_recorded(by_symbol["BTC/USDT"], recorded["1m"], start)
    assert_recorded(by_symbol["ETH/USDT"], eth, start)
    keys = [(e.known_at, e.symbol != "BTC/USDT") for e in events]
    assert keys == sorted(keys)  # one known_at order over both symbols (a node needs it); ties in the order given


def test_stop_ends_the_feed_while_it_backs_off(make_exchange: Make) -> None:
    down = Faults(rest={"/api/v3/exchangeInfo": dict.fromkeys(range(1, 50), "500")})
    with make_exchange(faults=down) as ex:
        feed = LiveFeed(ex.ccxt_pro_client, ["BTC/USDT"], ["1m"]).start()  # real sleeps: 1 s, 2 s, ...
        assert feed.poll(0.3) is None
        feed.stop()
        health = feed.health()
    assert not health.running and health.error is None


def test_an_unknown_symbol_stops_the_feed_with_one_line(make_exchange: Make) -> None:
    with make_exchange() as ex:
        feed = LiveFeed(ex.ccxt_pro_client, ["NOPE/USDT"], ["1m"])
        with pytest.raises(LiveFeedError, match="NOPE/USDT") as info:
            list(feed.events())
    assert "\n" not in str(info.value)
