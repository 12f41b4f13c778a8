"""`pivotal run --mode paper` on recorded data through the local test exchange: the live feed (unmodified ccxt.pro)
drives the node with the simulated venue, and on the same closed bars its trades equal `pivotal backtest`'s, byte
for byte. The exchange clock is paused and stepped one bar at a time from the test, so the feed first backfills the
bars already closed over REST and then streams the rest; the run ends at the bar closing at --end. Loopback only."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pivotal.cli.main import app
from pivotal.data.loaders import load_candles_file
from pivotal.services.backtest import run_backtest
from pivotal.testexchange import TestExchange
from pivotal.testexchange.tape import SymbolData, load_symbol

pytestmark = pytest.mark.timeout(90)

MIN = 60_000
START = int(pd.Timestamp("2024-03-01T00:00Z").value // 1_000_000)
END = START + 240 * MIN  # exclusive: 240 one-minute bars


@pytest.fixture(scope="module")
def btc_1m(shared_data: Path) -> dict[str, SymbolData]:
    return {"BTCUSDT": load_symbol(shared_data, "BTCUSDT", ("1m",))}


@pytest.fixture(autouse=True)
def _nothing_left_running() -> Iterator[None]:
    yield
    alive = [t.name for t in threading.enumerate() if t.name in ("pivotal-testexchange", "pivotal-live-feed")]
    assert alive == [], f"threads still running: {alive}"


def step_clock(ex: TestExchange, until: int, done: threading.Event) -> threading.Thread:
    """Move the paused exchange clock one bar at a time up to ``until`` (the feed streams each bar as it closes)."""

    def run() -> None:
        while not done.is_set() and ex.now_ms() < until:
            ex.advance(MIN)
            done.wait(0.01)

    thread = threading.Thread(target=run, name="test-clock-stepper", daemon=True)
    thread.start()
    return thread


def test_paper_trades_equal_the_backtest_on_the_same_closed_bars(
    shared_data: Path, btc_1m: dict[str, SymbolData], tmp_path: Path
) -> None:
    paper_out, bt_out = tmp_path / "paper.csv", tmp_path / "backtest.csv"
    with TestExchange(shared_data, ["BTC/USDT"], timeframes=("1m",), start=START + 120 * MIN, preloaded=btc_1m) as ex:
        ex.pause()  # before the feed subscribes: the clock moves only when the test steps it
        done = threading.Event()
        stepper = step_clock(ex, END + MIN, done)
        try:
            result = CliRunner().invoke(app, [
                "run", "--mode", "paper", "--strategy", "sma_cross", "-e", "binance", "-s", "BTC/USDT", "-t", "1m",
                "--start", str(START), "--end", str(END), "--exchange-url", ex.url, "--trades-out", str(paper_out),
                "--no-status",
            ])  # fmt: skip
        finally:
            done.set()
            stepper.join(10)
    assert result.exit_code == 0, result.output
    assert "paper: " in result.output and "live events" in result.output

    candles = load_candles_file(shared_data / "binance" / "BTCUSDT-1m-2024.parquet", timeframe="1m")
    keep = (candles.ts >= START) & (candles.ts < END)
    cols = {c: np.asarray(getattr(candles, c))[keep] for c in ("ts", "open", "high", "low", "close", "volume")}
    bars = replace(candles, **cols, exchange="binance", symbol="BTC/USDT")
    assert len(bars) == 240
    backtest = run_backtest(bars, "sma_cross", {}, fee_rate=0.001, slippage=0.0005)
    backtest.result.trades.write(bt_out)
    assert len(backtest.result.trades) >= 3  # the window has trades to compare
    assert paper_out.read_bytes() == bt_out.read_bytes()
