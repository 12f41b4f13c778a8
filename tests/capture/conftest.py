"""Shared inputs of the capture tests: the recorded BTCUSDT spot market (read once) and its recorded streams."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pivotal.testexchange.tape import SymbolData, load_symbol


@pytest.fixture(scope="session")
def btc_spot(shared_data: Path) -> dict[str, SymbolData]:
    return {"BTCUSDT": load_symbol(shared_data, "BTCUSDT", ("1m",))}


@pytest.fixture(scope="session")
def recorded_diffs(shared_data: Path) -> pd.DataFrame:
    return pd.read_parquet(shared_data / "binance" / "BTCUSDT-depth_updates.parquet")


@pytest.fixture(scope="session")
def book_ticker(shared_data: Path) -> pd.DataFrame:
    return pd.read_parquet(shared_data / "binance" / "BTCUSDT-book_ticker.parquet").sort_values("update_id", kind="stable")


@pytest.fixture(scope="session")
def btc_usdm(shared_data: Path) -> dict[str, SymbolData]:
    return {"BTCUSDT": load_symbol(shared_data, "BTCUSDT", (), "binance-usdm")}


@pytest.fixture(scope="session")
def recorded_usdm(shared_data: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The USD-M BTCUSDT diffs and bookTicker as recorded."""
    folder = shared_data / "binance-usdm"
    diffs = pd.read_parquet(folder / "BTCUSDT-depth_updates.parquet")
    ticker = pd.read_parquet(folder / "BTCUSDT-book_ticker.parquet").sort_values("update_id", kind="stable")
    return diffs, ticker
