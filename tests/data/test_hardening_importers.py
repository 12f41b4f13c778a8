"""Issue #9: importers never store wrong times and never stop a run with a traceback.

Hermetic: tiny hand-written bar series (three 1m bars), no ../shared data.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pivotal.data.duckdb_store import DuckDBStore
from pivotal.data.importers import ImportOptions, import_path
from pivotal.data.store import MarketStore

pytestmark = pytest.mark.unit

T0 = 1_709_251_200_000  # 2024-03-01 00:00 UTC, epoch ms
MINUTE = 60_000
INTERNAL_ERROR = "internal error"  # what dispatch calls an unexpected exception
TS = [T0, T0 + MINUTE, T0 + 2 * MINUTE]
OHLCV = {
    "open": [100.0, 101.0, 102.0],
    "high": [101.5, 102.5, 103.5],
    "low": [99.5, 100.5, 101.5],
    "close": [101.0, 102.0, 103.0],
    "volume": [1.5, 2.5, 3.5],
}


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[MarketStore]:
    store = DuckDBStore(tmp_path / "hardening.duckdb")
    yield store
    store.close()


def shared_file(root: Path, timestamp: pa.Array, name: str = "BTCUSDT-1m.parquet") -> Path:
    path = root / "binance" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"timestamp": timestamp, **OHLCV}), path)
    return path


def kline_line(ts: str, i: int = 0) -> str:
    o, h, lo, c, v = (OHLCV[k][i] for k in ("open", "high", "low", "close", "volume"))
    return f"{ts},{o},{h},{lo},{c},{v},0,0,0,0,0,0\n"


def good_dump(folder: Path, name: str = "ETHUSDT-1m-2024-03.csv") -> Path:
    path = folder / name
    path.write_text("".join(kline_line(str(t), i) for i, t in enumerate(TS)))
    return path


# --- 1. Arrow temporal types convert by their unit -------------------------------------------------------------------


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize("tz", [None, "UTC"])
def test_parquet_arrow_timestamps_convert_by_their_unit(duck: MarketStore, tmp_path: Path, unit: str, tz: str | None) -> None:
    scale = {"s": 1 / 1000, "ms": 1, "us": 1000, "ns": 1_000_000}[unit]
    raw = pa.array([int(t * scale) for t in TS], pa.timestamp(unit, tz=tz))
    path = shared_file(tmp_path, raw)
    report = import_path(duck, path)
    assert report.ok, report.files
    assert duck.candles("binance", "BTC/USDT", "1m").ts.tolist() == TS


def test_parquet_written_by_pandas_with_a_datetime_column_imports_exact_times(duck: MarketStore, tmp_path: Path) -> None:
    frame = pd.DataFrame({"timestamp": pd.to_datetime(TS, unit="ms"), **OHLCV})  # datetime64[ns] -> timestamp[ns]/[us]
    path = tmp_path / "binance" / "BTCUSDT-1m.parquet"
    path.parent.mkdir()
    frame.to_parquet(path)
    assert import_path(duck, path).ok
    assert duck.candles("binance", "BTC/USDT", "1m").ts.tolist() == TS


@pytest.mark.parametrize(
    ("timestamp", "row", "shown"),
    [
        (pa.array([t // 1000 for t in TS], pa.int64()), 0, "1709251200"),  # seconds stored where ms are expected
        (pa.array([TS[0], -60_000, TS[2]], pa.int64()), 1, "-60000"),  # negative: would be 1969 data
        (pa.array([TS[0], TS[1], TS[2] * 1000], pa.int64()), 2, "1709251320000000"),  # µs stored as ms: far future
        (pa.array([TS[0] * 1000, TS[1] * 1000, 4_102_444_800_000 * 1000], pa.timestamp("us")), 2, "2100-01-01T00:00:00"),
    ],
    ids=["seconds-as-ms", "negative", "us-as-ms", "year-2100"],
)
def test_parquet_times_outside_the_sane_range_are_rejected_with_file_row_field(
    duck: MarketStore, tmp_path: Path, timestamp: pa.Array, row: int, shown: str
) -> None:
    path = shared_file(tmp_path, timestamp)
    [result] = import_path(duck, path).files
    assert result.status == "error"
    assert result.message.startswith(f"{path}: row {row}, field timestamp: value ")
    assert shown in result.message and "is outside 2009-01-01 00:00 .. " in result.message and "check the unit" in result.message
    assert duck.series() == []


def test_parquet_sub_millisecond_timestamp_is_rejected_not_floored(duck: MarketStore, tmp_path: Path) -> None:
    us = [t * 1000 for t in TS]
    us[1] += 400
    path = shared_file(tmp_path, pa.array(us, pa.timestamp("us")))
    [result] = import_path(duck, path).files
    assert result.status == "error"
    assert result.message == (
        f"{path}: row 1, field timestamp: value '2024-03-01T00:01:00.000400' (timestamp[us]) is not a whole millisecond; "
        "fix: round times to bar open times"
    )


def test_parquet_iso_strings_import_and_a_bad_one_names_its_row(duck: MarketStore, tmp_path: Path) -> None:
    iso = ["2024-03-01T00:00:00Z", "2024-03-01T01:01:00+01:00", "2024-03-01 00:02:00"]
    assert import_path(duck, shared_file(tmp_path, pa.array(iso))).ok
    assert duck.candles("binance", "BTC/USDT", "1m").ts.tolist() == TS
    bad = shared_file(tmp_path, pa.array([iso[0], iso[1], "yesterday"]), "ETHUSDT-1m.parquet")
    [result] = import_path(duck, bad).files
    assert result.message == f"{bad}: row 2, field timestamp: value 'yesterday' cannot be parsed as an epoch or ISO-8601 time"


# --- 1. every epoch unit behaves like ms in CSV ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "problem"),
    [
        ("1709251260.0004", "is not a whole millisecond"),  # seconds, 0.4 ms off: was floored onto the grid
        ("1709251260000.4", "is not a whole millisecond"),  # ms with a fraction: was truncated
        ("1709251260000400", "(µs) is not a whole millisecond"),  # µs, was floored
        ("1709251260000000400", "(ns) is not a whole millisecond"),  # ns, was floored
        ("99999999999999999999", "is too large for an epoch timestamp"),  # overflow: reported a wrapped value
        ("-60", "is outside 2009-01-01 00:00 .. "),  # negative: was stored as 1969-12-31 23:59
        ("60", "is outside 2009-01-01 00:00 .. "),  # 1970
    ],
)
def test_dump_timestamps_in_every_unit_behave_like_ms(duck: MarketStore, tmp_path: Path, cell: str, problem: str) -> None:
    path = tmp_path / "BTCUSDT-1m-2024-03.csv"
    path.write_text(kline_line(str(TS[0]), 0) + kline_line(cell, 1) + kline_line(str(TS[2]), 2))
    [result] = import_path(duck, path).files
    assert result.status == "error"
    assert result.message.startswith(f"{path}: line 2, field ts: value {cell!r} {problem}"), result.message
    assert duck.series() == []


@pytest.mark.parametrize("scale", [1 / 1000, 1, 1000, 1_000_000])
def test_dump_timestamps_on_the_grid_import_in_every_unit(duck: MarketStore, tmp_path: Path, scale: float) -> None:
    path = tmp_path / "BTCUSDT-1m-2024-03.csv"
    path.write_text("".join(kline_line(str(int(t * scale)), i) for i, t in enumerate(TS)))
    assert import_path(duck, path).ok
    assert duck.candles("binance", "BTC/USDT", "1m").ts.tolist() == TS


def test_off_grid_by_half_a_bar_is_rejected_alike_in_seconds_and_ms(duck: MarketStore, tmp_path: Path) -> None:
    half_bar = TS[1] + 30_000
    for name, cell in (("AAAUSDT-1m-2024-03.csv", str(half_bar // 1000)), ("BBBUSDT-1m-2024-03.csv", str(half_bar))):
        path = tmp_path / name
        path.write_text(kline_line(str(TS[0]), 0) + kline_line(cell, 1))
        [result] = import_path(duck, path).files
        assert result.status == "error" and "row 1, field 'ts'" in result.message
        assert "not aligned to the 1m grid" in result.message


def test_generic_csv_iso_with_sub_millisecond_is_rejected(duck: MarketStore, tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    rows = ["2024-03-01T00:00:00Z", "2024-03-01T00:01:00.0004Z", "2024-03-01T00:02:00Z"]
    body = "".join(
        f"{t},{OHLCV['open'][i]},{OHLCV['high'][i]},{OHLCV['low'][i]},{OHLCV['close'][i]},1\n" for i, t in enumerate(rows)
    )
    path.write_text("ts,open,high,low,close,volume\n" + body)
    options = ImportOptions(fmt="csv", exchange="kraken", symbol="BTC/USD", timeframe="1m")
    [result] = import_path(duck, path, options).files
    assert result.message == (
        f"{path}: line 3, field ts: value '2024-03-01T00:01:00.0004Z' is not a whole millisecond; "
        "fix: round times to bar open times"
    )


def test_freqtrade_feather_sub_millisecond_and_json_negative_are_rejected(duck: MarketStore, tmp_path: Path) -> None:
    folder = tmp_path / "binance"
    folder.mkdir()
    dates = pd.to_datetime(TS, unit="ms", utc=True) + pd.to_timedelta([0, 1, 0], unit="us")
    pd.DataFrame({"date": dates, **OHLCV}).to_feather(folder / "BTC_USDT-1m.feather")
    rows = [[t, *(OHLCV[k][i] for k in ("open", "high", "low", "close", "volume"))] for i, t in enumerate(TS)]
    rows[2][0] = -1
    (folder / "ETH_USDT-1m.json").write_text(json.dumps(rows))
    report = import_path(duck, folder)
    messages = {Path(f.path).name: f.message for f in report.files}
    assert (
        "row 1, field date: value '2024-03-01T00:01:00.000001+00:00' (timestamp[ns, tz=UTC]) is not a whole millisecond"
        in (messages["BTC_USDT-1m.feather"])
    )
    assert "row 2, field ts: value -1 is outside 2009-01-01" in messages["ETH_USDT-1m.json"]
    assert duck.series() == []


# --- 3. crashes become one line per file, and the run goes on -----------------------------------------------------


def zipped(folder: Path, name: str, method: int) -> Path:
    path = folder / name
    with zipfile.ZipFile(path, "w", compression=method) as archive:
        archive.writestr(name.replace(".zip", ".csv"), "".join(kline_line(str(t), i) for i, t in enumerate(TS)) * 50)
    return path


def data_offset(path: Path) -> int:
    """Where the first member's (compressed) bytes start: after the 30-byte local header, the name and the extra."""
    raw = path.read_bytes()
    name_len, extra_len = int.from_bytes(raw[26:28], "little"), int.from_bytes(raw[28:30], "little")
    return 30 + name_len + extra_len


def bad_crc_zip(folder: Path) -> Path:
    path = zipped(folder, "AAAUSDT-1m-2024-03.zip", zipfile.ZIP_STORED)
    raw = bytearray(path.read_bytes())
    at = data_offset(path) + 5
    raw[at] = ord("9") if raw[at] != ord("9") else ord("8")  # a digit changed: still CSV, but the CRC-32 no longer matches
    path.write_bytes(bytes(raw))
    return path


def bad_deflate_zip(folder: Path) -> Path:
    path = zipped(folder, "BBBUSDT-1m-2024-03.zip", zipfile.ZIP_DEFLATED)
    raw = bytearray(path.read_bytes())
    raw[data_offset(path)] = 0xFF  # BTYPE=11 is reserved in deflate: zlib.error "invalid block type"
    path.write_bytes(bytes(raw))
    return path


def json_with_dict(folder: Path) -> Path:
    path = folder / "binance" / "AAA_USDT-1m.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps([[TS[0], 1, 2, 0.5, 1.5, 3], [TS[1], {"open": 1}, 2, 0.5, 1.5, 3]]))
    return path


def json_deeply_nested(folder: Path) -> Path:
    path = folder / "binance" / "BBB_USDT-1m.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text("[" * 100_000 + "]" * 100_000)
    return path


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (bad_crc_zip, "damaged zip archive (BadZipFile: Bad CRC-32 for file 'AAAUSDT-1m-2024-03.csv'); fix: download"),
        (bad_deflate_zip, "damaged zip archive (error: Error -3 while decompressing data: invalid block type); fix: download"),
        (json_with_dict, "row 1: expected [ms, open, high, low, close, volume] numbers, got [1709251260000, {'open': 1}"),
        (json_deeply_nested, "JSON nested too deeply to be a candle list; fix: export the pair again"),
    ],
    ids=["bad-crc", "bad-deflate", "dict-in-row", "deep-nesting"],
)
def test_broken_files_give_one_line_and_later_files_are_still_imported(
    duck: MarketStore, tmp_path: Path, make: object, expected: str
) -> None:
    bad = make(tmp_path)  # type: ignore[operator]
    good = good_dump(tmp_path / "binance" if bad.suffix == ".json" else tmp_path, "ZZZUSDT-1m-2024-03.csv")
    report = import_path(duck, [bad, good], ImportOptions(exchange="binance"))
    assert [f.status for f in report.files] == ["error", "ok"]
    message = report.files[0].message
    assert message.startswith(f"{bad}: ") and expected in message and "\n" not in message
    assert INTERNAL_ERROR not in message
    assert duck.candles("binance", "ZZZ/USDT", "1m").ts.tolist() == TS
    assert [s.symbol for s in duck.series()] == ["ZZZ/USDT"]  # nothing of the bad file


def test_cli_prints_the_summary_for_a_broken_zip_and_imports_the_rest(tmp_path: Path) -> None:
    from pivotal.cli.main import app

    folder = tmp_path / "dumps"
    folder.mkdir()
    bad = bad_crc_zip(folder)
    good_dump(folder, "ZZZUSDT-1m-2024-03.csv")
    result = CliRunner(env={"COLUMNS": "400"}).invoke(app, ["data", "import", str(folder), "--data-dir", str(tmp_path / "d")])
    assert result.exit_code == 1
    assert ("Traceback" not in result.output and result.exception is None) or isinstance(result.exception, SystemExit)
    assert bad.name in result.output and "damaged zip archive" in result.output
    assert "ZZZ/USDT" in result.output and "1 file(s) failed" in result.output
    store = DuckDBStore(tmp_path / "d" / "pivotal.duckdb")
    try:
        assert store.candles("binance", "ZZZ/USDT", "1m").ts.tolist() == TS
    finally:
        store.close()


def test_an_unreadable_parquet_is_one_line(duck: MarketStore, tmp_path: Path) -> None:
    path = tmp_path / "binance" / "BTCUSDT-1m.parquet"
    path.parent.mkdir()
    path.write_bytes(b"PAR1 this is not parquet PAR1")
    [result] = import_path(duck, path).files
    assert result.status == "error"
    assert result.message.startswith(f"{path}: not a readable Parquet file (")
    assert result.message.endswith("; fix: write or download it again")


def test_text_prices_in_parquet_are_named(duck: MarketStore, tmp_path: Path) -> None:
    path = tmp_path / "binance" / "BTCUSDT-1m.parquet"
    path.parent.mkdir()
    pq.write_table(pa.table({"timestamp": TS, **OHLCV, "close": ["1", "2", "x"]}), path)
    [result] = import_path(duck, path).files
    assert result.message == f"{path}: field close: type string is not numeric; fix: store close as float64"


def test_epoch_ms_keeps_its_magnitude_rule() -> None:
    from pivotal.data.importers.base import epoch_ms

    ms = 1_735_689_600_000
    assert epoch_ms(np.array([ms // 1000, ms, ms * 1000, ms * 1_000_000])).tolist() == [ms] * 4


def test_trade_dump_microsecond_times_keep_ms_resolution(duck: MarketStore, tmp_path: Path) -> None:
    """Trades are events, not bars: a µs time that is not a whole ms is kept at the store's ms resolution, not rejected."""
    path = tmp_path / "BTCUSDT-trades-2025-01.csv"
    us = [TS[0] * 1000 + 123, TS[0] * 1000 + 999, TS[1] * 1000]
    path.write_text("".join(f"{i + 1},100.5,0.01,1.005,{t},True,True\n" for i, t in enumerate(us)))
    assert import_path(duck, path).ok
    assert duck.trades("binance", "BTC/USDT").ts.tolist() == [TS[0], TS[0], TS[1]]


@pytest.mark.parametrize(
    ("timestamp", "shown"),
    [
        (pa.array([-62_135_596_801, TS[1] // 1000, TS[2] // 1000], pa.timestamp("s")), "-62135596801"),  # before year 1
        (pa.array([-719_163, 0, 0], pa.date32()), "value -719163 is outside"),  # year 0: shown as stored
    ],
    ids=["seconds-before-year-1", "date32-year-0"],
)
def test_times_python_cannot_represent_are_one_line_errors(
    duck: MarketStore, tmp_path: Path, timestamp: pa.Array, shown: str
) -> None:
    """Found by the fuzz tests: these printed 'internal error' (OverflowError / ArrowNotImplementedError) before."""
    path = tmp_path / "binance" / "BTCUSDT-1m.parquet"
    path.parent.mkdir()
    pq.write_table(pa.table({"timestamp": timestamp, **OHLCV}), path)
    [result] = import_path(duck, path).files
    assert result.status == "error" and INTERNAL_ERROR not in result.message
    assert result.message.startswith(f"{path}: row 0, field timestamp: value ") and shown in result.message


def test_a_seconds_timestamp_that_overflows_as_ms_does_not_wrap_into_range() -> None:
    from pivotal.data.importers.base import ImportFormatError, arrow_epoch_ms

    wraps = (2**64 + TS[0] + 384) // 1000  # times 1000 wraps around int64 to TS[0] + 384 ms: a plausible 2024 time
    with pytest.raises(ImportFormatError, match=r"^f.feather: row 0, field date: value \d+ is outside 2009-01-01"):
        arrow_epoch_ms(pa.array([wraps], pa.timestamp("s")), "f.feather", "date")
