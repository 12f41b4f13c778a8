"""Paper mode under injected faults, on recorded Binance BTC/USDT through the local test exchange (unmodified ccxt.pro,
loopback only): dropped sockets, delayed, duplicated and out-of-order messages, Binance's in-progress (``x: false``)
klines, and 429 / 5xx answers on the REST backfill. The live feed still delivers every closed bar exactly once and
never an open candle as closed, so a paper session trades byte for byte like ``pivotal backtest`` on the same bars."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pivotal.core.events import BarClosed
from pivotal.data.loaders import load_candles_file
from pivotal.runtime.exchange_node import feed_client_factory
from pivotal.runtime.feeds import LiveFeed, live_feed_for
from pivotal.runtime.runner import execute_live
from pivotal.services.backtest import CandleSource, run_backtest
from pivotal.services.run import RunRequest, prepare
from pivotal.testexchange import Faults, TestExchange
from pivotal.testexchange.tape import SymbolData, load_symbol

pytestmark = pytest.mark.timeout(120)

MIN = 60_000
START = int(pd.Timestamp("2024-03-01T00:00Z").value // 1_000_000)


@pytest.fixture(scope="module")
def btc_1m(shared_data: Path) -> dict[str, SymbolData]:
    return {"BTCUSDT": load_symbol(shared_data, "BTCUSDT", ("1m",))}


@pytest.fixture(scope="module")
def recorded(shared_data: Path) -> pd.DataFrame:
    c = load_candles_file(shared_data / "binance" / "BTCUSDT-1m-2024.parquet", timeframe="1m")
    return pd.DataFrame({k: np.asarray(getattr(c, k)) for k in ("ts", "open", "high", "low", "close", "volume")})


@pytest.fixture(autouse=True)
def _nothing_left_running() -> Iterator[None]:
    yield
    alive = [t.name for t in threading.enumerate() if t.name in ("pivotal-testexchange", "pivotal-live-feed")]
    assert alive == [], f"threads still running: {alive}"


class NoWait:
    """The feed's backoff sleeper: records the waits, returns at once (the faults are what is tested, not the clock)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        import asyncio

        self.delays.append(seconds)
        await asyncio.sleep(0)


def test_an_in_progress_kline_put_before_the_previous_close_is_never_emitted_as_closed(
    shared_data: Path, btc_1m: dict[str, SymbolData], recorded: pd.DataFrame
) -> None:
    """With Binance's ``x: false`` updates, message 2k is the closed kline of a bar and 2k+1 the next bar's kline at
    its open. A reorder of a closed kline puts the next bar's open update first: that superseded candle's values are
    the partial ones of its own open update, so the feed must wait for the close mark or take the bar over REST."""
    faults = Faults(ws={5: "reorder", 11: "reorder", 17: "reorder", 20: "duplicate", 23: "delay"}, open_klines=True,
                    delay_s=0.2)  # fmt: skip
    with TestExchange(shared_data, ["BTC/USDT"], timeframes=("1m",), start=START, preloaded=btc_1m, faults=faults) as ex:
        ex.pause()
        with LiveFeed(ex.ccxt_pro_client, ["BTC/USDT"], ["1m"], sleep=NoWait(), rng=random.Random(1)) as feed:
            feed.start()
            bars: list[BarClosed] = []
            while len(bars) < 20:
                ex.advance(MIN)
                while (event := feed.poll(0.3)) is not None:
                    assert isinstance(event, BarClosed) and event.bar.close_ts <= ex.now_ms()
                    bars.append(event)
        served = list(faults.served)
    assert {s.split(":")[1] for s in served} == {"reorder", "duplicate", "delay"}
    got = [(b.bar.ts, b.bar.open, b.bar.high, b.bar.low, b.bar.close, b.bar.volume) for b in bars]
    assert got[0][0] >= START  # from the first bar to close after the feed started
    want = recorded[(recorded.ts >= got[0][0])].head(len(got))
    assert got == [tuple(r) for r in want.itertuples(index=False, name=None)]
    assert [b.bar.index for b in bars] == list(range(len(bars)))


def step_clock(ex: TestExchange, until: int, done: threading.Event, seen: list[BarClosed]) -> threading.Thread:
    """Move the paused exchange clock one bar at a time up to ``until``, each step once the node has seen the bar that
    closed at the exchange's now (or after 1 s, when the feed is away: it backfills what it missed over REST)."""

    def run() -> None:
        while not done.is_set() and ex.now_ms() < until:
            now, waited = ex.now_ms(), 0.0
            while not done.is_set() and waited < 1.0 and not (seen and seen[-1].bar.close_ts >= now):
                done.wait(0.005)
                waited += 0.005
            ex.advance(MIN)

    thread = threading.Thread(target=run, name="test-clock-stepper", daemon=True)
    thread.start()
    return thread


def backtest_csv(recorded: pd.DataFrame, start: int, end: int, path: Path, shared_data: Path) -> int:
    candles = load_candles_file(shared_data / "binance" / "BTCUSDT-1m-2024.parquet", timeframe="1m")
    keep = (candles.ts >= start) & (candles.ts < end)
    cols = {c: np.asarray(getattr(candles, c))[keep] for c in ("ts", "open", "high", "low", "close", "volume")}
    bars = replace(candles, **cols, exchange="binance", symbol="BTC/USDT")
    assert len(bars) == (end - start) // MIN
    result = run_backtest(bars, "sma_cross", {}, fee_rate=0.001, slippage=0.0005).result
    result.trades.write(path)
    return len(result.trades)


# message numbers count every market-data message; with open klines a bar's close is 2 messages (closed, next open)
WS_PLAN = {7: "disconnect", 15: "reorder", 22: "duplicate", 31: "delay", 41: "reorder", 56: "disconnect", 69: "duplicate",
           81: "reorder", 95: "delay", 120: "disconnect", 151: "reorder"}  # fmt: skip
REST_PLAN = {"/api/v3/klines": {2: "429", 3: "500", 5: "503"}, "/api/v3/time": {3: "500"}}


def test_paper_under_stream_and_rest_faults_trades_like_the_backtest(
    shared_data: Path, btc_1m: dict[str, SymbolData], recorded: pd.DataFrame, tmp_path: Path
) -> None:
    start, end = START, START + 240 * MIN  # the first 120 bars come over REST (with 429/5xx), the rest streamed
    faults = Faults(ws=dict(WS_PLAN), rest={k: dict(v) for k, v in REST_PLAN.items()}, open_klines=True, delay_s=0.3)
    paper_out, bt_out = tmp_path / "paper.csv", tmp_path / "backtest.csv"
    with TestExchange(shared_data, ["BTC/USDT"], timeframes=("1m",), start=start + 120 * MIN, preloaded=btc_1m,
                      faults=faults) as ex:  # fmt: skip
        ex.pause()
        done = threading.Event()
        seen: list[BarClosed] = []
        stepper = step_clock(ex, end + MIN, done, seen)
        try:  # the run command's paper path (runner.execute_live) with the feed it builds, backing off in 50 ms steps
            request = RunRequest("paper", "sma_cross", CandleSource(None, "binance", "BTC/USDT", "1m", start, end),
                                 rest_url=ex.url)  # fmt: skip
            client = feed_client_factory("binance", sandbox=False, rest_url=ex.url, ws_url=None)
            feed = live_feed_for(client, ["BTC/USDT"], ["1m"], backoff_base_s=0.05, rng=random.Random(7))
            outcome = execute_live(
                prepare(request), feed=feed, observer=lambda e: seen.append(e) if isinstance(e, BarClosed) else None
            )
        finally:
            done.set()
            stepper.join(10)
        served = list(faults.served)
    outcome.run.result.trades.write(paper_out)
    assert outcome.mode == "paper" and feed.health().reconnects >= 2
    got = [(b.bar.ts, b.bar.open, b.bar.high, b.bar.low, b.bar.close, b.bar.volume) for b in seen]
    want = recorded[(recorded.ts >= start) & (recorded.ts < end)]
    assert got == [tuple(r) for r in want.itertuples(index=False, name=None)]  # each closed bar once, none open
    planned = {f"ws#{k}:{v}" for k, v in WS_PLAN.items()} | {f"{p}#{k}:{v}" for p, m in REST_PLAN.items() for k, v in m.items()}
    assert set(served) == planned  # every fault was served while the session ran
    n = backtest_csv(recorded, start, end, bt_out, shared_data)
    assert n >= 3  # the window has trades to compare
    assert paper_out.read_bytes() == bt_out.read_bytes()
