"""Test exchange benchmark (run: .venv/bin/python benchmarks/bench_testexchange.py [--quick]).

Real data: Binance BTCUSDT 1m 2024 (../shared/data). Figures, each with a reference measured in the same run:

1. replay at speed 0 through the WebSocket to the real ccxt.pro ``watch_ohlcv`` (closed 1m bars per second);
   reference: the same tape walked in-process (tape + matching engine, no sockets, no JSON);
2. order round trip through the real ccxt REST client (signed MARKET orders per second, p50/p99 ms);
   reference: ``MatchingEngine.place`` in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from decimal import Decimal
from pathlib import Path

import numpy as np

from pivotal.testexchange import TestExchange
from pivotal.testexchange.markets import BINANCE_RULES
from pivotal.testexchange.matching import MatchingEngine
from pivotal.testexchange.tape import Tape, load_symbol

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
START = "2024-03-01"


def in_process_bars_per_s(market: dict, bars: int) -> float:
    from pivotal.testexchange.server import parse_time

    start = parse_time(START)
    assert start is not None
    engine = MatchingEngine({"BTCUSDT": BINANCE_RULES["BTCUSDT"]}, market, {"USDT": Decimal(10_000)})
    tape = Tape(market, start)
    t0, closed = time.perf_counter(), 0
    while closed < bars:
        event = tape.pop()
        engine.on_event(event)
        closed += event.kind == 3
    return bars / (time.perf_counter() - t0)


async def streamed_bars_per_s(ex: TestExchange, bars: int) -> float:
    client = ex.ccxt_pro_client()
    try:
        await client.load_markets()
        await client.watch_ohlcv("BTC/USDT", "1m")
        t0, n = time.perf_counter(), 0
        while n < bars:
            n += len(await client.watch_ohlcv("BTC/USDT", "1m"))
        return n / (time.perf_counter() - t0)
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    bars, orders = (2_000, 50) if args.quick else (20_000, 300)
    market = {"BTCUSDT": load_symbol(DATA, "BTCUSDT", ("1m",))}

    ref = in_process_bars_per_s(market, bars)
    with TestExchange(DATA, ["BTC/USDT"], ("1m",), start=START, preloaded=market) as ex:
        streamed = asyncio.run(streamed_bars_per_s(ex, bars))
    print(
        f"1. replay, speed 0: {streamed:,.0f} closed 1m bars/s via ccxt.pro watch_ohlcv; "
        f"in-process tape {ref:,.0f}/s (ratio {ref / streamed:.1f}x)"
    )

    big = {"USDT": 10_000_000, "BTC": 0}
    engine = MatchingEngine({"BTCUSDT": BINANCE_RULES["BTCUSDT"]}, market, {k: Decimal(v) for k, v in big.items()})
    from pivotal.testexchange.server import parse_time

    now = parse_time(START)
    assert now is not None
    t0 = time.perf_counter()
    for i in range(orders):
        engine.place("BTCUSDT", "BUY", "MARKET", Decimal("0.001"), None, None, "", f"r{i}", now)
    engine_rate = orders / (time.perf_counter() - t0)
    with TestExchange(DATA, ["BTC/USDT"], ("1m",), start=START, preloaded=market, balances=big) as ex:
        client = ex.ccxt_client()
        client.load_markets()
        lat = []
        for _ in range(orders):
            t = time.perf_counter()
            client.create_order("BTC/USDT", "market", "buy", 0.001)
            lat.append((time.perf_counter() - t) * 1000)
    p50, p99 = np.percentile(lat, [50, 99])
    print(
        f"2. signed MARKET order via ccxt REST: {1000 / np.mean(lat):,.0f}/s (p50 {p50:.2f} ms, p99 {p99:.2f} ms); "
        f"engine in-process {engine_rate:,.0f}/s (ratio {engine_rate * np.mean(lat) / 1000:.0f}x)"
    )


if __name__ == "__main__":
    main()
