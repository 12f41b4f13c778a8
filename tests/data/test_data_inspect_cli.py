"""`pivotal data info | gaps | export` on a store holding real Binance candles."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pivotal.cli.common import console
from pivotal.cli.main import app
from pivotal.data.backends import open_store
from pivotal.data.candles import Candles

runner = CliRunner()


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich sizes the shared console once at import (80 columns without a terminal); widen it so rows don't wrap."""
    monkeypatch.setattr(console, "_width", 200)


@pytest.fixture
def filled(shared_data: Path) -> Candles:
    """binance BTCUSDT-1h (619 rows, one 62-bar gap per PROVENANCE) in the test's own data dir."""
    hourly = Candles.from_frame(pd.read_parquet(shared_data / "binance/BTCUSDT-1h.parquet"), "binance", "BTC/USDT", "1h")
    store = open_store()
    store.write_candles(hourly, "BTCUSDT-1h.parquet")
    store.close()
    return hourly


def test_info_on_empty_store_says_so() -> None:
    result = runner.invoke(app, ["data", "info"])
    assert result.exit_code == 0
    assert "holds no candles yet" in result.output


def test_info_shows_coverage(filled: Candles) -> None:
    result = runner.invoke(app, ["data", "info"])
    assert result.exit_code == 0, result.output
    assert "BTC/USDT" in result.output and "2018-04-07 15:00" in result.output and "2018-05-05 23:00" in result.output
    assert "619" in result.output and "62" in result.output


def test_gaps_lists_the_missing_span(filled: Candles) -> None:
    result = runner.invoke(app, ["data", "gaps", "--symbol", "BTC/USDT"])
    assert result.exit_code == 0, result.output
    assert "62" in result.output and "2d 14:00:00" in result.output
    missing = runner.invoke(app, ["data", "gaps", "--symbol", "NOPE/USDT"])
    assert missing.exit_code == 1 and "no stored series match" in missing.output


def test_export_round_trips_a_range(filled: Candles, tmp_path: Path) -> None:
    out = tmp_path / "out" / "btc-1h.parquet"
    range_args = ["--start", str(int(filled.ts[10])), "--end", str(int(filled.ts[110]))]
    result = runner.invoke(
        app,
        ["data", "export", "--exchange", "binance", "--symbol", "BTC/USDT", "--timeframe", "1h", "--out", str(out), *range_args],
    )
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.schema.metadata[b"timeframe"] == b"1h" and table.schema.metadata[b"symbol"] == b"BTC/USDT"
    assert Candles.from_arrow(table).equals(filled.slice(10, 110))
    assert not list(out.parent.glob("*.partial"))


def test_export_of_unknown_series_fails_cleanly(tmp_path: Path) -> None:
    out = tmp_path / "x.parquet"
    args = ["data", "export", "--exchange", "binance", "--symbol", "BTC/USDT", "--timeframe", "1h", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "no stored candles for binance BTC/USDT 1h" in result.output and not out.exists()
    bad = runner.invoke(app, [*args[:-3], "7m", "--out", str(out)])
    assert bad.exit_code == 1 and "unknown timeframe '7m'" in bad.output
