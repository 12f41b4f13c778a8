"""The recorded BTCUSDT market, read once per session and shared (read-only) by every test exchange."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pivotal.testexchange import TestExchange
from pivotal.testexchange.tape import SymbolData, load_symbol


@pytest.fixture(scope="session")
def btc_market(shared_data: Path) -> dict[str, SymbolData]:
    return {"BTCUSDT": load_symbol(shared_data, "BTCUSDT", ("1m", "1h"))}


@pytest.fixture
def make_exchange(shared_data: Path, btc_market: dict[str, SymbolData]) -> Callable[..., TestExchange]:
    """``make_exchange(**options)`` → a TestExchange on BTC/USDT (not started)."""

    def make(**options: Any) -> TestExchange:
        return TestExchange(shared_data, ["BTC/USDT"], preloaded=btc_market, **options)

    return make


@pytest.fixture(autouse=True)
def _no_exchange_left_running() -> Iterator[None]:
    """Every test stops the servers it started."""
    yield
    alive = [t.name for t in threading.enumerate() if t.name == "pivotal-testexchange"]
    assert alive == [], f"test exchange threads still running: {alive}"
