"""`pivotal run --mode replay` on real data writes the trade list of `pivotal backtest` on the same bars, from a
file and from the store, with a journal that a second run re-derives without writing anything twice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pivotal.cli.main import app
from pivotal.config import load_settings
from pivotal.data.backends import open_store
from pivotal.data.loaders import load_candles_file

pytestmark = pytest.mark.realdata

runner = CliRunner()
WINDOW = ["--start", "2024-03-01", "--end", "2024-03-03"]


def invoke(args: list[str]) -> tuple[int, str]:
    result = runner.invoke(app, args)
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.parametrize(("strategy", "suffix"), [("sma_cross", ".csv"), ("liquidity_sweep", ".json")])
def test_replay_writes_the_backtests_trade_list(shared_data: Path, tmp_path: Path, strategy: str, suffix: str) -> None:
    data = str(shared_data / "binance" / "BTCUSDT-1m-2024.parquet")
    common = ["--strategy", strategy, "--input", data, *WINDOW]
    code, out = invoke(["backtest", *common, "--trades-out", str(tmp_path / f"bt{suffix}")])
    assert code == 0, out
    code, out = invoke(["run", "--mode", "replay", *common, "--speed", "0", "--trades-out", str(tmp_path / f"rp{suffix}")])
    assert code == 0, out
    assert "replay: 2880 events at speed 0" in out and f"{strategy} on {data}: 2880 bars" in out
    assert (tmp_path / f"rp{suffix}").read_text() == (tmp_path / f"bt{suffix}").read_text()
    code, out = invoke(["run", "--mode", "backtest", *common, "--trades-out", str(tmp_path / f"rb{suffix}")])
    assert code == 0, out
    assert (tmp_path / f"rb{suffix}").read_text() == (tmp_path / f"bt{suffix}").read_text()


def test_replay_a_stored_series_with_a_journal(shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / "binance" / "BTCUSDT-1m-2024.parquet"
    bars = load_candles_file(path, start=1709164800000, end=1709510400000, exchange="binance", symbol="BTC/USDT")  # Feb 29-Mar 3
    store = open_store(load_settings())
    try:
        store.write_candles(bars, source="BTCUSDT-1m-2024.parquet")
    finally:
        store.close()
    series = ["--strategy", "sma_cross", "-e", "binance", "-s", "BTC/USDT", "-t", "1m", *WINDOW]
    code, out = invoke(["backtest", *series, "--trades-out", str(tmp_path / "bt.csv")])
    assert code == 0, out
    journal = tmp_path / "run.jsonl"
    args = ["run", "--mode", "replay", *series, "--journal", str(journal), "--trades-out", str(tmp_path / "rp.csv"), "--json"]
    code, out = invoke(args)
    assert code == 0, out
    report = json.loads(out[out.index("{") :])
    assert report["mode"] == "replay" and report["events"] == 2880 and report["resumed_from"] is None
    assert (tmp_path / "rp.csv").read_text() == (tmp_path / "bt.csv").read_text()
    code, out = invoke(args)  # again on the finished journal: re-derived, checked, nothing written twice
    assert code == 0, out
    assert json.loads(out[out.index("{") :])["resumed_from"] == 1709424000000
    ids = [json.loads(line[9:])["id"] for line in journal.read_text().splitlines() if '"k":"order"' in line]
    assert len(ids) == len(set(ids)) > 10
    code, out = invoke(["run", "--mode", "backtest", *series, "--journal", str(journal)])
    assert code == 1 and "--journal applies to --mode replay" in out
