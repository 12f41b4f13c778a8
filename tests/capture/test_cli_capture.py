"""`pivotal data capture` end to end: the command streams from the local test exchange (recorded BTCUSDT spot) into a
DuckDB store under --data-dir and reports what it did; bad input gets one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pivotal.data.duckdb_store import DuckDBStore
from pivotal.testexchange import TestExchange
from pivotal.testexchange.tape import SymbolData

runner = CliRunner()


@pytest.mark.timeout(120)
def test_capture_command_writes_depth_and_trades(shared_data: Path, btc_spot: dict[str, SymbolData], tmp_path: Path) -> None:
    from pivotal.cli.main import app

    with TestExchange(shared_data, ["BTC/USDT"], timeframes=("1m",), preloaded=btc_spot) as ex:
        args = ["data", "capture", "--symbols", "BTC/USDT", "--rest-url", ex.url, "--duration", "3"]
        result = runner.invoke(app, [*args, "--data-dir", str(tmp_path), "--store", "duckdb", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    depth = report["depth"]["BTC/USDT"]
    assert depth["messages"] > 0 and depth["snapshots"] >= 1 and report["trades"]["BTC/USDT"] > 0
    assert report["spooled_pending"] == 0 and report["error"] is None
    store = DuckDBStore(tmp_path / "pivotal.duckdb")
    try:
        assert store.depth_updates("binance", "BTC/USDT").final_update_id.nunique() == depth["messages"]
        assert len(store.trades("binance", "BTC/USDT")) == report["trades"]["BTC/USDT"]
    finally:
        store.close()


def test_capture_command_refuses_a_non_positive_duration(tmp_path: Path) -> None:
    from pivotal.cli.main import app

    result = runner.invoke(app, ["data", "capture", "--symbols", "BTC/USDT", "--duration", "0", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "--duration must be > 0 seconds (got 0.0)" in result.output


@pytest.mark.timeout(120)
def test_capture_command_on_usdm(shared_data: Path, btc_usdm: dict[str, SymbolData], tmp_path: Path) -> None:
    from pivotal.cli.main import app

    with TestExchange(shared_data, ["BTC/USDT"], (), preloaded=btc_usdm, venue="usdm") as ex:
        args = ["data", "capture", "-e", "binanceusdm", "-s", "BTC/USDT:USDT", "--depth", "--rest-url", ex.url]
        result = runner.invoke(app, [*args, "--duration", "3", "--data-dir", str(tmp_path), "--store", "duckdb"])
    assert result.exit_code == 0, result.output
    assert "binanceusdm capture" in result.output
    store = DuckDBStore(tmp_path / "pivotal.duckdb")
    try:
        rows = store.depth_updates("binanceusdm", "BTC/USDT:USDT")
        assert len(rows) > 0 and rows.prev_final_update_id.notna().all()
        assert len(store.trades("binanceusdm", "BTC/USDT:USDT")) == 0  # --depth alone: no trades
    finally:
        store.close()
