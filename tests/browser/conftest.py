"""Fixtures of the browser tests: ``pivotal serve``'s app under uvicorn on a free loopback port, over a throw-away
DuckDB store holding a slice of real binance BTC/USDT candles (1m, 1h, and 4h and 1d resampled from that 1h) ending
at the same minute, and a page of
Debian's Chromium driven by Playwright. Screenshots go to ``pivotal-out/test-artifacts/browser/`` (git-ignored)."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import uvicorn

from pivotal.api.app import create_app
from pivotal.api.hub import Hub
from pivotal.api.security import RateLimiter, Token
from pivotal.config import load_settings
from pivotal.data.backends import open_store
from pivotal.data.candles import Candles
from pivotal.data.resample import resample
from tests.conftest import CHROMIUM, REPO

TOKEN = secrets.token_urlsafe(24)  # made per test session, never a constant in the repo
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ARTIFACTS = REPO / "pivotal-out" / "test-artifacts" / "browser"
BARS = {"1m": 1500, "1h": 7200}  # stored; 4h and 1d are resampled from the 1h slice (the 1d file ends in 2020)


@dataclass
class Server:
    url: str
    app: Any
    hub: Hub


def _load(path: Path, timeframe: str, end: int, count: int) -> Candles:
    """The last ``count`` bars of a file opening before ``end`` (epoch ms)."""
    c = Candles.from_arrow(pq.read_table(path), "binance", "BTC/USDT", timeframe)
    stop = int(np.searchsorted(np.asarray(c.ts), end, side="left"))
    return c.slice(max(0, stop - count), stop)


def _import_slice(shared_data: Path) -> dict[str, Candles]:
    folder = shared_data / "binance"
    minute = Candles.from_arrow(pq.read_table(folder / "BTCUSDT-1m-2024.parquet"), "binance", "BTC/USDT", "1m")
    held_back = minute.slice(len(minute) - 1, len(minute))  # the next real bar, pushed by a test as a closed candle
    minute = minute.slice(len(minute) - 1 - BARS["1m"], len(minute) - 1)
    end = int(minute.ts[-1]) + 60_000
    hour = _load(folder / "BTCUSDT-1h-2018-2026.parquet", "1h", end, BARS["1h"])
    four, _ = resample(hour, "4h")
    day, _ = resample(hour, "1d")
    series = {"1m": minute, "1h": hour, "4h": four, "1d": day}
    store = open_store(load_settings())
    try:
        for c in series.values():
            store.write_candles(c, source="tests/browser slice")
    finally:
        store.close()
    return {**series, "1m_next": held_back}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def stored(shared_data: Path) -> dict[str, Candles]:
    """The real-data slice, imported into the test's store (the autouse settings fixture points it at tmp_path)."""
    return _import_slice(shared_data)


@pytest.fixture
def server(stored: dict[str, Candles]) -> Iterator[Server]:
    hub = Hub(buffer=100)
    app = create_app(load_settings(), Token(TOKEN), RateLimiter(10_000, 60.0), hub)
    port = _free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    yield Server(f"http://127.0.0.1:{port}", app, hub)
    uv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")  # not session: Playwright's loop must stop before other modules call asyncio.run
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, server: Server, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A page 1600×1000 (the server outlives it, so the screenshot shows the live page); its console errors fail
    the test; a screenshot is kept whatever the outcome."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield pg
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"))
    finally:
        context.close()
    assert errors == [], f"errors in the page: {errors}"
