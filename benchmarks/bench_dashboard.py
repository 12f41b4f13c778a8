"""Dashboard load benchmark (run: .venv/bin/python benchmarks/bench_dashboard.py [--quick]).

Real data: Binance BTC/USDT 1m (2024) and 1h (2018-2026) from ../shared/data, with 3m resampled from that 1m and 2h
from that 1h; of each the last 10,000 bars without a gap (the page shows the last ``bars`` bars' time span, so a gap
would show fewer), imported into a throw-away DuckDB store. ``pivotal serve``'s app runs in-process under uvicorn on
127.0.0.1; Debian's Chromium (headless, driven by Playwright) opens the dashboard with four panes of 10,000 candles
each (``/?exchange=binance&symbol=BTC/USDT&tf=1m,3m,1h,2h&bars=10000``).

Measured per load, from the navigation's start (``performance.now()`` in the page):
- **first drawn candles**: the animation frame after every pane has its candles and pivot markers set (what the user
  sees), p50/p99 over the loads;
- **reference, same run**: the page's own raw ``fetch`` of the same 4 × ``/api/candles`` (and of candles + pivots) with
  the JSON parsed, nothing drawn — the ratio is what the page adds over the data it needs.

The machine is shared: ``uptime`` is printed first; compare ratios, not seconds across runs.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
DATA = Path(os.environ.get("PIVOTAL_SHARED_DATA", REPO.parent / "shared" / "data"))
CHROMIUM = os.environ.get("PIVOTAL_CHROMIUM", "/usr/bin/chromium")
TIMEFRAMES = ("1m", "3m", "1h", "2h")
BARS = 10_000
TF_MS = {"1m": 60_000, "3m": 180_000, "1h": 3_600_000, "2h": 7_200_000}

RAW_FETCH = """async ([urls, withPivots]) => {
  const t0 = performance.now();
  const wanted = withPivots ? urls.flat() : urls.map((u) => u[0]);
  const bodies = await Promise.all(wanted.map((u) => fetch(u).then((r) => r.json())));
  return [performance.now() - t0, bodies.filter((b) => Array.isArray(b.ts)).reduce((n, b) => n + b.ts.length, 0)];
}"""


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def _gap_free_tail(c: Any, step: int, n: int) -> Any:
    """The last ``n`` bars of ``c`` with no missing bar between them."""
    ts = np.asarray(c.ts, np.int64)
    gaps = np.flatnonzero(np.diff(ts) != step)  # a gap after index i
    end = len(ts)
    for g in gaps[::-1]:
        if end - (g + 1) >= n:
            break
        end = int(g) + 1
    if end < n:
        raise SystemExit(f"no {n} gap-free {c.timeframe} bars")
    return c.slice(end - n, end)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="3 loads instead of 10")
    args = parser.parse_args()
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    tmp = Path(tempfile.mkdtemp(prefix="pivotal-bench-dashboard-"))
    os.environ["PIVOTAL_DATA_DIR"] = str(tmp / "data")
    os.environ["PIVOTAL_CONFIG"] = str(tmp / "none.toml")

    import pyarrow.parquet as pq
    import uvicorn
    from playwright.sync_api import sync_playwright

    from pivotal.api.app import create_app
    from pivotal.api.security import Token
    from pivotal.config import load_settings
    from pivotal.data.backends import open_store
    from pivotal.data.candles import Candles
    from pivotal.data.resample import resample

    settings = load_settings()
    folder = DATA / "binance"
    minute = Candles.from_arrow(pq.read_table(folder / "BTCUSDT-1m-2024.parquet"), "binance", "BTC/USDT", "1m")
    hour = Candles.from_arrow(pq.read_table(folder / "BTCUSDT-1h-2018-2026.parquet"), "binance", "BTC/USDT", "1h")
    series = {"1m": minute, "3m": resample(minute, "3m")[0], "1h": hour, "2h": resample(hour, "2h")[0]}
    store = open_store(settings)
    last: dict[str, tuple[int, int]] = {}
    try:
        for tf in TIMEFRAMES:
            c = _gap_free_tail(series[tf], TF_MS[tf], BARS)
            store.write_candles(c, source=f"BTCUSDT {tf}")
            last[tf] = (int(c.ts[0]), int(c.ts[-1]))
    finally:
        store.close()

    app = create_app(settings, Token.generate())
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    base = f"http://127.0.0.1:{port}"
    page_url = f"{base}/?exchange=binance&symbol=BTC/USDT&tf={','.join(TIMEFRAMES)}&bars={BARS}"
    urls = []
    for tf in TIMEFRAMES:  # exactly the page's requests (loadPane: the last `bars` bars, max_points = bars)
        end = last[tf][1] + TF_MS[tf]
        start = max(last[tf][0], end - BARS * TF_MS[tf])
        q = f"exchange=binance&symbol=BTC/USDT&timeframe={tf}&start={start}&end={end}"
        urls.append([f"{base}/api/candles?{q}&limit={BARS}&max_points={BARS}", f"{base}/api/pivots?{q}"])

    loads = 3 if args.quick else 10
    drawn: list[float] = []
    raw_candles: list[float] = []
    raw_all: list[float] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{base}/static/css/dashboard.css")  # warm the connection and the app's first imports
        for _ in range(loads):
            page.goto(page_url)
            page.wait_for_function("window.pivotalState && pivotalState.drawnAtMs != null", timeout=120_000)
            ms, bars = page.evaluate("[pivotalState.drawnAtMs, pivotalState.panes.map(p => p.bars)]")
            assert bars == [BARS] * len(TIMEFRAMES), bars
            drawn.append(float(ms))
            t, n = page.evaluate(RAW_FETCH, [urls, False])
            assert n == BARS * len(TIMEFRAMES), n
            raw_candles.append(float(t))
            raw_all.append(float(page.evaluate(RAW_FETCH, [urls, True])[0]))
        browser.close()
    assert not errors, errors
    print(f"dashboard load: {len(TIMEFRAMES)} panes x {BARS:,} candles + pivots, headless Chromium, {loads} loads")
    print(f"  first drawn candles           p50 {_pct(drawn, 50):8.1f} ms  p99 {_pct(drawn, 99):8.1f} ms")
    print(f"  raw fetch 4 x /api/candles    p50 {_pct(raw_candles, 50):8.1f} ms  p99 {_pct(raw_candles, 99):8.1f} ms")
    print(f"  raw fetch candles + pivots    p50 {_pct(raw_all, 50):8.1f} ms  p99 {_pct(raw_all, 99):8.1f} ms")
    print(f"  ratio drawn / raw candles     p50 {_pct(drawn, 50) / _pct(raw_candles, 50):.2f}x")
    print(f"  ratio drawn / raw all data    p50 {_pct(drawn, 50) / _pct(raw_all, 50):.2f}x")
    server.should_exit = True
    thread.join(timeout=10)


if __name__ == "__main__":
    main()
