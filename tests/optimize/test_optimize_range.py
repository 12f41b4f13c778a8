"""`pivotal optimize --start/--end` (issue #9): only the bars of the range are searched; a stored spec without a range
stays what it was (jobs of earlier releases still resume); an empty range is refused before any job record exists."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pivotal.cli.main import app
from pivotal.config import load_settings
from pivotal.data.backends import open_store
from pivotal.optimize.jobs import JobRepository
from pivotal.optimize.pipeline import Market, OptimizeSpec
from pivotal.optimize.service import load_candles

JAN_2019, JUL_2019 = 1_546_300_800_000, 1_561_939_200_000


@pytest.mark.unit
def test_a_spec_without_a_range_serialises_as_before() -> None:
    spec = OptimizeSpec("binance", ("BTC/USDT",), ("1h",))
    assert "start" not in spec.to_dict() and "end" not in spec.to_dict()
    ranged = OptimizeSpec("binance", ("BTC/USDT",), ("1h",), start=JAN_2019, end=JUL_2019)
    assert OptimizeSpec.from_dict(ranged.to_dict()) == ranged and OptimizeSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.realdata
def test_only_the_range_is_loaded(shared_data: Path) -> None:
    path = shared_data / "coinbase" / "BTCUSD-4h.parquet"
    spec = OptimizeSpec("coinbase", ("BTC/USD",), ("4h",), input=str(path), start=JAN_2019, end=JUL_2019)
    bars = load_candles(None, spec, Market("coinbase", "BTC/USD", "4h"))
    assert int(bars.ts[0]) == JAN_2019 and int(bars.ts[-1]) == JUL_2019 - 4 * 3_600_000


@pytest.mark.realdata
def test_an_empty_range_is_refused_before_a_job_exists(shared_data: Path) -> None:
    path = str(shared_data / "coinbase" / "BTCUSD-4h.parquet")
    args = ["optimize", "-i", path, "-e", "coinbase", "-s", "BTC/USD", "-t", "4h", "--start", "2020-01-01", "--end", "2019-01-01"]
    result = CliRunner().invoke(app, [*args, "--job-id", "empty-range", "--no-progress"])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "empty time range: start 2020-01-01T00:00:00Z is not before end 2019-01-01T00:00:00Z" in text
    store = open_store(load_settings())
    try:
        assert JobRepository(store).get("empty-range") is None
    finally:
        store.close()
