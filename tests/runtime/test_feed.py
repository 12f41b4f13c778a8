"""The historical feed: several series and trades merged by known-at time with documented ties; seek; errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pivotal.core.errors import UserInputError
from pivotal.core.events import BarClosed, TradeTick
from pivotal.core.orders import Bar
from pivotal.data.candles import Candles
from pivotal.data.trades import Trades
from pivotal.runtime.feed import Feed
from pivotal.runtime.feeds.historical import HistoricalFeed
from tests.stores import throwaway_store

pytestmark = pytest.mark.unit

MIN, HOUR = 60_000, 3_600_000


def bars(symbol: str, timeframe: str, opens: list[int], price: float = 100.0) -> Candles:
    n = len(opens)
    p = np.full(n, price) + np.arange(n)
    return Candles(np.asarray(opens, np.int64), p, p + 1, p - 1, p, np.ones(n), "binance", symbol, timeframe)


def trades(symbol: str, ts: list[int]) -> Trades:
    n = len(ts)
    ids = np.arange(1, n + 1)
    return Trades(np.asarray(ts, np.int64), ids, np.full(n, 10.0), np.ones(n), np.zeros(n, bool), "binance", symbol)


def key(e: object) -> tuple:
    if isinstance(e, BarClosed):
        return ("bar", e.bar.symbol, e.bar.timeframe, e.bar.ts, e.known_at)
    assert isinstance(e, TradeTick)
    return ("trade", e.symbol, e.trade_id, e.known_at)


def test_bars_are_known_at_their_close_and_carry_their_series_index() -> None:
    feed = HistoricalFeed([bars("BTC/USDT", "1m", [0, MIN, 2 * MIN])])
    assert isinstance(feed, Feed)
    events = list(feed.events())
    assert [e.known_at for e in events] == [MIN, 2 * MIN, 3 * MIN]
    assert [e.bar.index for e in events] == [0, 1, 2]
    assert events[1].bar.close_ts == 2 * MIN and events[1].exchange == "binance" and events[1].symbol == "BTC/USDT"
    assert feed.span() == (MIN, 3 * MIN) and feed.count() == 3


def test_merge_order_and_ties_are_deterministic() -> None:
    # 1h bar closing at 1h ties with the 1m bar closing then: the shorter timeframe first; ETH (given second) after
    # BTC at the same time; a trade printed at 1h (the next bar's) after every bar closed at 1h.
    btc_1m = bars("BTC/USDT", "1m", [HOUR - 2 * MIN, HOUR - MIN, HOUR])
    btc_1h = bars("BTC/USDT", "1h", [0])
    eth_1m = bars("ETH/USDT", "1m", [HOUR - MIN])
    feed = HistoricalFeed([btc_1h, btc_1m, eth_1m], [trades("BTC/USDT", [HOUR - 90_000, HOUR, HOUR])])
    assert [key(e) for e in feed.events()] == [
        ("trade", "BTC/USDT", 1, HOUR - 90_000),
        ("bar", "BTC/USDT", "1m", HOUR - 2 * MIN, HOUR - MIN),
        ("bar", "BTC/USDT", "1m", HOUR - MIN, HOUR),
        ("bar", "ETH/USDT", "1m", HOUR - MIN, HOUR),
        ("bar", "BTC/USDT", "1h", 0, HOUR),
        ("trade", "BTC/USDT", 2, HOUR),
        ("trade", "BTC/USDT", 3, HOUR),
        ("bar", "BTC/USDT", "1m", HOUR, HOUR + MIN),
    ]
    assert feed.count() == 8


def test_events_from_a_time_seek_without_renumbering_bars() -> None:
    feed = HistoricalFeed([bars("BTC/USDT", "1m", [0, MIN, 2 * MIN, 3 * MIN])], [trades("BTC/USDT", [90_000, 150_000])])
    events = list(feed.events(2 * MIN))
    assert [key(e) for e in events] == [
        ("bar", "BTC/USDT", "1m", MIN, 2 * MIN),
        ("trade", "BTC/USDT", 2, 150_000),
        ("bar", "BTC/USDT", "1m", 2 * MIN, 3 * MIN),
        ("bar", "BTC/USDT", "1m", 3 * MIN, 4 * MIN),
    ]
    assert events[0].bar.index == 1
    assert feed.count(2 * MIN) == 4
    assert list(feed.events(10 * MIN)) == []


def test_series_errors_are_one_line() -> None:
    with pytest.raises(UserInputError, match="given twice"):
        HistoricalFeed([bars("BTC/USDT", "1m", [0]), bars("BTC/USDT", "1m", [MIN])])
    with pytest.raises(UserInputError, match="known timeframe"):
        HistoricalFeed([bars("BTC/USDT", "", [0])])
    assert HistoricalFeed([]).span() is None and list(HistoricalFeed([]).events()) == []


def test_from_store_loads_series_and_stored_trades(tmp_path: Path) -> None:
    with throwaway_store("duckdb", tmp_path) as store:
        store.write_candles(bars("BTC/USDT", "1m", [0, MIN, 2 * MIN]))
        store.write_candles(bars("BTC/USDT", "1h", [0]))
        store.write_trades(trades("BTC/USDT", [30_000, 90_000]))
        feed = HistoricalFeed.from_store(store, "binance", ["BTC/USDT"], ["1m"], start=MIN, with_trades=True)
        assert [key(e) for e in feed.events()] == [
            ("trade", "BTC/USDT", 2, 90_000),
            ("bar", "BTC/USDT", "1m", MIN, 2 * MIN),
            ("bar", "BTC/USDT", "1m", 2 * MIN, 3 * MIN),
        ]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["1m", "5m", "1h"]), st.lists(st.integers(0, 300), max_size=12)), min_size=1, max_size=4),
    st.lists(st.integers(0, 300 * MIN), max_size=15),
    st.integers(0, 400 * MIN),
)
def test_any_merge_is_sorted_complete_and_seekable(series: list, trade_ts: list[int], seek: int) -> None:
    """Whatever the series, the merge holds every event once, in (known_at, kind, timeframe, given order), and
    ``events(t)`` is exactly its suffix from t."""
    from pivotal.core.timeframes import TIMEFRAMES

    given_ = []
    for i, (tf, starts) in enumerate(series):
        step = TIMEFRAMES[tf]
        given_.append(bars(f"S{i}", tf, sorted({s * step for s in starts})))
    feed = HistoricalFeed(given_, [trades("S0", sorted(trade_ts))])
    events = list(feed.events())
    assert len(events) == feed.count() == sum(len(c) for c in given_) + len(trade_ts)
    order = {c.symbol + c.timeframe: i for i, c in enumerate(given_)}

    def rank(e: object) -> tuple:
        if isinstance(e, BarClosed):
            return (e.known_at, 0, TIMEFRAMES[e.bar.timeframe], order[e.bar.symbol + e.bar.timeframe], e.bar.ts)
        return (e.known_at, 1, 0, len(order), e.trade_id)

    ranks = [rank(e) for e in events]
    assert ranks == sorted(ranks)
    assert list(feed.events(seek)) == [e for e in events if e.known_at >= seek]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 200), min_size=0, max_size=30), st.integers(0, 220 * MIN))
def test_one_series_yields_the_same_events_as_the_merge(opens: list[int], seek: int) -> None:
    """A feed of one bar series takes a path without merge keys; its events from any start are exactly that series'
    events in a merged feed: same types, same fields (Python ints and floats), same series index."""
    one = bars("BTC/USDT", "1m", sorted({o * MIN for o in opens}))
    other = bars("ETH/USDT", "1m", [0, 50 * MIN, 199 * MIN])
    alone = list(HistoricalFeed([one]).events(seek))
    merged = [e for e in HistoricalFeed([one, other]).events(seek) if e.bar.symbol == "BTC/USDT"]
    assert alone == merged and len(alone) == HistoricalFeed([one]).count(seek)
    for e in alone:
        assert type(e) is BarClosed and type(e.bar) is Bar and e.exchange == "binance" and e.known_at == e.bar.close_ts
        assert type(e.known_at) is int and type(e.bar.index) is int and type(e.bar.close) is float
        assert one.ts[e.bar.index] == e.bar.ts and one.close[e.bar.index] == e.bar.close
