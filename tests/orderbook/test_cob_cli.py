"""`pivotal cob features|heatmap` over the shared Parquet files and over the store (same rows), gaps reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from pivotal.cli.main import app
from pivotal.data.backends import open_store
from pivotal.data.importers.shared_parquet import read_shared
from pivotal.features.cob import CobConfig, cob_features
from pivotal.services.cob import compute_cob, load_cob_inputs
from tests.orderbook.captures import load_capture

runner = CliRunner()


def test_features_from_files_and_from_store_are_identical(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "binance"
    out_files = tmp_path / "files.parquet"
    # 2024-08-09T00:00:00Z .. 00:02:00Z: 120 seconds in the middle of the spot capture
    window = ["--start", "2024-08-09T00:00:00", "--end", "1723161720000"]
    result = runner.invoke(
        app, ["cob", "features", "-e", "binance", "-s", "ETH/USDT", "--files", str(folder), "--out", str(out_files), *window]
    )
    assert result.exit_code == 0, result.output
    assert "120 COB rows of binance ETH/USDT" in result.output
    rows = pd.read_parquet(out_files)
    assert len(rows) == 120 and rows["ts"].iloc[0] == 1723161600000 and rows["ts"].iloc[-1] == 1723161719000
    assert list(rows.columns[:5]) == ["ts", "known_at", "updates", "best_bid", "best_ask"] and rows.shape[1] == 3 + 212
    cap = load_capture(shared_data, "binance", "ETHUSDT")
    full = cob_features(cap.snapshot, cap.messages, cap.trades, CobConfig.for_symbol("ETH/USDT")).to_frame()
    expected = full[(full["ts"] >= 1723161600000) & (full["ts"] < 1723161720000)].reset_index(drop=True)
    pd.testing.assert_frame_equal(rows, expected)

    store = open_store()  # the test's own data dir (conftest isolates it)
    try:
        for kind in ("book_snapshot", "depth_updates", "trades"):
            read_shared(folder / f"ETHUSDT-{kind}.parquet").write(store)
    finally:
        store.close()
    out_store = tmp_path / "store.csv"
    result = runner.invoke(app, ["cob", "features", "-e", "binance", "-s", "ETH/USDT", "--out", str(out_store), *window])
    assert result.exit_code == 0, result.output
    from_store = pd.read_csv(out_store, float_precision="round_trip")
    assert np.array_equal(from_store.to_numpy(), rows.to_numpy(), equal_nan=True)  # CSV round trip keeps float64 exactly


def test_heatmap_png_and_one_line_errors(shared_data: Path, tmp_path: Path) -> None:
    folder = str(shared_data / "binance-usdm")
    png = tmp_path / "heat.png"
    result = runner.invoke(
        app, ["cob", "heatmap", "-e", "binanceusdm", "-s", "BTC/USDT:USDT", "--files", folder, "--out", str(png)]
    )
    assert result.exit_code == 0, result.output
    assert "heatmap of 300 s" in result.output and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = runner.invoke(
        app, ["cob", "features", "-e", "binanceusdm", "-s", "BTC/USDT:USDT", "--files", folder, "--out", str(tmp_path / "x.txt")]
    )
    assert bad.exit_code == 1 and "use a .parquet or .csv file name" in bad.output
    empty = runner.invoke(app, ["cob", "features", "-e", "binance", "-s", "BTC/USDT", "--out", str(tmp_path / "x.csv")])
    assert empty.exit_code == 1 and "no depth snapshot stored for binance BTC/USDT" in empty.output
    assert "Traceback" not in empty.output


def test_gap_is_reported_and_rows_stop_before_it(shared_data: Path) -> None:
    inputs = load_cob_inputs("binanceusdm", "ETH/USDT:USDT", files=shared_data / "binance-usdm")
    config = CobConfig.for_symbol("ETH/USDT")
    whole = compute_cob(inputs, config)
    assert whole.gaps == () and len(whole.features) == 480
    broken = type(inputs)(inputs.exchange, inputs.symbol, inputs.snapshots, inputs.messages.drop(4000), inputs.trades, "test")
    result = compute_cob(broken, config)
    assert len(result.gaps) == 1 and result.gaps[0].startswith("depth sequence gap: expected pu=")
    cut = int(inputs.messages.event_ms[4001])
    kept = result.features
    assert len(kept) > 0 and kept.known_at.max() <= cut
    assert np.array_equal(kept.values, whole.features.values[: len(kept)], equal_nan=True)
