"""The one candle loader (``pivotal.data.loaders``): same bars on every path, one validation, one-line errors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pivotal.core.errors import DataNotFound, UserInputError
from pivotal.data.candles import Candles
from pivotal.data.duckdb_store import DuckDBStore
from pivotal.data.loaders import BarsError, SeriesNotFound, infer_timeframe, load_candles, load_candles_file

pytestmark = pytest.mark.unit

HOUR = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00Z
# Hand-written 1h bars (not market data): open, high, low, close, volume.
ROWS = [
    (100.0, 103.0, 99.0, 102.0, 5.0),
    (102.0, 104.0, 101.0, 101.5, 3.0),
    (101.5, 102.0, 98.0, 99.0, 7.0),
    (99.0, 100.5, 97.5, 100.0, 2.0),
    (100.0, 105.0, 99.5, 104.0, 9.0),
    (104.0, 104.5, 102.0, 103.0, 1.0),
]


def frame(rows: list[tuple[float, ...]] = ROWS, start: int = T0, step: int = HOUR) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["open", "high", "low", "close", "volume"])
    df.insert(0, "timestamp", [start + i * step for i in range(len(rows))])
    return df


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "bars.csv"
    frame().to_csv(path, index=False)
    return path


def expected(symbol: str = "bars") -> Candles:
    df = frame()
    return Candles.from_frame(df, "", symbol, "1h")


def test_csv_and_parquet_give_the_same_bars(csv_file: Path, tmp_path: Path) -> None:
    parquet = tmp_path / "bars.parquet"
    frame().to_parquet(parquet)
    a, b = load_candles_file(csv_file), load_candles_file(parquet)
    assert a.equals(expected()) and b.equals(a)
    assert (a.timeframe, a.symbol, a.exchange) == ("1h", "bars", "")
    assert a.ts.dtype == np.int64 and a.close.dtype == np.float64


def test_iso_datetimes_and_ts_column(tmp_path: Path) -> None:
    df = frame().rename(columns={"timestamp": "ts"})
    df["ts"] = pd.to_datetime(df["ts"], unit="ms", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    path = tmp_path / "iso.csv"
    df.to_csv(path, index=False)
    assert load_candles_file(path).ts.tolist() == [T0 + i * HOUR for i in range(6)]


def test_range_labels_and_missing_volume(csv_file: Path, tmp_path: Path) -> None:
    bars = load_candles_file(csv_file, start=T0 + HOUR, end=T0 + 4 * HOUR, exchange="binance", symbol="BTC/USDT")
    assert bars.ts.tolist() == [T0 + HOUR, T0 + 2 * HOUR, T0 + 3 * HOUR]
    assert (bars.exchange, bars.symbol, bars.close.tolist()) == ("binance", "BTC/USDT", [101.5, 99.0, 100.0])
    no_volume = tmp_path / "nv.csv"
    frame().drop(columns=["volume"]).to_csv(no_volume, index=False)
    assert load_candles_file(no_volume).volume.tolist() == [0.0] * 6


def test_every_command_path_gives_the_same_bars(csv_file: Path) -> None:
    """pivots and backtest (cli.bars), train (services.train) read --input through the same loader."""
    import json

    from typer.testing import CliRunner

    from pivotal.cli.bars import load_bars
    from pivotal.cli.main import app

    direct = load_candles_file(csv_file)
    via_cli, source = load_bars(None, None, None, None, None, csv_file, None, None)
    assert source == str(csv_file) and via_cli.equals(direct) and via_cli.timeframe == direct.timeframe == "1h"
    result = CliRunner().invoke(app, ["pivots", "compute", "-i", str(csv_file), "--k", "1", "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert (doc["bars"], doc["timeframe"]) == (6, "1h")


def test_store_loader_returns_the_stored_range(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        store.write_candles(replace(expected(), exchange="binance", symbol="BTC/USDT"), source="test")
        bars = load_candles(store, "binance", "BTC/USDT", "1h", start=T0 + 2 * HOUR, end=T0 + 4 * HOUR)
        assert bars.ts.tolist() == [T0 + 2 * HOUR, T0 + 3 * HOUR]
        assert load_candles(store, "binance", "BTC/USDT", "1h").equals(expected())
    finally:
        store.close()


def test_infer_timeframe() -> None:
    assert infer_timeframe(np.array([0, HOUR, 2 * HOUR, 4 * HOUR])) == "1h"
    assert infer_timeframe(np.array([0, 7 * 60_000])) is None
    assert infer_timeframe(np.array([0])) is None


# --- errors: one line each, naming what and where, with the fix ------------------------------------------------------


def _message(exc_info: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(exc_info.value)
    assert "\n" not in text
    return text


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda df: df.drop(columns=["close"]), "missing column(s) close; found timestamp, open, high, low, volume"),
        (
            lambda df: df.assign(timestamp=df["timestamp"] * 1000 + 1),
            "line 2, field ts: value '1704067200000001' (µs) is not a whole millisecond",
        ),
        (lambda df: df.assign(timestamp=-df["timestamp"]), "line 2, field ts: value '-1704067200000' is outside 2009-01-01"),
        (lambda df: df.iloc[[0, 2, 1, 3]], "row 2, field 'ts': value 1704070800000 is earlier than the previous row"),
        (lambda df: df.iloc[[0, 1, 1, 2]], "row 2, field 'ts': value 1704070800000 repeats the previous row's timestamp"),
        (
            lambda df: df.assign(low=[99.0, 101.0, 98.0, 101.0, 99.5, 102.0]),
            "row 3, field 'low': value 101.0 is above open or close",
        ),
        (
            lambda df: df.assign(close=[102.0, -1.0, 99.0, 100.0, 104.0, 103.0]),
            "row 1, field 'close': value -1.0 is not a positive price",
        ),
        (lambda df: df.assign(volume=[1.0, 1.0, -2.0, 1.0, 1.0, 1.0]), "row 2, field 'volume': value -2.0 is negative"),
        (
            lambda df: df.assign(timestamp=df["timestamp"] + 5),
            "row 0, field 'ts': value 1704067200005 is not aligned to the 1h grid",
        ),
        (lambda df: df.assign(close=["1", "2", "x", "4", "5", "6"]), "row 2, field 'close': cannot parse 'x' as a number"),
        (lambda df: df.head(1), "cannot tell the timeframe (a single bar); pass --timeframe"),
    ],
)
def test_bad_files_are_named(tmp_path: Path, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.csv"
    mutate(frame()).to_csv(path, index=False)
    with pytest.raises(BarsError) as exc_info:
        load_candles_file(path)
    assert _message(exc_info).startswith(f"{path}: ") and message in str(exc_info.value)
    assert isinstance(exc_info.value, UserInputError)


def test_file_argument_errors(tmp_path: Path, csv_file: Path) -> None:
    with pytest.raises(BarsError, match=r"nope\.csv: file not found$"):
        load_candles_file(tmp_path / "nope.csv")
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(BarsError, match=r"x\.txt: unsupported file type '\.txt'; use \.parquet or \.csv$"):
        load_candles_file(tmp_path / "x.txt")
    with pytest.raises(BarsError, match=r"unknown timeframe '1H' \(did you mean '1h'\?\); use one of: 1s 1m 3m"):
        load_candles_file(csv_file, timeframe="1H")
    with pytest.raises(BarsError, match=r"^empty time range: start 2024-01-01T01:00:00Z is not before end 2024-01-01T00:00:00Z"):
        load_candles_file(tmp_path / "never-read.csv", start=T0 + HOUR, end=T0)  # checked before any I/O
    with pytest.raises(BarsError, match="not aligned to the 4h grid"):
        load_candles_file(csv_file, timeframe="4h")


class _NoIO:
    """A store that fails on any read: argument errors must come first."""

    def candles(self, *args: object) -> Candles:
        raise AssertionError("read the store")

    def series(self) -> list[object]:
        raise AssertionError("read the store")


def test_store_argument_errors_come_before_io() -> None:
    with pytest.raises(BarsError, match=r"^unknown timeframe '1H' \(did you mean '1h'\?\); use one of: 1s 1m 3m 5m 15m"):
        load_candles(_NoIO(), "binance", "BTC/USDT", "1H")  # type: ignore[arg-type]
    with pytest.raises(BarsError, match=r"^empty time range"):
        load_candles(_NoIO(), "binance", "BTC/USDT", "1h", start=T0, end=T0)  # type: ignore[arg-type]


def test_missing_series_says_what_is_stored(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        with pytest.raises(SeriesNotFound) as exc_info:
            load_candles(store, "binance", "BTC/USDT", "1h")
        assert _message(exc_info) == (
            "no stored candles for binance BTC/USDT 1h: the store is empty; "
            "import first (`pivotal data import` / `pivotal data download`)"
        )
        assert isinstance(exc_info.value, DataNotFound)
        bars = replace(expected(), exchange="binance", symbol="BTC/USDT")
        store.write_candles(bars, source="test")
        store.write_candles(replace(bars, symbol="ETH/USDT"), source="test")
        cases = {
            ("binance", "BTCUSDT", "1h"): "no stored candles for binance BTCUSDT 1h: binance has no symbol 'BTCUSDT' "
            "(stored: BTC/USDT, ETH/USDT); did you mean 'BTC/USDT'?",
            ("Binance", "BTC/USDT", "1h"): "no stored candles for Binance BTC/USDT 1h: no series of exchange 'Binance' "
            "(stored exchanges: binance); did you mean 'binance'?",
            ("binance", "BTC/USDT", "4h"): "no stored candles for binance BTC/USDT 4h: stored timeframes of binance "
            "BTC/USDT: 1h; pick one, or import 4h (`pivotal data import` / `pivotal data download`)",
            ("binance", "SOL/USDT", "1h"): "no stored candles for binance SOL/USDT 1h: binance has no symbol 'SOL/USDT' "
            "(stored: BTC/USDT, ETH/USDT); import it first (`pivotal data import` / `pivotal data download`)",
        }
        for (ex, sym, tf), message in cases.items():
            with pytest.raises(SeriesNotFound) as exc_info:
                load_candles(store, ex, sym, tf)
            assert _message(exc_info) == message
        with pytest.raises(SeriesNotFound) as exc_info:
            load_candles(store, "binance", "BTC/USDT", "1h", start=T0 + 100 * HOUR)
        assert _message(exc_info) == (
            "no stored candles for binance BTC/USDT 1h in the requested range [2024-01-05T04:00:00Z, (last)): "
            "stored from 2024-01-01T00:00:00Z to 2024-01-01T05:00:00Z; widen the range or import the missing bars"
        )
    finally:
        store.close()


def test_bars_error_is_the_pivots_cli_error(tmp_path: Path) -> None:
    """The CLI prints the loader's line (no traceback) and exits 1."""
    from typer.testing import CliRunner

    from pivotal.cli.main import app

    path = tmp_path / "bad.csv"
    frame().assign(timestamp=lambda f: f["timestamp"] * 1000 + 1).to_csv(path, index=False)
    result = CliRunner().invoke(app, ["pivots", "compute", "-i", str(path)])
    assert result.exit_code == 1 and "(µs) is not a whole millisecond" in " ".join(result.output.split())
    assert "Traceback" not in result.output
    result = CliRunner().invoke(app, ["pivots", "compute", "-e", "binance", "-s", "BTCUSDT", "-t", "1h"])
    assert result.exit_code == 1 and "the store is empty; import first" in " ".join(result.output.split())


def test_cli_refuses_a_bad_range_before_opening_the_store(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pivotal.cli.main import app

    args = ["pivots", "compute", "-e", "binance", "-s", "BTC/USDT", "-t", "1h", "--start", "2024-02-01", "--end", "2024-01-01"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    message = "empty time range: start 2024-02-01T00:00:00Z is not before end 2024-01-01T00:00:00Z"
    assert message in " ".join(result.output.split())
    assert not (tmp_path / "pivotal-data").exists()  # the data dir of this test (conftest): never created
