"""API benchmark (run: .venv/bin/python benchmarks/bench_api.py [--quick]).

Real data: Coinbase BTC/USD 1s, 1m, 1h and 4h (../shared/data), the last 10,000 bars of each, imported into a
throw-away DuckDB store. ``pivotal serve``'s app runs in-process under uvicorn on 127.0.0.1.

1. Chart data: one chart load = GET /api/candles (10k bars) + GET /api/pivots for each of the 4 timeframes, over
   HTTP; p50/p99 of the load, against the same service calls made directly in the same run (the ratio is the cost
   of HTTP + JSON).
2. WebSocket fan-out: 50 clients connected to /ws; the hub publishes 100 messages/s for a few seconds; delivery
   latency (publish → received by a client) over every (message, client), p50/p99/max.

The machine is shared: ``uptime`` is printed first; compare ratios, not seconds across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
DATA = Path(os.environ.get("PIVOTAL_SHARED_DATA", REPO.parent / "shared" / "data"))
TIMEFRAMES = ("1s", "1m", "1h", "4h")
BARS = 10_000


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer chart loads and a shorter fan-out")
    args = parser.parse_args()
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    tmp = Path(tempfile.mkdtemp(prefix="pivotal-bench-api-"))
    os.environ["PIVOTAL_DATA_DIR"] = str(tmp / "data")
    os.environ["PIVOTAL_CONFIG"] = str(tmp / "none.toml")

    import httpx
    import pyarrow.parquet as pq
    import uvicorn

    from pivotal.api.app import create_app
    from pivotal.api.hub import Hub
    from pivotal.api.security import Token
    from pivotal.config import load_settings
    from pivotal.data.backends import open_store
    from pivotal.data.candles import Candles
    from pivotal.services import api_queries

    settings = load_settings()
    store = open_store(settings)
    try:
        for tf in TIMEFRAMES:
            c = Candles.from_arrow(pq.read_table(DATA / "coinbase" / f"BTCUSD-{tf}.parquet"), "coinbase", "BTC/USD", tf)
            store.write_candles(c.slice(len(c) - BARS, len(c)), source=f"BTCUSD-{tf}.parquet")
    finally:
        store.close()

    hub = Hub(buffer=10_000)
    app = create_app(settings, Token.generate(), hub=hub)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    base = f"http://127.0.0.1:{port}"

    # 1. chart data
    loads = 5 if args.quick else 20
    direct: list[float] = []
    over_http: list[float] = []
    for _ in range(loads):
        t0 = time.perf_counter()
        for tf in TIMEFRAMES:
            api_queries.candle_page(settings, "coinbase", "BTC/USD", tf, limit=BARS)
            api_queries.pivot_events(settings, "coinbase", "BTC/USD", tf)
        direct.append(time.perf_counter() - t0)
    pivots = 0
    with httpx.Client(base_url=base, timeout=60) as client:
        for _ in range(loads):
            t0 = time.perf_counter()
            for tf in TIMEFRAMES:
                q = {"exchange": "coinbase", "symbol": "BTC/USD", "timeframe": tf}
                page = client.get("/api/candles", params={**q, "limit": BARS}).json()
                assert len(page["ts"]) == BARS, page
                pivots += len(client.get("/api/pivots", params=q).json())
            over_http.append(time.perf_counter() - t0)
    print(f"chart load: {len(TIMEFRAMES)} x {BARS:,} candles + pivots ({pivots // loads:,} pivots), {loads} loads")
    print(f"  direct service calls   p50 {_pct(direct, 50) * 1e3:8.1f} ms  p99 {_pct(direct, 99) * 1e3:8.1f} ms")
    print(f"  HTTP API               p50 {_pct(over_http, 50) * 1e3:8.1f} ms  p99 {_pct(over_http, 99) * 1e3:8.1f} ms")
    print(f"  ratio HTTP / direct    p50 {_pct(over_http, 50) / _pct(direct, 50):.2f}x")

    # 2. WebSocket fan-out
    import aiohttp

    clients, rate, seconds = 50, 100, (2 if args.quick else 5)
    total = rate * seconds
    latencies: list[float] = []

    async def fan_out() -> None:
        async with aiohttp.ClientSession() as session:
            sockets = [await session.ws_connect(f"ws://127.0.0.1:{port}/ws") for _ in range(clients)]
            while hub.clients < clients:
                await asyncio.sleep(0.01)

            async def reader(ws: aiohttp.ClientWebSocketResponse) -> None:
                got = 0
                while got < total:
                    m = await ws.receive_json()
                    latencies.append(time.time() - m["payload"]["sent"])
                    got += 1

            readers = [asyncio.create_task(reader(ws)) for ws in sockets]

            def publisher() -> None:
                start = time.perf_counter()
                for i in range(total):
                    delay = start + i / rate - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    hub.publish("candle", {"i": i, "sent": time.time()})

            await asyncio.to_thread(publisher)
            await asyncio.wait_for(asyncio.gather(*readers), timeout=60)
            for ws in sockets:
                await ws.close()

    asyncio.run(fan_out())
    assert len(latencies) == clients * total
    ms = [x * 1e3 for x in latencies]
    print(f"WebSocket fan-out: {clients} clients, {rate} msg/s for {seconds} s ({len(ms):,} deliveries)")
    print(f"  delivery latency       p50 {_pct(ms, 50):8.2f} ms  p99 {_pct(ms, 99):8.2f} ms  max {max(ms):8.2f} ms")
    server.should_exit = True
    thread.join(timeout=10)


if __name__ == "__main__":
    main()
