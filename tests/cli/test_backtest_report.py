"""`pivotal backtest` as a trader reads it (issue #9): money in and out, the dates, buy-and-hold beside it, units,
an honest verdict, charts in a named output folder, and `--json` (one line when piped)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pivotal.cli.main import app
from pivotal.data.candles import Candles
from pivotal.execution.engine import run_backtest
from pivotal.strategies.ls3.params import LS3Params
from pivotal.strategies.ls3.strategy import LiquiditySweepV3

pytestmark = pytest.mark.realdata
runner = CliRunner()
FIRST_HALF_2019 = ["--start", "2019-01-01", "--end", "2019-07-01"]


def btc_4h(shared_data: Path) -> Path:
    return shared_data / "coinbase" / "BTCUSD-4h.parquet"


def bars_2019h1(shared_data: Path) -> Candles:
    c = Candles.from_arrow(pq.read_table(btc_4h(shared_data)), timeframe="4h")
    return c.slice(int(c.ts.searchsorted(1546300800000)), int(c.ts.searchsorted(1561939200000)))


def flat(output: str) -> str:
    """Words of the output with table borders and rich's line wrapping removed."""
    return " ".join(re.sub("[\u2500-\u257f]", " ", output).split())


def test_the_printout_has_capital_dates_units_and_buy_and_hold(shared_data: Path) -> None:
    result = runner.invoke(app, ["backtest", "-i", str(btc_4h(shared_data)), *FIRST_HALF_2019, "--capital", "2500"])
    assert result.exit_code == 0, result.output
    out = flat(result.output)
    c = bars_2019h1(shared_data)
    direct = run_backtest(c, LiquiditySweepV3(LS3Params()))
    end_capital = 2500 * float(direct.equity.equity[-1])
    # buy at the first open, sell at the last close, 0.1 % fee and 0.05 % slippage per side
    hold = 2500 * 0.999 * (float(c.close[-1]) * 0.9995) / (float(c.open[0]) * 1.0005) * 0.999
    assert "period: 2019-01-01 00:00 → 2019-07-01 00:00 UTC (0.5 years)" in out
    assert "costs: fee 0.1 % + slippage 0.05 % per side" in out
    assert "start capital 2,500.00 2,500.00" in out
    assert f"end capital {end_capital:,.2f} {hold:,.2f}" in out
    assert f"net profit {(end_capital / 2500 - 1) * 100:+,.2f} % {(hold / 2500 - 1) * 100:+,.2f} %" in out
    assert "buy and hold" in out and "max drawdown, mark-to-market (%)" in out and "win rate (%)" in out
    assert "max_drawdown_bars" not in out


def test_a_losing_run_says_so(shared_data: Path) -> None:
    """LS3 with its defaults over 2016-2025 Coinbase BTC/USD 4h loses money; the printout must not hide it."""
    result = runner.invoke(app, ["backtest", "-i", str(btc_4h(shared_data))])
    assert result.exit_code == 0, result.output
    out = flat(result.output)
    assert "The strategy LOST money: -" in out and "it trailed buy-and-hold by" in out


def test_a_winning_run_says_so(shared_data: Path) -> None:
    args = ["backtest", "-i", str(btc_4h(shared_data)), "--strategy", "sma_cross", "-p", "fast=20", "-p", "slow=100"]
    out = flat(runner.invoke(app, args).output)
    assert "The strategy made +" in out and "(10,000.00 → " in out


def test_out_folder_holds_summary_trades_and_charts(shared_data: Path, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    result = runner.invoke(app, ["backtest", "-i", str(btc_4h(shared_data)), *FIRST_HALF_2019, "--out", str(folder)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in folder.iterdir()} == {"summary.json", "trades.csv", "equity.png", "equity.html", "plotly.min.js"}
    assert (folder / "equity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (folder / "equity.html").read_text()
    assert 'src="plotly.min.js"' in html and "buy and hold" in html and len(html) < 1_000_000
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["start"] == "2019-01-01T00:00:00Z" and summary["end"] == "2019-07-01T00:00:00Z"
    assert summary["start_capital"] == 10_000.0 and summary["bars"] == len(bars_2019h1(shared_data))
    assert "max_drawdown_mtm" in summary["metrics"] and "max_drawdown_bars" not in summary["metrics"]
    assert f"wrote {folder / 'equity.html'}" in flat(result.output)


def test_json_is_one_line_when_piped(shared_data: Path) -> None:
    result = runner.invoke(app, ["backtest", "-i", str(btc_4h(shared_data)), *FIRST_HALF_2019, "--json"])
    assert result.exit_code == 0, result.output
    assert result.output.count("\n") == 1  # CliRunner's stdout is not a terminal
    report = json.loads(result.output)
    assert report["strategy"] == "liquidity_sweep" and report["timeframe"] == "4h"
    assert report["end_capital"] == pytest.approx(10_000 * (1 + report["net_profit_pct"] / 100), abs=0.01)
    assert np.isfinite(report["buy_and_hold_net_profit_pct"])


def test_capital_must_be_positive(shared_data: Path) -> None:
    result = runner.invoke(app, ["backtest", "-i", str(btc_4h(shared_data)), "--capital", "0"])
    assert result.exit_code == 1 and "--capital must be a positive amount (got 0.0)" in flat(result.output)
