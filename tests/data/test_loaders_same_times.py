"""Issue #9: ``--input FILE`` (pivots, backtest: ``cli.bars.load_bars`` -> ``load_candles_file``) and ``data import``
read bar times by the same rules (``importers.base``): the same file gives identical timestamps, or the same error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pivotal.cli.bars import load_bars
from pivotal.data.duckdb_store import DuckDBStore
from pivotal.data.importers import ImportOptions, import_path
from pivotal.data.importers.generic_csv import parse_mapping
from pivotal.data.loaders import BarsError, load_candles_file

pytestmark = pytest.mark.unit

HOUR = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00Z
TS = [T0 + i * HOUR for i in range(4)]
# Hand-written 1h bars (not market data).
PRICES = {
    "open": [100.0, 102.0, 101.5, 99.0],
    "high": [103.0, 104.0, 102.0, 100.5],
    "low": [99.0, 101.0, 98.0, 97.5],
    "close": [102.0, 101.5, 99.0, 100.0],
    "volume": [5.0, 3.0, 7.0, 2.0],
}


def imported(tmp_path: Path, path: Path, options: ImportOptions) -> tuple[str, np.ndarray]:
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        [result] = import_path(store, path, options).files
        ts = store.candles("binance", "BTC/USDT", "1h").ts if result.status == "ok" else np.empty(0, np.int64)
        return result.message, ts
    finally:
        store.close()


def loaded(path: Path) -> tuple[str, np.ndarray]:
    try:
        direct = load_candles_file(path)
    except BarsError as exc:
        return str(exc), np.empty(0, np.int64)
    via_cli, _ = load_bars(None, None, None, None, None, path, None, None)
    assert via_cli.equals(direct)
    return "", direct.ts


def parquet(tmp_path: Path, times: pa.Array) -> Path:
    path = tmp_path / "binance" / "BTCUSDT-1h.parquet"
    path.parent.mkdir(exist_ok=True)
    pq.write_table(pa.table({"timestamp": times, **{k: pa.array(v) for k, v in PRICES.items()}}), path)
    return path


@pytest.mark.parametrize("unit", ["us", "ns"])
@pytest.mark.parametrize("tz", [None, "UTC"])
def test_parquet_arrow_timestamps_give_the_same_times(tmp_path: Path, unit: str, tz: str | None) -> None:
    scale = {"us": 1000, "ns": 1_000_000}[unit]
    path = parquet(tmp_path, pa.array([t * scale for t in TS], pa.timestamp(unit, tz)))
    message, via_import = imported(tmp_path, path, ImportOptions())
    assert message == "" and via_import.tolist() == TS
    error, via_loader = loaded(path)
    assert error == "" and via_loader.tolist() == via_import.tolist()


@pytest.mark.parametrize("unit", ["us", "ns"])
def test_a_sub_millisecond_parquet_time_is_the_same_error_on_both_paths(tmp_path: Path, unit: str) -> None:
    scale = {"us": 1000, "ns": 1_000_000}[unit]
    path = parquet(tmp_path, pa.array([t * scale + (i == 2) for i, t in enumerate(TS)], pa.timestamp(unit)))
    message, _ = imported(tmp_path, path, ImportOptions())
    error, _ = loaded(path)  # the loader used to floor it silently onto the grid
    assert "row 2, field timestamp" in message and "is not a whole millisecond" in message
    assert error == message


def test_parquet_iso_strings_give_the_same_times(tmp_path: Path) -> None:
    text = ["2024-01-01T00:00:00Z", "2024-01-01T02:00:00+01:00", "2024-01-01 02:00:00", "2024-01-01T03:00:00.000Z"]
    path = parquet(tmp_path, pa.array(text))
    message, via_import = imported(tmp_path, path, ImportOptions())
    assert message == "" and via_import.tolist() == TS
    error, via_loader = loaded(path)
    assert error == "" and via_loader.tolist() == TS


@pytest.mark.parametrize(
    "times",
    [
        [t // 1000 for t in TS],  # epoch seconds: the loader used to refuse what `data import` accepts
        [t * 1000 for t in TS],  # µs
        TS,
        ["2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z", "2024-01-01T03:00:00+01:00", "2024-01-01T03:00:00Z"],
    ],
    ids=["s", "us", "ms", "iso"],
)
def test_csv_times_are_the_same_through_the_loader_and_a_csv_import(tmp_path: Path, times: list[object]) -> None:
    path = tmp_path / "bars.csv"
    pd.DataFrame({"timestamp": times, **PRICES}).to_csv(path, index=False)
    options = ImportOptions(
        fmt="csv", exchange="binance", symbol="BTC/USDT", timeframe="1h", mapping=parse_mapping("ts=timestamp")
    )
    message, via_import = imported(tmp_path, path, options)
    assert message == "" and via_import.tolist() == TS
    error, via_loader = loaded(path)
    assert error == "" and via_loader.tolist() == TS


def test_pivots_compute_reads_a_nanosecond_parquet(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from pivotal.cli.main import app

    path = parquet(tmp_path, pa.array([t * 1_000_000 for t in TS], pa.timestamp("ns", "UTC")))
    result = CliRunner().invoke(app, ["pivots", "compute", "-i", str(path), "--k", "1", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert (json.loads(result.stdout)["bars"], json.loads(result.stdout)["timeframe"]) == (4, "1h")
