"""Replay benchmark (run: .venv/bin/python benchmarks/bench_replay.py [--quick]).

Real data: Binance BTC/USDT 1m 2024 (../shared/data), the first 3 months (``--quick``: 2 weeks). For LS3 and SMA
cross, in the same run, with identical trades asserted:

- reference: ``pivotal backtest`` on the bars (``execution.backtest.backtest``, sparse driving where the strategy
  offers ``wake_bars``), and the same engine driven on every bar (``sparse=False``: what a node must do);
- ``run --mode replay`` at speed 0: historical feed → replay session → trading node → ``EventEngine.push_bar``;
- the same with the write-ahead journal (one ``fdatasync`` per record that acts).

Printed: seconds, bars/s and the ratios replay / backtest and replay / every-bar engine (issue #10's goal: within
1.5x of the backtest on the same engine).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from pivotal.core.clock import SimulatedClock  # noqa: E402
from pivotal.data.loaders import load_candles_file  # noqa: E402
from pivotal.execution.backtest import backtest  # noqa: E402
from pivotal.runtime.feeds.historical import HistoricalFeed  # noqa: E402
from pivotal.runtime.journal import Journal  # noqa: E402
from pivotal.runtime.node import TradingNode, trade_fingerprint  # noqa: E402
from pivotal.runtime.replay import ReplaySession  # noqa: E402
from pivotal.strategies.registry import get_strategy  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "binance" / "BTCUSDT-1m-2024.parquet"
JAN_1, APR_1, JAN_15 = 1_704_067_200_000, 1_711_929_600_000, 1_705_276_800_000


def replay(name: str, bars: object, journal: Journal | None = None) -> tuple[float, str]:
    t0 = time.perf_counter()
    node = TradingNode(get_strategy(name).create(), [("BTC/USDT", "1m")], journal=journal)
    ReplaySession(HistoricalFeed([bars]), node.on_event, clock=SimulatedClock(0)).run()  # type: ignore[list-item]
    result = node.finish()
    return time.perf_counter() - t0, trade_fingerprint(result.trades.trades)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two weeks instead of three months")
    args = parser.parse_args()
    bars = load_candles_file(DATA, start=JAN_1, end=JAN_15 if args.quick else APR_1, exchange="binance", symbol="BTC/USDT")
    n = len(bars)
    print(f"BTC/USDT 1m: {n:,} bars")
    for name in ("liquidity_sweep", "sma_cross"):
        warm = bars.slice(0, 2_000)  # compile numba kernels and fill caches outside the timings
        backtest(name, warm), backtest(name, warm, sparse=False), replay(name, warm)
        t0 = time.perf_counter()
        sparse = backtest(name, bars)
        t1 = time.perf_counter()
        dense = backtest(name, bars, sparse=False)
        t2 = time.perf_counter()
        seconds, fp = replay(name, bars)
        with tempfile.TemporaryDirectory() as folder, Journal(Path(folder) / "run.jsonl") as journal:
            journaled, fp_j = replay(name, bars, journal)
        want = trade_fingerprint(sparse.trades.trades)
        assert fp == fp_j == want == trade_fingerprint(dense.trades.trades), f"{name}: trades differ"
        bt, every = t1 - t0, t2 - t1
        print(
            f"{name:16s} trades {len(sparse.trades):5d} | backtest {bt:6.2f} s | every-bar engine {every:6.2f} s | "
            f"replay {seconds:6.2f} s ({n / seconds / 1e3:5.0f} k bars/s) | journaled {journaled:6.2f} s | "
            f"replay/backtest {seconds / bt:5.2f}x  replay/every-bar {seconds / every:5.2f}x"
        )


if __name__ == "__main__":
    main()
