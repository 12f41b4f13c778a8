"""Importers: every format round-trips real rows from ../shared/data; bad input is rejected naming file, row, field."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pivotal.cli.main import app
from pivotal.data.candles import Candles
from pivotal.data.duckdb_store import DuckDBStore
from pivotal.data.importers import ImportFormatError, ImportOptions, import_path
from pivotal.data.importers.base import epoch_ms
from pivotal.data.importers.binance_dump import KLINE_COLUMNS
from pivotal.data.importers.generic_csv import parse_mapping
from pivotal.data.importers.shared_parquet import read_shared
from pivotal.data.store import MarketStore
from pivotal.data.symbols import SharedFile, parse_shared_path, split_pair, unified_symbol

MINUTE = 60_000


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[MarketStore]:
    store = DuckDBStore(tmp_path / "imp.duckdb")
    yield store
    store.close()


@pytest.fixture(scope="module")
def real(shared_data: Path) -> Candles:
    """1440 real Binance BTC/USDT 1m bars (2024-03-01), the source every derived test file is written from."""
    c = read_shared(shared_data / "binance" / "BTCUSDT-1m-2024.parquet").candles
    i = int(np.searchsorted(c.ts, 1709251200000))
    return c.slice(i, i + 1440)


def relabel(c: Candles, exchange: str = "binance", symbol: str = "BTC/USDT", timeframe: str = "1m") -> Candles:
    return Candles(c.ts, c.open, c.high, c.low, c.close, c.volume, exchange, symbol, timeframe)


def kline_frame(c: Candles, microseconds: bool = False) -> pd.DataFrame:
    """The 12 dump columns; only OHLCV and the times come from the real bars (the rest is unused by pivotal)."""
    scale = 1000 if microseconds else 1
    zeros = np.zeros(len(c), np.int64)
    columns = [c.ts * scale, c.open, c.high, c.low, c.close, c.volume, (c.ts + MINUTE) * scale - 1, *[zeros] * 5]
    return pd.DataFrame(dict(zip(KLINE_COLUMNS, columns, strict=True)))


def stored(store: MarketStore, exchange: str = "binance", symbol: str = "BTC/USDT", tf: str = "1m") -> Candles:
    return store.candles(exchange, symbol, tf)


# --- names -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("binance/BTCUSDT-1m-2021.parquet", SharedFile("binance", "BTC/USDT", "candles", "1m")),
        ("binance/SOLUSDT-1h-2020-2026.parquet", SharedFile("binance", "SOL/USDT", "candles", "1h")),
        ("binance/BTCBUSD-1m.parquet", SharedFile("binance", "BTC/BUSD", "candles", "1m")),
        ("binance-usdm/BTCUSDT-trades.parquet", SharedFile("binanceusdm", "BTC/USDT:USDT", "trades")),
        ("binance/ETHUSDT-depth_updates.parquet", SharedFile("binance", "ETH/USDT", "depth_updates")),
        ("coinbase/BTCUSD-1s.parquet", SharedFile("coinbase", "BTC/USD", "candles", "1s")),
        ("bitfinex/BTCUSD-1h.parquet", SharedFile("bitfinex", "BTC/USD", "candles", "1h")),
        ("ftx/BTC-PERP-1m.parquet", SharedFile("ftx", "BTC/USD:USD", "candles", "1m")),
    ],
)
def test_shared_names_map_to_ccxt_ids_and_unified_symbols(path: str, expected: SharedFile) -> None:
    assert parse_shared_path(path) == expected


def test_symbol_splitting_and_its_errors() -> None:
    assert split_pair("BTCFDUSD") == ("BTC", "FDUSD")
    assert split_pair("ETHBTC") == ("ETH", "BTC")
    assert unified_symbol("linear", "ETHUSDT") == "ETH/USDT:USDT"
    with pytest.raises(ValueError, match="cannot split symbol 'BTCXYZ'"):
        split_pair("BTCXYZ")
    with pytest.raises(ValueError, match="unknown venue folder 'kraken'"):
        parse_shared_path("kraken/BTCUSD-1m.parquet")
    with pytest.raises(ValueError, match="does not follow"):
        parse_shared_path("binance/BTCUSDT-7m.parquet")


def test_epoch_units_are_detected_by_magnitude() -> None:
    ms = 1735689600000  # 2025-01-01
    got = epoch_ms(np.array([ms // 1000, ms, ms * 1000, ms * 1_000_000]))
    assert got.tolist() == [ms] * 4


# --- shared layout ---------------------------------------------------------------------------------


def test_shared_files_import_into_both_backends_and_reimport_changes_nothing(store: MarketStore, shared_data: Path) -> None:
    usdm = shared_data / "binance-usdm"
    paths = [
        shared_data / "bybit",
        shared_data / "bitstamp",
        shared_data / "ftx",
        usdm / "ETHUSDT-trades.parquet",
        usdm / "ETHUSDT-book_snapshot.parquet",
        usdm / "ETHUSDT-book_ticker.parquet",
    ]
    report = import_path(store, paths)
    assert report.ok, [f.message for f in report.errors]
    status = {Path(f.path).name: f.status for f in report.files}
    assert status["BTC-PERP-1m.parquet"] == "skipped"  # quote-unit volume: not stored (see docs/ingest.md)
    assert status["ETHUSDT-book_ticker.parquet"] == "skipped"
    assert status["ETHUSDT-trades.parquet"] == status["ETHUSDT-book_snapshot.parquet"] == "ok"
    source = pd.read_parquet(shared_data / "bybit" / "BTCUSDT-1m.parquet")
    assert stored(store, "bybit").equals(Candles.from_frame(source))
    trades = store.trades("binanceusdm", "ETH/USDT:USDT")
    raw = pd.read_parquet(usdm / "ETHUSDT-trades.parquet")
    assert np.array_equal(np.sort(trades.trade_id), np.sort(raw["trade_id"].to_numpy()))
    assert len(store.depth_snapshots("binanceusdm", "ETH/USDT:USDT")) == 2000
    before = snapshot(store)
    assert import_path(store, paths).ok
    assert snapshot(store) == before


def snapshot(store: MarketStore) -> tuple:
    trades = store.trades("binanceusdm", "ETH/USDT:USDT")
    book = store.depth_snapshots("binanceusdm", "ETH/USDT:USDT")
    return tuple(store.series()), len(trades), float(trades.amount.sum()), len(book), float(book["qty"].sum())


def test_depth_updates_and_coinbase_folder_import_into_duckdb(duck: MarketStore, shared_data: Path) -> None:
    """A subset of the whole folder (the full ../shared/data import is the demo: ~12 s on an idle 2-core machine)."""
    depth_file = shared_data / "binance" / "ETHUSDT-depth_updates.parquet"
    report = import_path(duck, [depth_file, shared_data / "coinbase"])
    assert report.ok, [f.message for f in report.errors]
    raw = pd.read_parquet(depth_file)
    depth = duck.depth_updates("binance", "ETH/USDT")
    assert len(depth) == len(raw)
    assert float(depth["qty"].sum()) == pytest.approx(float(raw["qty"].sum()), rel=1e-12)
    info = {(s.exchange, s.symbol, s.timeframe): s.rows for s in duck.series()}
    assert info[("coinbase", "BTC/USD", "1s")] == 11520
    assert info[("coinbase", "ETH/USD", "4h")] == 20675
    [skipped] = [f for f in report.files if f.status == "skipped"]
    assert skipped.path.endswith("BTCUSD-book15-1m.parquet")


# --- Binance dumps ---------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [False, True])
@pytest.mark.parametrize("microseconds", [False, True])
def test_binance_dump_csv_round_trips(duck: MarketStore, real: Candles, tmp_path: Path, header: bool, microseconds: bool) -> None:
    path = tmp_path / "BTCUSDT-1m-2024-03.csv"
    kline_frame(real, microseconds).to_csv(path, index=False, header=header)
    report = import_path(duck, path)
    assert report.ok, report.errors
    assert report.files[0].rows_written == 1440
    assert stored(duck).equals(real)


def test_binance_dump_zip_and_futures_symbol(duck: MarketStore, real: Candles, tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT-1m-2024-03-01.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("BTCUSDT-1m-2024-03-01.csv", kline_frame(real, microseconds=True).to_csv(index=False, header=False))
    assert import_path(duck, path).ok
    assert stored(duck).equals(real)
    assert import_path(duck, path, ImportOptions(exchange="binanceusdm")).ok
    assert stored(duck, "binanceusdm", "BTC/USDT:USDT").equals(real)


@pytest.mark.parametrize("microseconds", [False, True])
def test_binance_trades_dump_round_trips(duck: MarketStore, shared_data: Path, tmp_path: Path, microseconds: bool) -> None:
    raw = pd.read_parquet(shared_data / "binance" / "ETHUSDT-trades.parquet").iloc[:3000]
    dump = pd.DataFrame(
        {
            "id": raw["trade_id"],
            "price": raw["price"],
            "qty": raw["qty"],
            "quote_qty": raw["price"] * raw["qty"],
            "time": raw["timestamp"] * (1000 if microseconds else 1),
            "is_buyer_maker": raw["is_buyer_maker"],
            "is_best_match": True,
        }
    )
    path = tmp_path / "ETHUSDT-trades-2024-08.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ETHUSDT-trades-2024-08.csv", dump.to_csv(index=False, header=False))
    report = import_path(duck, path)
    assert report.ok, report.errors
    got = duck.trades("binance", "ETH/USDT").to_frame().sort_values("trade_id").reset_index(drop=True)
    assert got["trade_id"].tolist() == raw["trade_id"].tolist()
    assert got["ts"].tolist() == raw["timestamp"].tolist()
    assert np.array_equal(got["price"], raw["price"]) and np.array_equal(got["amount"], raw["qty"])
    assert np.array_equal(got["is_buyer_maker"], raw["is_buyer_maker"])


# --- freqtrade -------------------------------------------------------------------------------------


def test_freqtrade_feather_and_json_round_trip(duck: MarketStore, real: Candles, tmp_path: Path) -> None:
    folder = tmp_path / "user_data" / "data" / "binance"
    folder.mkdir(parents=True)
    frame = real.to_frame()
    frame.insert(0, "date", pd.to_datetime(frame.pop("ts"), unit="ms", utc=True))
    frame.to_feather(folder / "BTC_USDT-1m.feather")
    rows = [[int(t), o, h, lo, c, v] for t, o, h, lo, c, v in zip(*(getattr(real, f) for f in real.to_frame()), strict=True)]
    (folder / "ETH_USDT-1m.json").write_text(json.dumps(rows))  # BTC bars under another name: a second series
    report = import_path(duck, tmp_path / "user_data")
    assert report.ok, report.errors
    assert stored(duck).equals(real)
    assert stored(duck, symbol="ETH/USDT").equals(real)


def test_freqtrade_needs_an_exchange_when_the_folder_is_not_one(duck: MarketStore, real: Candles, tmp_path: Path) -> None:
    path = tmp_path / "BTC_USDT-1h.json"
    path.write_text("[]")
    [result] = import_path(duck, path).files
    assert result.status == "error" and "is not a ccxt exchange id; pass --exchange" in result.message


# --- generic CSV -----------------------------------------------------------------------------------


@pytest.mark.parametrize("unit", ["iso", "s", "ms"])
def test_generic_csv_with_mapping_round_trips(duck: MarketStore, real: Candles, tmp_path: Path, unit: str) -> None:
    ts = {
        "iso": pd.to_datetime(real.ts, unit="ms", utc=True).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "s": real.ts // 1000,
        "ms": real.ts,
    }[unit]
    frame = pd.DataFrame({"time": ts, "o": real.open, "h": real.high, "l": real.low, "c": real.close, "v": real.volume})
    path = tmp_path / "bars.csv"
    frame.to_csv(path, index=False)
    options = ImportOptions("csv", "kraken", "BTC/USD", "1m", parse_mapping("ts=time,open=o,high=h,low=l,close=c,volume=v"))
    assert import_path(duck, path, options).ok
    assert stored(duck, "kraken", "BTC/USD").equals(real)


def test_bad_mapping_is_explained() -> None:
    with pytest.raises(ValueError, match="bad --map entry 'price=p'"):
        parse_mapping("price=p")


# --- bad input -------------------------------------------------------------------------------------


def corrupt(real: Candles, row: int, field: str, value: float) -> pd.DataFrame:
    frame = kline_frame(real)
    frame.loc[row, field] = value
    return frame


@pytest.mark.parametrize(
    ("make_bad", "row", "field"),
    [
        (lambda c: corrupt(c, 700, "close", np.nan), 700, "close"),
        (lambda c: corrupt(c, 123, "high", float(c.low[123]) - 1.0), 123, "high"),
        (lambda c: kline_frame(c).iloc[[*range(500), 501, 500, *range(502, 1440)]].reset_index(drop=True), 501, "ts"),
    ],
    ids=["nan-close", "high-below-low", "unsorted-ts"],
)
def test_bad_rows_are_rejected_naming_file_row_field_and_nothing_is_written(
    duck: MarketStore, real: Candles, tmp_path: Path, make_bad: Callable[[Candles], pd.DataFrame], row: int, field: str
) -> None:
    good = tmp_path / "BTCUSDT-1m-2024-03.csv"
    kline_frame(real).to_csv(good, index=False, header=False)
    bad = tmp_path / "ETHUSDT-1m-2024-03.csv"
    make_bad(real).to_csv(bad, index=False, header=False, na_rep="NaN")
    report = import_path(duck, [bad, good])
    assert not report.ok
    [error] = report.errors
    assert error.path == str(bad)
    assert str(bad) in error.message and f"row {row}" in error.message and field in error.message
    assert duck.last_ts("binance", "ETH/USDT", "1m") is None  # nothing of the bad file
    assert stored(duck).equals(real)  # the good file after it was still imported


def test_strict_stops_at_the_first_bad_file(duck: MarketStore, real: Candles, tmp_path: Path) -> None:
    corrupt(real, 5, "low", -1.0).to_csv(tmp_path / "AAAUSDT-1m-2024-03.csv", index=False, header=False)
    kline_frame(real).to_csv(tmp_path / "BTCUSDT-1m-2024-03.csv", index=False, header=False)
    report = import_path(duck, tmp_path, ImportOptions(strict=True))
    assert [f.status for f in report.files] == ["error", "not attempted"]
    assert duck.series() == []


def test_unparsable_cell_names_file_line_and_field(tmp_path: Path, duck: MarketStore, real: Candles) -> None:
    frame = kline_frame(real).astype(object)
    frame.loc[9, "volume"] = "12,5"
    path = tmp_path / "BTCUSDT-1m-2024-03.csv"
    frame.to_csv(path, index=False, header=True)
    [result] = import_path(duck, path).files
    assert result.status == "error"
    assert result.message == f"{path}: line 11, field volume: cannot parse '12,5' as a number"


def test_unknown_layout_asks_for_a_format(tmp_path: Path, duck: MarketStore) -> None:
    path = tmp_path / "prices.csv"
    path.write_text("a,b\n1,2\n")
    [result] = import_path(duck, path).files
    assert result.status == "error" and "cannot tell the format; pass --format" in result.message
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        import_path(duck, tmp_path / "missing")
    assert issubclass(ImportFormatError, ValueError)
    truncated = tmp_path / "BTCUSDT-1m-2024-03.zip"
    truncated.write_bytes(b"PK\x03\x04 not really")
    [result] = import_path(duck, truncated).files
    assert result.message == f"{truncated}: not a readable zip archive (truncated download?)"


# --- CLI -------------------------------------------------------------------------------------------


def test_cli_import_prints_a_summary_and_fails_on_bad_files(shared_data: Path, real: Candles, tmp_path: Path) -> None:
    runner = CliRunner(env={"COLUMNS": "250"})
    ok = runner.invoke(app, ["data", "import", str(shared_data / "bybit"), str(shared_data / "ftx")])
    assert ok.exit_code == 0, ok.output
    assert "bybit BTC/USDT 1m" in ok.output and "skipped" in ok.output
    bad = tmp_path / "BTCUSDT-1m-2024-03.csv"
    corrupt(real, 3, "open", np.nan).to_csv(bad, index=False, header=False, na_rep="NaN")
    failed = runner.invoke(app, ["data", "import", str(bad)])
    assert failed.exit_code == 1
    assert "1 file(s) failed" in failed.output
