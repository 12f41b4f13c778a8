"""The one candle loader on a real exchange file: every command path gives the same bars."""

from __future__ import annotations

from pathlib import Path

import pytest

from pivotal.data.loaders import load_candles_file

pytestmark = pytest.mark.realdata


def test_a_real_file_gives_the_same_bars_on_every_path(shared_data: Path) -> None:
    """The optimize path too (it still reads --input through the importers; same bars for a shared-layout file)."""
    from pivotal.cli.bars import load_bars
    from pivotal.optimize.pipeline import Market, OptimizeSpec
    from pivotal.optimize.service import load_candles as optimize_load

    path = shared_data / "binance" / "ETHUSDT-1h.parquet"
    direct = load_candles_file(path, exchange="binance", symbol="ETH/USDT")
    spec = OptimizeSpec("binance", ("ETH/USDT",), ("1h",), input=str(path))
    assert optimize_load(None, spec, Market("binance", "ETH/USDT", "1h")).equals(direct)
    assert load_bars(None, None, None, None, None, path, None, None)[0].equals(direct)
    assert len(direct) == 499 and direct.timeframe == "1h"
