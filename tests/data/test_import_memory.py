"""Issue #9, memory: large CSV inputs are parsed in chunks, and that changes nothing a user can see.

A file read in many chunks stores exactly the rows of a whole-file read; a bad row in a later chunk gives the same
message (same file line) and leaves the store as it was, on both backends; a damaged zip whose CRC fails only at its
last chunk is one line. Peak memory itself is measured in benchmarks/bench_import_memory.py (no timing or memory
assertions here).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pivotal.data.candles import Candles
from pivotal.data.duckdb_store import DuckDBStore
from pivotal.data.importers import ImportOptions, import_path, streaming
from pivotal.data.importers.binance_dump import KLINE_COLUMNS
from pivotal.data.importers.shared_parquet import read_shared
from pivotal.data.store import MarketStore

pytestmark = pytest.mark.realdata

MINUTE = 60_000
CHUNK = 100  # 1440 bars -> 15 chunks


@pytest.fixture(scope="module")
def real(shared_data: Path) -> Candles:
    """1440 real Binance BTC/USDT 1m bars (2024-03-01)."""
    c = read_shared(shared_data / "binance" / "BTCUSDT-1m-2024.parquet").candles
    i = int(np.searchsorted(c.ts, 1709251200000))
    return c.slice(i, i + 1440)


def kline_frame(c: Candles, microseconds: bool = False) -> pd.DataFrame:
    scale = 1000 if microseconds else 1
    zeros = np.zeros(len(c), np.int64)
    columns = [c.ts * scale, c.open, c.high, c.low, c.close, c.volume, (c.ts + MINUTE) * scale - 1, *[zeros] * 5]
    return pd.DataFrame(dict(zip(KLINE_COLUMNS, columns, strict=True)))


def write_dump(frame: pd.DataFrame, path: Path, header: bool) -> Path:
    text = frame.to_csv(index=False, header=header, na_rep="NaN")
    if path.suffix == ".zip":
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(path.with_suffix(".csv").name, text)
    else:
        path.write_text(text)
    return path


def import_both_ways(tmp_path: Path, path: Path, options: ImportOptions) -> tuple[DuckDBStore, DuckDBStore]:
    whole, chunked = DuckDBStore(tmp_path / "whole.duckdb"), DuckDBStore(tmp_path / "chunked.duckdb")
    for store, rows in ((whole, 0), (chunked, CHUNK)):
        report = import_path(store, path, ImportOptions(**{**options.__dict__, "chunk_rows": rows}))
        assert report.ok, report.errors
    return whole, chunked


@pytest.mark.parametrize(("name", "header", "micro"), [("x.csv", False, False), ("x.csv", True, True), ("x.zip", False, True)])
def test_a_dump_read_in_15_chunks_stores_exactly_the_rows_of_a_whole_read(
    real: Candles, tmp_path: Path, name: str, header: bool, micro: bool
) -> None:
    path = write_dump(kline_frame(real, micro), tmp_path / name.replace("x", "BTCUSDT-1m-2024-03"), header)
    whole, chunked = import_both_ways(tmp_path, path, ImportOptions())
    try:
        a, b = whole.candles("binance", "BTC/USDT", "1m"), chunked.candles("binance", "BTC/USDT", "1m")
        assert len(b) == 1440 and b.equals(a)
        assert np.array_equal(b.ts, real.ts) and np.array_equal(b.close, real.close) and np.array_equal(b.volume, real.volume)
    finally:
        whole.close()
        chunked.close()


def test_a_trades_dump_read_in_chunks_stores_exactly_the_rows_of_a_whole_read(shared_data: Path, tmp_path: Path) -> None:
    raw = pd.read_parquet(shared_data / "binance" / "ETHUSDT-trades.parquet").iloc[:3000]
    dump = pd.DataFrame(
        {
            "id": raw["trade_id"],
            "price": raw["price"],
            "qty": raw["qty"],
            "quote_qty": raw["price"] * raw["qty"],
            "time": raw["timestamp"] * 1000,
            "is_buyer_maker": raw["is_buyer_maker"],
            "is_best_match": True,
        }
    )
    path = write_dump(dump, tmp_path / "ETHUSDT-trades-2024-08.zip", header=False)
    whole, chunked = import_both_ways(tmp_path, path, ImportOptions())
    try:
        a, b = whole.trades("binance", "ETH/USDT").to_frame(), chunked.trades("binance", "ETH/USDT").to_frame()
        assert len(b) == 3000 and b.equals(a)
        assert sorted(b["trade_id"]) == sorted(raw["trade_id"])
    finally:
        whole.close()
        chunked.close()


@pytest.mark.parametrize("iso", [False, True])
def test_a_generic_csv_read_in_chunks_stores_exactly_the_rows_of_a_whole_read(real: Candles, tmp_path: Path, iso: bool) -> None:
    ts = pd.to_datetime(real.ts, unit="ms", utc=True).strftime("%Y-%m-%dT%H:%M:%SZ") if iso else real.ts
    frame = pd.DataFrame({"time": ts, "o": real.open, "h": real.high, "l": real.low, "c": real.close, "v": real.volume})
    path = tmp_path / "bars.csv"
    frame.to_csv(path, index=False)
    options = ImportOptions(fmt="csv", exchange="kraken", symbol="BTC/USD", timeframe="1m", mapping=MAPPING)
    whole, chunked = import_both_ways(tmp_path, path, options)
    try:
        a, b = whole.candles("kraken", "BTC/USD", "1m"), chunked.candles("kraken", "BTC/USD", "1m")
        assert len(b) == 1440 and b.equals(a) and np.array_equal(b.ts, real.ts)
    finally:
        whole.close()
        chunked.close()


MAPPING = {"ts": "time", "open": "o", "high": "h", "low": "l", "close": "c", "volume": "v"}


@pytest.mark.parametrize(
    ("cell", "field", "expected"),
    [
        ("12,5", "volume", "line 251, field volume: cannot parse '12,5' as a number"),  # a parse error in chunk 3
        ("nan", "close", "row 250"),  # a validation error (the store's rule) in chunk 3
        ("1709266200000400", "open_time", "line 251, field ts: value '1709266200000400' (µs) is not a whole millisecond"),
    ],
    ids=["unparsable", "nan", "sub-ms"],
)
def test_a_bad_row_in_chunk_3_is_named_like_a_whole_read_and_leaves_the_store_unchanged(
    store: MarketStore, real: Candles, tmp_path: Path, cell: str, field: str, expected: str
) -> None:
    good = write_dump(kline_frame(real), tmp_path / "BTCUSDT-1m-2024-03-01.csv", header=False)
    assert import_path(store, good).ok
    before = store.candles("binance", "BTC/USDT", "1m")
    frame = kline_frame(real).astype(object)
    prices = ["open", "high", "low", "close", "volume"]
    frame[prices] = frame[prices] * 2  # valid bars that would replace every stored one
    frame.loc[250, field] = cell  # row 250 = file line 251 = the 51st row of chunk 3
    bad = write_dump(frame, tmp_path / "BTCUSDT-1m-2024-03-02.csv", header=False)
    messages = []
    for rows in (0, CHUNK):
        [result] = import_path(store, bad, ImportOptions(chunk_rows=rows)).files
        assert result.status == "error" and expected in result.message, result.message
        messages.append(result.message)
        assert store.candles("binance", "BTC/USDT", "1m").equals(before)  # nothing of chunks 1 and 2 was written
    assert messages[0] == messages[1]
    assert [(s.symbol, s.rows) for s in store.series()] == [("BTC/USDT", 1440)]


def test_a_zip_whose_crc_fails_at_its_last_chunk_is_one_line_and_writes_nothing(
    store: MarketStore, real: Candles, tmp_path: Path
) -> None:
    path = write_dump(kline_frame(real), tmp_path / "BTCUSDT-1m-2024-03.zip", header=False)
    raw = bytearray(path.read_bytes())
    raw[raw.rfind(b"PK\x01\x02") + 16] ^= 0xFF  # the central directory's CRC-32: checked after the member's last byte
    path.write_bytes(bytes(raw))
    [result] = import_path(store, path, ImportOptions(chunk_rows=CHUNK)).files
    assert result.status == "error", result
    assert result.message.startswith(f"{path}: damaged zip archive (BadZipFile: Bad CRC-32") and "\n" not in result.message
    assert store.series() == []


def test_chunks_hold_at_most_chunk_rows_rows(real: Candles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    original = streaming.csv_chunks

    def counted(chunks: Iterator[tuple[int, pd.DataFrame]]) -> Iterator[tuple[int, pd.DataFrame]]:
        for offset, frame in chunks:
            assert offset == sum(sizes)
            sizes.append(len(frame))
            yield offset, frame

    @contextmanager
    def spy(*args: Any, **kwargs: Any) -> Iterator[Iterator[tuple[int, pd.DataFrame]]]:
        with original(*args, **kwargs) as chunks:
            yield counted(chunks)

    monkeypatch.setattr(streaming, "csv_chunks", spy)
    path = write_dump(kline_frame(real), tmp_path / "BTCUSDT-1m-2024-03.zip", header=True)
    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        assert import_path(store, path, ImportOptions(chunk_rows=CHUNK)).ok
    finally:
        store.close()
    assert sizes == [CHUNK] * 14 + [40]
