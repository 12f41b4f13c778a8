"""Settings precedence, timeframe parsing and the columnar candle container."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pivotal.config import Settings
from pivotal.core.timeframes import parse_timeframes, timeframe_ms
from pivotal.data.candles import Candles


def test_settings_precedence_defaults_file_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('store = "postgres"\nreference_symbol = "ETH/USDT"\n')
    monkeypatch.setenv("PIVOTAL_CONFIG", str(cfg))
    monkeypatch.delenv("PIVOTAL_DATA_DIR", raising=False)
    s = Settings()
    assert s.store == "postgres" and s.reference_symbol == "ETH/USDT"
    assert s.data_dir.name == "pivotal"
    monkeypatch.setenv("PIVOTAL_STORE", "duckdb")
    assert Settings().store == "duckdb"  # env beats file
    assert Settings(store="postgres").store == "postgres"  # explicit beats env


def test_secrets_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIVOTAL_EXCHANGE_API_KEY", "abc-very-private")
    s = Settings()
    assert s.exchange_api_key is not None
    assert "abc-very-private" not in repr(s) and "abc-very-private" not in str(s.model_dump())
    assert s.exchange_api_key.get_secret_value() == "abc-very-private"


def test_timeframes() -> None:
    assert timeframe_ms("1m") == 60_000 and timeframe_ms("1w") == 7 * 86_400_000
    assert parse_timeframes("1m, 1h") == ["1m", "1h"]
    with pytest.raises(ValueError, match="unknown timeframe '7m'; use one of: 1s 1m"):
        timeframe_ms("7m")


def test_candles_round_trip_and_shape_check() -> None:
    c = Candles(
        np.array([0, 60_000]),
        np.array([1.0, 2]),
        np.array([2.0, 3]),
        np.array([0.5, 1]),
        np.array([1.5, 2.5]),
        np.array([10.0, 0]),
        "binance",
        "BTC/USDT",
        "1m",
    )
    assert Candles.from_frame(c.to_frame()).equals(c)
    assert Candles.from_arrow(c.to_arrow()).equals(c)
    assert len(c.slice(1, 2)) == 1
    with pytest.raises(ValueError, match=r"Candles.high has 1 rows, ts has 2"):
        Candles(c.ts, c.open, c.high[:1], c.low, c.close, c.volume)
