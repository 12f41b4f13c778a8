"""Fixtures of the API tests: an app over a throw-away store (the autouse settings fixture points the data folder at
tmp_path), its token, and a real-data slice imported into that store."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from pivotal.api.app import create_app
from pivotal.api.hub import Hub
from pivotal.api.security import RateLimiter, Token
from pivotal.config import Settings, load_settings
from pivotal.data.backends import open_store
from pivotal.data.candles import Candles

TOKEN = secrets.token_urlsafe(24)  # made per test session, never a constant in the repo
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BARS = 3000  # of binance BTC/USDT 1h: enough for level-3 pivots, imported in well under a second


@pytest.fixture
def settings() -> Settings:
    return load_settings()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, Token(TOKEN), RateLimiter(10_000, 60.0), Hub(buffer=50))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def btc_1h(shared_data: Path, settings: Settings) -> Candles:
    """The first ``BARS`` hourly bars of binance BTC/USDT, stored as ``binance BTC/USDT 1h``."""
    c = Candles.from_arrow(pq.read_table(shared_data / "binance" / "BTCUSDT-1h-2018-2026.parquet"), "binance", "BTC/USDT", "1h")
    c = c.slice(0, BARS)
    store = open_store(settings)
    try:
        store.write_candles(c, source="BTCUSDT-1h-2018-2026.parquet")
    finally:
        store.close()
    return c
