"""Replay = backtest on real data: Binance BTC/USDT 1m through a replay session and a trading node gives exactly the
trades of ``pivotal.execution.backtest.backtest`` on the same bars (fingerprints are regression values)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from pivotal.core.clock import SimulatedClock
from pivotal.data.candles import Candles
from pivotal.data.loaders import load_candles_file
from pivotal.execution.backtest import backtest
from pivotal.execution.engine import BacktestConfig, EventEngine
from pivotal.runtime.feeds.historical import HistoricalFeed
from pivotal.runtime.node import TradingNode, trade_fingerprint
from pivotal.runtime.replay import ReplaySession
from pivotal.strategies.registry import get_strategy

pytestmark = pytest.mark.realdata


def ms(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)


def btc(shared_data: Path, symbol: str = "BTC/USDT", file: str = "BTCUSDT-1m-2024.parquet") -> Candles:
    path = shared_data / "binance" / file
    return load_candles_file(path, start=ms("2024-03-01"), end=ms("2024-03-05"), exchange="binance", symbol=symbol)


@pytest.mark.parametrize(
    ("strategy", "trades", "fingerprint"),
    [
        ("liquidity_sweep", 11, "a970abee41ba4ebd33dbee6fc8124f7a84685f32ffc18847d162e4b008321639"),  # pragma: allowlist secret
        ("sma_cross", 111, "730432a20804f51a8e6324acf3856db2569f6417fa9b417bc10cb1a400c3c2f5"),  # pragma: allowlist secret
    ],
)
def test_replay_through_the_node_equals_the_backtest(shared_data: Path, strategy: str, trades: int, fingerprint: str) -> None:
    bars = btc(shared_data)
    assert len(bars) == 4 * 1440
    expected = backtest(strategy, bars)
    node = TradingNode(get_strategy(strategy).create(), [("BTC/USDT", "1m")], exchange="binance")
    ReplaySession(HistoricalFeed([bars]), node.on_event, speed=0, clock=SimulatedClock(0)).run()
    result = node.finish()
    assert len(result.trades) == trades
    assert trade_fingerprint(result.trades.trades) == trade_fingerprint(expected.trades.trades) == fingerprint
    assert result.metrics == expected.metrics
    assert np.array_equal(result.equity.equity, expected.equity.equity)


def test_paced_replay_gives_the_same_trades(shared_data: Path) -> None:
    """Speed only changes when events are emitted (on the simulated clock), never what is traded."""
    bars = btc(shared_data).slice(0, 600)
    expected = backtest("sma_cross", bars)
    clock = SimulatedClock(0)
    node = TradingNode(get_strategy("sma_cross").create(), [("BTC/USDT", "1m")])
    ReplaySession(HistoricalFeed([bars]), node.on_event, speed=50.0, clock=clock).run()
    assert trade_fingerprint(node.finish().trades.trades) == trade_fingerprint(expected.trades.trades)
    assert clock.now_ms() == (599 * 60_000) // 50  # the last bar 599 minutes after the first, at 50x


def test_two_symbols_merged_by_the_feed_equal_the_engines_merge(shared_data: Path) -> None:
    series = {"BTC/USDT": btc(shared_data), "ETH/USDT": btc(shared_data, "ETH/USDT", "ETHUSDT-1m-2024.parquet")}
    expected = EventEngine(series, BacktestConfig()).run(get_strategy("sma_cross").create())
    node = TradingNode(get_strategy("sma_cross").create(), [("BTC/USDT", "1m"), ("ETH/USDT", "1m")])
    ReplaySession(HistoricalFeed(list(series.values())), node.on_event, clock=SimulatedClock(0)).run()
    result = node.finish()
    assert len(result.trades) == len(expected.trades) == 111
    assert trade_fingerprint(result.trades.trades) == trade_fingerprint(expected.trades.trades)
    for symbol in series:
        assert trade_fingerprint(result.symbol_trades[symbol].trades) == trade_fingerprint(expected.symbol_trades[symbol].trades)
