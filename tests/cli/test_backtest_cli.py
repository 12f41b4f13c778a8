"""`pivotal backtest` on real data: from a file and from the store; exports; clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from typer.testing import CliRunner

from pivotal.cli.main import app
from pivotal.config import load_settings
from pivotal.data.backends import open_store
from pivotal.data.candles import Candles
from pivotal.data.loaders import load_candles_file as load_bars_file
from pivotal.execution.engine import run_backtest
from pivotal.strategies.ls3.params import LS3Params
from pivotal.strategies.ls3.strategy import LiquiditySweepV3

runner = CliRunner()
LOOSE = [
    "--param",
    "pierce_depth=0.0005",
    "--param",
    "rejection_candles=5",
    "-p",
    "volume_spike_threshold=1.5",
    "-p",
    "reversal_candle_size=0.5",
]


def invoke(args: list[str]) -> tuple[int, str]:
    """Exit code and output with rich's line wrapping undone."""
    result = runner.invoke(app, args)
    return result.exit_code, " ".join(result.output.split())


def btc_4h(shared_data: Path) -> Path:
    return shared_data / "coinbase" / "BTCUSD-4h.parquet"


def test_backtest_file_prints_metrics_and_writes_exports(shared_data: Path, tmp_path: Path) -> None:
    args = ["backtest", "--input", str(btc_4h(shared_data)), "--start", "2019-01-01", "--end", "2019-07-01", *LOOSE]
    args += ["--trades-out", str(tmp_path / "trades.csv"), "--equity-png", str(tmp_path / "equity.png")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "net profit, trades compounded (%)" in result.output and "Sharpe, annualised (365 d)" in result.output
    trades = pd.read_csv(tmp_path / "trades.csv", float_precision="round_trip")
    assert len(trades) > 0
    assert {"signal_bar", "side", "level", "entry_time", "entry_fill", "stop", "target", "exit_reason", "net_return"} <= set(
        trades
    )
    assert (tmp_path / "equity.png").read_bytes()[:4] == b"\x89PNG"
    # the CLI runs exactly the engine with these parameters
    c = Candles.from_arrow(pq.read_table(btc_4h(shared_data)), timeframe="4h")
    c = c.slice(int(c.ts.searchsorted(1546300800000)), int(c.ts.searchsorted(1561939200000)))
    direct = run_backtest(c, LiquiditySweepV3(LS3Params(0.0005, 5, 1.5, 0.5)))
    assert trades["net_return"].tolist() == direct.trades.returns.tolist()


def test_params_file_and_json_export(shared_data: Path, tmp_path: Path) -> None:
    params = tmp_path / "p.json"
    params.write_text(
        json.dumps({"pierce_depth": 0.0005, "rejection_candles": 5, "volume_spike_threshold": 1.5, "reversal_candle_size": 0.5})
    )
    out = tmp_path / "t.json"
    args = ["backtest", "--input", str(btc_4h(shared_data)), "--end", "2018-01-01", "--params", str(params), "--fee", "0"]
    result = runner.invoke(app, [*args, "--slippage", "0", "--trades-out", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    assert rows and rows[0]["side"] in ("LONG", "SHORT")


def test_sma_cross_strategy(shared_data: Path) -> None:
    code, out = invoke(
        ["backtest", "--strategy", "sma_cross", "--input", str(btc_4h(shared_data)), "--param", "fast=5", "--param", "slow=20"]
    )
    assert code == 0, out
    assert "fast=5, slow=20" in out


def test_backtest_a_stored_series(shared_data: Path) -> None:
    c = Candles.from_arrow(pq.read_table(shared_data / "binance" / "BTCUSDT-1h.parquet"), "binance", "BTC/USDT", "1h")
    store = open_store(load_settings())
    try:
        store.write_candles(c, source="BTCUSDT-1h.parquet")
    finally:
        store.close()
    code, out = invoke(["backtest", "-e", "binance", "-s", "BTC/USDT", "-t", "1h", *LOOSE])
    assert code == 0, out
    assert f"binance BTC/USDT 1h: {len(c)} bars" in out


def test_errors_are_clear(shared_data: Path, tmp_path: Path) -> None:
    btc = str(btc_4h(shared_data))
    code, out = invoke(["backtest"])
    assert code == 1 and "--input FILE" in out
    code, out = invoke(["backtest", "--input", btc, "--param", "fast=3"])
    assert code == 1 and "strategy liquidity_sweep: unknown parameter(s) fast; valid: key_level_lookback" in out
    code, out = invoke(["backtest", "--input", btc, "--strategy", "nope"])
    assert code == 1 and "unknown strategy 'nope'; registered: " in out and "liquidity_sweep, model, sma_cross" in out
    code, out = invoke(["backtest", "--input", btc, "--param", "fast"])
    assert code == 1 and "expected key=value" in out
    code, out = invoke(["backtest", "--input", btc, "--strategy", "sma_cross", "-p", "fast=30", "-p", "slow=10"])
    assert code == 1 and "SMA cross needs 1 <= fast < slow" in out
    bad = tmp_path / "bad.json"
    bad.write_text('{"pierce": 0.1}')
    code, out = invoke(["backtest", "--input", btc, "--params", str(bad)])
    assert code == 1 and "bad.json: strategy liquidity_sweep: unknown parameter(s) pierce" in out
    code, out = invoke(["backtest", "--input", btc, "--end", "2017-01-01", "--trades-out", str(tmp_path / "x.txt")])
    assert code == 1 and "use .csv or .json" in out
    code, out = invoke(["backtest", "-e", "binance", "-s", "ETH/USDT", "-t", "1h"])
    assert code == 1 and "no stored candles" in out
    code, out = invoke(["backtest", "--input", btc, "--param", "stop_distance=-1"])
    assert code == 1 and "stop_distance=-1.0" in out


def test_detail_bars_from_a_file_reach_the_engine(shared_data: Path, tmp_path: Path) -> None:
    """Binance BTCUSDT 1h (2018-04/05) with its real 1m bars as detail (they cover one morning of that month)."""
    main = shared_data / "binance" / "BTCUSDT-1h.parquet"
    detail = shared_data / "binance" / "BTCUSDT-1m.parquet"
    out_csv = tmp_path / "fine.csv"
    code, out = invoke(["backtest", "--input", str(main), *LOOSE, "--detail-input", str(detail), "--trades-out", str(out_csv)])
    assert code == 0, out
    bars = load_bars_file(main)
    direct = run_backtest(bars, LiquiditySweepV3(LS3Params(0.0005, 5, 1.5, 0.5)), detail=load_bars_file(detail))
    assert pd.read_csv(out_csv, float_precision="round_trip")["net_return"].tolist() == direct.trades.returns.tolist()
    assert len(direct.trades) > 0
    code, out = invoke(["backtest", "--input", str(main), "--detail-timeframe", "1m"])
    assert code == 1 and "--detail-input" in out
