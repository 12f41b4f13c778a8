"""One behavioural suite, run against DuckDB and PostgreSQL (the ``store`` fixture is parametrized)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pivotal.config import Settings
from pivotal.data import duckdb_store, postgres_store
from pivotal.data.backends import open_store
from pivotal.data.candles import Candles
from pivotal.data.duckdb_store import DuckDBStore
from pivotal.data.postgres_store import PostgresStore, to_pyformat
from pivotal.data.store import Gap, MarketStore
from pivotal.data.trades import Trades
from pivotal.data.validation import ValidationError
from tests.stores import throwaway_postgres_store

H = 3_600_000


def real_candles(shared_data: Path, name: str, timeframe: str, rows: int | None = None, symbol: str = "BTC/USDT") -> Candles:
    frame = pd.read_parquet(shared_data / name)
    return Candles.from_frame(frame.iloc[:rows] if rows else frame, "binance", symbol, timeframe)


def hand_candles(ts_hours: list[int], close: float = 100.0, volume: float = 1.0) -> Candles:
    """Tiny hourly series for exact checks (not market data)."""
    ts = np.array(ts_hours, dtype=np.int64) * H
    n = len(ts)
    return Candles(
        ts,
        np.full(n, close),
        np.full(n, close + 1),
        np.full(n, close - 1),
        np.full(n, close),
        np.full(n, volume),
        "test",
        "X/Y",
        "1h",
    )


def real_trades(shared_data: Path, rows: int) -> Trades:
    frame = pd.read_parquet(shared_data / "binance/BTCUSDT-trades.parquet").iloc[:rows]
    frame = frame.rename(columns={"timestamp": "ts", "qty": "amount"})
    return Trades.from_frame(frame, "binance", "BTC/USDT")


def test_both_backends_satisfy_the_protocol(store: MarketStore) -> None:
    assert isinstance(store, MarketStore)


def test_candles_round_trip_exactly(store: MarketStore, shared_data: Path) -> None:
    candles = real_candles(shared_data, "binance/BTCUSDT-1m-2024.parquet", "1m", rows=3000)
    assert store.write_candles(candles, "BTCUSDT-1m-2024.parquet") == 3000
    back = store.candles("binance", "BTC/USDT", "1m")
    assert back.equals(candles)
    assert (back.exchange, back.symbol, back.timeframe) == ("binance", "BTC/USDT", "1m")
    assert back.ts.dtype == np.int64 and back.close.dtype == np.float64


def test_candles_range_is_start_inclusive_end_exclusive(store: MarketStore, shared_data: Path) -> None:
    candles = real_candles(shared_data, "binance/BTCUSDT-1m-2024.parquet", "1m", rows=500)
    store.write_candles(candles)
    part = store.candles("binance", "BTC/USDT", "1m", start=int(candles.ts[100]), end=int(candles.ts[200]))
    assert part.equals(candles.slice(100, 200))
    assert len(store.candles("binance", "BTC/USDT", "1m", end=int(candles.ts[0]))) == 0


def test_unknown_series_reads_empty(store: MarketStore) -> None:
    assert len(store.candles("binance", "NOPE/USDT", "1m")) == 0
    assert store.last_ts("binance", "NOPE/USDT", "1m") is None
    assert store.gaps("binance", "NOPE/USDT", "1m") == []


def test_reimport_changes_nothing(store: MarketStore, shared_data: Path) -> None:
    candles = real_candles(shared_data, "binance/BTCUSDT-1m-2024.parquet", "1m", rows=1000)
    store.write_candles(candles)
    before = store.series()
    store.write_candles(candles)
    assert store.series() == before
    assert store.candles("binance", "BTC/USDT", "1m").equals(candles)


def test_overlapping_imports_merge(store: MarketStore, shared_data: Path) -> None:
    candles = real_candles(shared_data, "binance/BTCUSDT-1m-2024.parquet", "1m", rows=2000)
    store.write_candles(candles.slice(0, 1200))
    store.write_candles(candles.slice(800, 2000))
    assert store.candles("binance", "BTC/USDT", "1m").equals(candles)


def test_upsert_replaces_values_of_existing_bars(store: MarketStore) -> None:
    store.write_candles(hand_candles([0, 1, 2], close=100.0))
    store.write_candles(hand_candles([2, 3], close=200.0))
    back = store.candles("test", "X/Y", "1h")
    assert back.ts.tolist() == [0, H, 2 * H, 3 * H]
    assert back.close.tolist() == [100.0, 100.0, 200.0, 200.0]


def test_bad_batch_leaves_store_unchanged(store: MarketStore, shared_data: Path) -> None:
    good = real_candles(shared_data, "binance/BTCUSDT-1m-2024.parquet", "1m", rows=300)
    store.write_candles(good.slice(0, 100))
    high = good.high.copy()
    high[150] = good.low[150] - 1.0  # high below low in the middle of the batch
    bad = Candles(good.ts, good.open, high, good.low, good.close, good.volume, "binance", "BTC/USDT", "1m")
    with pytest.raises(ValidationError, match=r"batch\.csv: row 150, field 'high'"):
        store.write_candles(bad, "batch.csv")
    assert store.candles("binance", "BTC/USDT", "1m").equals(good.slice(0, 100))


def test_series_info_and_gaps_on_real_data(store: MarketStore, shared_data: Path) -> None:
    # PROVENANCE: binance/BTCUSDT-1h has 619 rows, 1 gap of 62 bars; BTCUSDT-1m 501 rows, 1 gap of 1 bar.
    hourly = real_candles(shared_data, "binance/BTCUSDT-1h.parquet", "1h")
    minute = real_candles(shared_data, "binance/BTCUSDT-1m.parquet", "1m")
    store.write_candles(hourly)
    store.write_candles(minute)
    info = {(s.timeframe): s for s in store.series()}
    assert (info["1h"].rows, info["1h"].gaps, info["1h"].missing_bars) == (619, 1, 62)
    assert (info["1m"].rows, info["1m"].gaps, info["1m"].missing_bars) == (501, 1, 1)
    assert info["1h"].first_ts == int(hourly.ts[0]) and info["1h"].last_ts == int(hourly.ts[-1])
    [gap] = store.gaps("binance", "BTC/USDT", "1h")
    assert gap.missing == 62 and gap.end - gap.start == 62 * H
    assert store.last_ts("binance", "BTC/USDT", "1m") == int(minute.ts[-1])


def test_gaps_hand_vector(store: MarketStore) -> None:
    store.write_candles(hand_candles([0, 1, 4, 5, 9]))
    assert store.gaps("test", "X/Y", "1h") == [Gap(2 * H, 4 * H, 2), Gap(6 * H, 9 * H, 3)]
    [info] = store.series()
    assert (info.rows, info.gaps, info.missing_bars) == (5, 2, 5)


def test_trades_round_trip_and_idempotence(store: MarketStore, shared_data: Path) -> None:
    trades = real_trades(shared_data, 2000)
    assert store.write_trades(trades, "BTCUSDT-trades.parquet") == 2000
    store.write_trades(trades)
    back = store.trades("binance", "BTC/USDT")
    for name in ("ts", "trade_id", "price", "amount", "is_buyer_maker"):
        np.testing.assert_array_equal(getattr(back, name), getattr(trades, name))
    window = store.trades("binance", "BTC/USDT", start=int(trades.ts[10]), end=int(trades.ts[20]))
    assert len(window) == int(np.sum((trades.ts >= trades.ts[10]) & (trades.ts < trades.ts[20])))


@pytest.mark.parametrize("venue", ["binance", "binance-usdm"])
def test_depth_round_trip(store: MarketStore, shared_data: Path, venue: str) -> None:
    snapshot = pd.read_parquet(shared_data / f"{venue}/BTCUSDT-book_snapshot.parquet")
    updates = pd.read_parquet(shared_data / f"{venue}/BTCUSDT-depth_updates.parquet").iloc[:5000]
    exchange = venue.replace("-", "")
    assert store.write_depth_snapshot(exchange, "BTC/USDT", snapshot) == len(snapshot)
    assert store.write_depth_updates(exchange, "BTC/USDT", updates) == len(updates)
    store.write_depth_updates(exchange, "BTC/USDT", updates)  # idempotent
    back_snapshot = store.depth_snapshots(exchange, "BTC/USDT")
    want = snapshot.sort_values(["local_ts_ns", "last_update_id", "side", "level"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(back_snapshot[list(want.columns)], want, check_dtype=False)
    back_updates = store.depth_updates(exchange, "BTC/USDT")
    want = updates.sort_values(["local_ts_ns", "final_update_id", "side", "price"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(back_updates[list(want.columns)], want, check_dtype=False)
    assert back_updates["event_ts_ms"].dtype == "Int64"
    t0 = int(updates["local_ts_ns"].iloc[1000])
    assert len(store.depth_updates(exchange, "BTC/USDT", start_ns=t0)) == int((updates["local_ts_ns"] >= t0).sum())


def test_bad_depth_row_rejected(store: MarketStore, shared_data: Path) -> None:
    snapshot = pd.read_parquet(shared_data / "binance/BTCUSDT-book_snapshot.parquet")
    snapshot.loc[7, "side"] = "buy"
    with pytest.raises(ValidationError, match=r"snap\.parquet: row 7, field 'side'"):
        store.write_depth_snapshot("binance", "BTC/USDT", snapshot, "snap.parquet")
    assert len(store.depth_snapshots("binance", "BTC/USDT")) == 0


def test_execute_and_query_with_portable_placeholders(store: MarketStore) -> None:
    store.execute("CREATE TABLE IF NOT EXISTS notes (id BIGINT PRIMARY KEY, body TEXT NOT NULL)")
    store.execute("INSERT INTO notes VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body", [1, "50% done?"])
    store.execute("INSERT INTO notes VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body", [1, "100% done"])
    assert store.query("SELECT id, body FROM notes WHERE body LIKE '%done' AND id = ?", [1]) == [(1, "100% done")]
    assert store.query("SELECT COUNT(*) FROM notes WHERE body <> 'what?'") == [(1,)]


def test_failing_execute_rolls_back(store: MarketStore) -> None:
    store.execute("CREATE TABLE IF NOT EXISTS notes (id BIGINT PRIMARY KEY)")
    store.execute("INSERT INTO notes VALUES (?)", [1])
    with pytest.raises(Exception, match=r"(?i)duplicate|constraint|unique"):
        store.execute("INSERT INTO notes VALUES (?)", [1])
    assert store.query("SELECT COUNT(*) FROM notes") == [(1,)]


def test_to_pyformat_translates_only_bare_marks() -> None:
    assert to_pyformat("SELECT '?', 'a%b', \"c?\" FROM t WHERE x = ? AND y LIKE '%z'") == (
        "SELECT '?', 'a%%b', \"c?\" FROM t WHERE x = %s AND y LIKE '%%z'"
    )


def test_open_store_picks_backend_from_settings(tmp_path: Path) -> None:
    duck = open_store(Settings(data_dir=tmp_path / "new-dir"))
    assert isinstance(duck, DuckDBStore) and (tmp_path / "new-dir" / "pivotal.duckdb").exists()
    duck.close()
    schema = f"pivotal_test_open_{tmp_path.name[-8:].replace('-', '_')}"
    pg = open_store(Settings(store="postgres", postgres_schema=schema))
    try:
        assert isinstance(pg, PostgresStore) and pg.schema == schema
    finally:
        pg.drop_schema()  # type: ignore[attr-defined]
        pg.close()


def test_candles_view_serves_portable_sql(store: MarketStore, shared_data: Path) -> None:
    store.write_candles(real_candles(shared_data, "binance/BTCUSDT-1m.parquet", "1m"))
    store.write_candles(real_candles(shared_data, "binance/ETHUSDT-1m.parquet", "1m", symbol="ETH/USDT"))
    rows = store.query(
        "SELECT symbol, COUNT(*), MIN(ts) FROM candles WHERE timeframe = ? GROUP BY symbol ORDER BY symbol", ["1m"]
    )
    assert [(r[0], int(r[1])) for r in rows] == [("BTC/USDT", 501), ("ETH/USDT", 499)]
    assert int(rows[0][2]) == 1524880320000  # 2018-04-28T01:52:00Z, PROVENANCE


def test_last_ts_before_a_time(store: MarketStore) -> None:
    store.write_candles(hand_candles([0, 1, 4, 5]))
    last_ts = store.last_ts  # both backends accept ``before``; the protocol's form has no bound
    assert last_ts("test", "X/Y", "1h") == 5 * H
    assert last_ts("test", "X/Y", "1h", before=4 * H) == H
    assert last_ts("test", "X/Y", "1h", before=0) is None


def test_two_duckdb_stores_on_one_file_never_duplicate_bars(tmp_path: Path, shared_data: Path) -> None:
    candles = real_candles(shared_data, "binance/BTCUSDT-1m-2024.parquet", "1m", rows=5000)
    first, second = DuckDBStore(tmp_path / "shared.duckdb"), DuckDBStore(tmp_path / "shared.duckdb")
    with ThreadPoolExecutor(max_workers=2) as pool:
        jobs = [pool.submit(s.write_candles, candles.slice(lo, lo + 3000)) for s, lo in ((first, 0), (second, 2000)) * 3]
        [job.result() for job in jobs]
    assert first.candles("binance", "BTC/USDT", "1m").equals(candles)
    assert first.query("SELECT COUNT(*) FROM candles") == [(5000,)]
    first.close()
    second.close()


def test_holed_batch_replaces_only_the_bars_it_carries(store: MarketStore) -> None:
    store.write_candles(hand_candles([0, 1, 2, 3, 4], close=100.0))
    store.write_candles(hand_candles([1, 3], close=200.0))  # a hole at hour 2: the stored bar 2 must stay
    assert store.candles("test", "X/Y", "1h").close.tolist() == [100.0, 200.0, 100.0, 200.0, 100.0]


def test_failure_inside_the_write_transaction_rolls_back(store: MarketStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A statement failing after the old bars were already deleted/merged leaves the store as it was."""
    store.write_candles(hand_candles([0, 1, 2], close=100.0))
    if isinstance(store, DuckDBStore):
        monkeypatch.setattr(duckdb_store, "_BARS_INSERT", "INSERT INTO no_such_table VALUES (?)")
    else:
        monkeypatch.setattr(postgres_store, "_BARS_UPSERT", "INSERT INTO no_such_table VALUES (%s)")
    with pytest.raises(Exception, match="no_such_table"):
        store.write_candles(hand_candles([1, 2, 3], close=200.0))
    assert store.candles("test", "X/Y", "1h").equals(hand_candles([0, 1, 2], close=100.0))


@pytest.mark.postgres
def test_postgres_direct_copy_falls_back_to_merge_on_a_key_clash(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if another writer stored bars between the overlap check and the COPY: the batch is merged instead."""
    with throwaway_postgres_store() as pg:
        pg.write_candles(hand_candles([0, 1, 2], close=100.0))
        blind = "SELECT 1 WHERE %s::INTEGER IS NULL AND %s::BIGINT IS NULL AND %s::BIGINT IS NULL"
        monkeypatch.setattr(postgres_store, "_OVERLAP_SQL", blind)  # the check sees no stored bar
        pg.write_candles(hand_candles([2, 3], close=200.0))
        assert pg.candles("test", "X/Y", "1h").close.tolist() == [100.0, 100.0, 200.0, 200.0]


def test_duckdb_file_from_an_incompatible_schema_is_refused_clearly(tmp_path: Path) -> None:
    import duckdb

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE candles (exchange TEXT, symbol TEXT)")  # the pre-release layout: a table, not a view
    con.close()
    with pytest.raises(RuntimeError, match=r"old\.duckdb was written by an incompatible pivotal version.*import the data again"):
        duckdb_store.DuckDBStore(path)
