"""Candles, coverage and pivots over HTTP on real data (binance BTC/USDT 1h, a slice imported into the tmp store)."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from pivotal.data.candles import Candles
from pivotal.services.pivots import compute_pivots
from pivotal.structure.types import PivotParams
from tests.api.conftest import BARS

SERIES = {"exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1h"}


def test_series_and_coverage(client: TestClient, btc_1h: Candles) -> None:
    [s] = client.get("/api/series").json()
    assert (s["exchange"], s["symbol"], s["timeframe"], s["rows"]) == ("binance", "BTC/USDT", "1h", BARS)
    assert (s["first_ts"], s["last_ts"]) == (int(btc_1h.ts[0]), int(btc_1h.ts[-1]))
    [cov] = client.get("/api/series/coverage", params={"symbol": "BTC/USDT"}).json()
    assert cov["series"] == s and len(cov["gaps"]) == s["gaps"]
    assert client.get("/api/series/coverage", params={"symbol": "ETH/USDT"}).status_code == 404


def test_pages_put_together_are_the_stored_series(client: TestClient, btc_1h: Candles) -> None:
    ts: list[int] = []
    close: list[float] = []
    params: dict[str, object] = {**SERIES, "limit": 700}
    pages = 0
    while True:
        page = client.get("/api/candles", params=params).json()
        assert page["group"] == 1 and len(page["ts"]) <= 700
        ts += page["ts"]
        close += page["close"]
        pages += 1
        if page["next_start"] is None:
            break
        params["start"] = page["next_start"]
    assert pages == -(-BARS // 700)
    assert ts == btc_1h.ts.tolist() and close == btc_1h.close.tolist()


def test_wide_range_is_downsampled_to_max_points(client: TestClient, btc_1h: Candles) -> None:
    page = client.get("/api/candles", params={**SERIES, "max_points": 500}).json()
    group = -(-BARS // 500)
    assert page["group"] == group and len(page["ts"]) == -(-BARS // group) <= 500 and page["next_start"] is None
    assert page["ts"][1] == int(btc_1h.ts[group])
    assert page["high"][0] == float(np.max(btc_1h.high[:group])) and page["low"][0] == float(np.min(btc_1h.low[:group]))
    assert page["open"][0] == float(btc_1h.open[0]) and page["close"][-1] == float(btc_1h.close[-1])
    assert sum(page["volume"]) == pytest.approx(float(np.sum(btc_1h.volume)), rel=1e-12)
    narrow = client.get("/api/candles", params={**SERIES, "max_points": 5000}).json()
    assert narrow["group"] == 1 and len(narrow["ts"]) == BARS


def test_pivots_carry_the_time_they_became_known(client: TestClient, btc_1h: Candles) -> None:
    got = client.get("/api/pivots", params=SERIES).json()
    _, events = compute_pivots(btc_1h, PivotParams())
    assert len(got) == len(events) > 100
    assert [(p["label"], p["price"], p["ts"], p["confirmed_ts"]) for p in got] == [
        (e.label, e.price, e.ts, e.confirmed_ts) for e in events
    ]
    assert {p["level"] for p in got} >= {1, 2, 3}
    hour = 3_600_000
    assert all(p["confirmed_ts"] >= p["ts"] + hour for p in got)  # known at a bar close after the pivot bar
    # causality: the pivots of a prefix are the full run's pivots already known by the prefix's last close
    cut = int(btc_1h.ts[BARS // 2])
    prefix = client.get("/api/pivots", params={**SERIES, "end": cut}).json()
    known = [p for p in got if p["confirmed_ts"] <= cut]
    assert prefix == known
