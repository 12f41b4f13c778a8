"""``pivotal testexchange serve`` starts the exchange on loopback, prints where it listens, and stops cleanly; a bad
symbol or data folder is one line, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pivotal.cli.main import app

pytestmark = pytest.mark.realdata


def test_serve_prints_its_urls_and_stops(shared_data: Path) -> None:
    args = ["testexchange", "serve", "--data", str(shared_data), "--symbols", "ETH/USDT", "--port", "0", "--speed", "60"]
    result = CliRunner().invoke(app, [*args, "--timeframes", "1h", "--for", "0.3"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("rest http://127.0.0.1:") and lines[3].startswith("ws-api ws://127.0.0.1:")
    assert lines[-1] == "test exchange stopped"


def test_serve_refuses_unknown_symbol_and_missing_data_in_one_line(tmp_path: Path, shared_data: Path) -> None:
    runner = CliRunner()
    bad_symbol = runner.invoke(
        app, ["testexchange", "serve", "--data", str(shared_data), "--symbols", "DOGE/USDT", "--for", "0.1"]
    )
    assert bad_symbol.exit_code == 1
    assert "no Binance filters known for 'DOGE/USDT'" in bad_symbol.output and "Traceback" not in bad_symbol.output
    no_data = runner.invoke(app, ["testexchange", "serve", "--data", str(tmp_path), "--for", "0.1"])
    flat = no_data.output.replace("\n", " ")
    assert no_data.exit_code == 1 and "no recorded BTCUSDT klines (1m, 1h) under" in flat and "Traceback" not in flat
