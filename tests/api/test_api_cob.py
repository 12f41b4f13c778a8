"""``GET /api/cob/heatmap`` over the real Binance ETH/USDT depth capture imported into the test's store: the matrix
of the newest seconds of the range equals the heatmap of the COB rows rebuilt from the shared Parquet files; a market
without stored depth is a 404 naming what to import."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from pivotal.config import Settings
from pivotal.data.backends import open_store
from pivotal.data.importers.shared_parquet import read_shared
from pivotal.features.cob import CobConfig
from pivotal.services.cob import compute_cob, heatmap_of, load_cob_inputs

START, END = 1723161600000, 1723161720000  # 2024-08-09 00:00 to 00:02 UTC, inside the spot capture


def _import(shared_data: Path, settings: Settings, pair: str) -> None:
    store = open_store(settings)
    try:
        for kind in ("book_snapshot", "depth_updates", "trades"):
            read_shared(shared_data / "binance" / f"{pair}-{kind}.parquet").write(store)
    finally:
        store.close()


def test_heatmap_of_stored_depth_equals_the_files(client: TestClient, shared_data: Path, settings: Settings) -> None:
    _import(shared_data, settings, "ETHUSDT")
    q = {"exchange": "binance", "symbol": "ETH/USDT", "start": START, "end": END, "seconds": 60, "buckets": 10}
    r = client.get("/api/cob/heatmap", params=q)
    assert r.status_code == 200, r.text
    heat = r.json()
    assert (heat["rows"], heat["first_ts"], heat["last_ts"]) == (120, START, END - 1000)
    assert heat["ts"] == list(range(START + 60_000, END, 1000))  # the newest 60 seconds
    assert heat["offsets"] == list(range(-10, 10)) and heat["bucket_size"] == 1.0
    inputs = load_cob_inputs("binance", "ETH/USDT", files=shared_data / "binance", start=START, end=END)
    expected = heatmap_of(compute_cob(inputs, CobConfig.for_symbol("ETH/USDT"), START, END).features, 60, 10)
    got = np.array([[np.nan if v is None else v for v in row] for row in heat["values"]])
    assert np.array_equal(got, expected.imbalance, equal_nan=True)
    assert heat["low_price"] == expected.prices[:, 0].tolist()
    volume = client.get("/api/cob/heatmap", params={**q, "metric": "volume"}).json()["values"]
    assert np.array_equal(np.array(volume, dtype=float), expected.volume)
    spread = client.get("/api/cob/heatmap", params={**q, "metric": "spread"}).json()["values"]
    assert spread == expected.spread.tolist() and all(s > 0 for s in spread)


def test_no_stored_depth_is_a_404_saying_what_to_import(client: TestClient) -> None:
    r = client.get("/api/cob/heatmap", params={"exchange": "binance", "symbol": "BTC/USDT"})
    assert r.status_code == 404
    assert r.json()["error"]["message"] == (
        "no order-book data stored for binance BTC/USDT; import its depth capture: pivotal data import "
        "BTCUSDT-book_snapshot.parquet BTCUSDT-depth_updates.parquet (and BTCUSDT-trades.parquet)"
    )
    bad = client.get("/api/cob/heatmap", params={"exchange": "binance", "symbol": "BTC/USDT", "metric": "depth"})
    assert bad.status_code == 422 and "metric" in bad.text
