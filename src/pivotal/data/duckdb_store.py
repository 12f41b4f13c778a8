"""DuckDB backend: one embedded database file; Arrow in, Arrow/numpy out, upserts in one transaction.

The bar key (series_id, ts) is kept by the write path, not by a PRIMARY KEY constraint: DuckDB maintains a PK as
an ART index whose upkeep cut bulk ingest about 5x in our measurements (benchmarks/bench_data.py), and that index
does not serve the range/ORDER BY reads we make. Every candle write deletes the stored bars whose open times the
batch carries and inserts the batch, in one transaction, under a per-file lock (DuckDB lets only one process open
the file for writing, and store objects on the same file within a process share the lock); validation guarantees
unique open times inside a batch. Trades and order-book rows keep their PRIMARY KEY and use INSERT ... ON CONFLICT.

Concurrency (docs/data.md "Concurrency"): while a process has the file open, DuckDB refuses every other process,
even read-only. Opening therefore waits a moment (``busy_wait_s``) for a short holder to finish, then raises
``StoreBusy`` naming the holding command and pid (from the owner file, ``store_owner``); commands open the store
only for as long as they read or write.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from pivotal.core.timeframes import timeframe_ms
from pivotal.data import sql, store_owner
from pivotal.data.candles import Candles
from pivotal.data.frames import depth_arrow, depth_frame
from pivotal.data.sql_store import SqlMarketStore
from pivotal.data.store import IncompatibleStore, SeriesKey
from pivotal.data.trades import Trades

_BATCH = "_pivotal_batch"
# Stored bars the batch replaces (the ts range bound lets DuckDB skip row groups by their min/max).
_RANGE_DELETE = "DELETE FROM candle_bars WHERE series_id = ? AND ts BETWEEN ? AND ?"
_REPLACED_BARS_DELETE = f"{_RANGE_DELETE} AND ts IN (SELECT ts FROM {_BATCH})"
_OVERLAP_SQL = "SELECT 1 FROM candle_bars WHERE series_id = ? AND ts BETWEEN ? AND ? LIMIT 1"
_BARS_INSERT = f"INSERT INTO candle_bars (series_id, {sql.BAR_COLUMNS}) SELECT ?, {sql.BAR_COLUMNS} FROM {_BATCH}"
_FILE_LOCKS: dict[str, threading.RLock] = {}
_FILE_LOCKS_GUARD = threading.Lock()


def _without_holes(candles: Candles) -> bool:
    return int(candles.ts[-1]) - int(candles.ts[0]) == (len(candles) - 1) * timeframe_ms(candles.timeframe)


def _file_lock(path: str) -> threading.RLock:
    """One lock per database file and process: two store objects on the same file must not interleave the
    delete+insert of a candle write (other processes cannot open the file for writing at all)."""
    if path == ":memory:":
        return threading.RLock()  # every in-memory connection is its own database
    with _FILE_LOCKS_GUARD:
        return _FILE_LOCKS.setdefault(str(Path(path).resolve()), threading.RLock())


class DuckDBStore(SqlMarketStore):
    """``MarketStore`` on a DuckDB file (``":memory:"`` for a throw-away store). One connection, serialised by a lock."""

    BUSY_WAIT_S = 2.0

    def __init__(self, path: str | Path, busy_wait_s: float | None = None) -> None:
        self.path = str(path)
        self._owned = self.path != ":memory:"
        if self._owned:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._con = self._connect(self.BUSY_WAIT_S if busy_wait_s is None else busy_wait_s)
        if self._owned:
            store_owner.claim(self.path)
        self._lock = _file_lock(self.path)
        self._series_ids: dict[SeriesKey, int] = {}
        try:
            self._create_tables()
        except BaseException:
            self.close()
            raise

    def _connect(self, busy_wait_s: float) -> duckdb.DuckDBPyConnection:
        """Open the file; while another process holds it, retry for ``busy_wait_s``, then ``StoreBusy`` (one line)."""
        deadline = time.monotonic() + busy_wait_s
        while True:
            try:
                return duckdb.connect(self.path)
            except duckdb.IOException as exc:
                if not store_owner.is_lock_conflict(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise store_owner.busy_error(self.path, str(exc)) from None
                time.sleep(0.1)

    def _create_tables(self) -> None:
        try:
            with self._transaction():
                for statement in sql.ddl(bar_pk=False):
                    self._con.execute(statement)
                self._con.execute("INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT DO NOTHING", [sql.SCHEMA_VERSION])
                stored = self._con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except duckdb.CatalogException as exc:
            raise IncompatibleStore(self._incompatible(f"its tables do not match ({exc})")) from None
        if stored is None or stored[0] != sql.SCHEMA_VERSION:
            raise IncompatibleStore(
                self._incompatible(f"schema version {stored and stored[0]!r}, expected {sql.SCHEMA_VERSION!r}")
            )

    def _incompatible(self, why: str) -> str:
        return (
            f"{self.path} was written by an incompatible pivotal version: {why}. "
            "Move the file aside (or point PIVOTAL_DATA_DIR elsewhere) and import the data again."
        )

    def __repr__(self) -> str:
        return f"DuckDBStore({self.path!r})"

    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._lock:
            self._con.begin()
            try:
                yield self._con
            except duckdb.InterruptException:
                # Ctrl-C reached DuckDB first: it becomes an ordinary Exception, which the importers would report
                # as one failed file and go on; give Python's KeyboardInterrupt back so the run stops.
                self._con.rollback()
                raise KeyboardInterrupt from None
            except BaseException:
                self._con.rollback()
                raise
            self._con.commit()

    @contextmanager
    def _batch(self, table: pa.Table) -> Iterator[duckdb.DuckDBPyConnection]:
        """The batch visible as ``_BATCH`` inside one transaction; unregistered only after commit or rollback
        (an aborted transaction refuses further calls, which would mask the original error)."""
        with self._lock:
            self._con.register(_BATCH, table)
            try:
                with self._transaction() as con:
                    yield con
            finally:
                self._con.unregister(_BATCH)

    def _upsert_arrow(self, table: pa.Table, statement: str, params: Sequence[Any]) -> int:
        with self._batch(table) as con:
            con.execute(statement, list(params))
        return table.num_rows

    def _arrow(self, statement: str, params: Sequence[Any]) -> pa.Table:
        with self._lock:
            return self._con.sql(statement, params=list(params)).to_arrow_table()

    def _new_series_id(self, key: SeriesKey) -> int:
        """Allocate an id inside the caller's transaction (cached only after it commits)."""
        self._con.execute(sql.NEW_SERIES_SQL, list(key))
        return int(self._con.execute(sql.SERIES_ID_SQL, list(key)).fetchall()[0][0])

    # --- candles -------------------------------------------------------------------------------
    def _write_candles(self, candles: Candles) -> None:
        key = (candles.exchange, candles.symbol, candles.timeframe)
        with self._batch(candles.to_arrow()) as con:
            series_id = self._series_id(key) or self._new_series_id(key)
            bounds = [series_id, int(candles.ts[0]), int(candles.ts[-1])]
            if con.execute(_OVERLAP_SQL, bounds).fetchall():  # new ranges need no delete at all
                # A batch without holes replaces its whole range; one with holes only the bars it carries.
                con.execute(_RANGE_DELETE if _without_holes(candles) else _REPLACED_BARS_DELETE, bounds)
            con.execute(_BARS_INSERT, [series_id])
        self._series_ids[key] = series_id

    def _fetch_bars(self, statement: str, params: Sequence[Any]) -> dict[str, np.ndarray]:
        # execute().fetchnumpy(): ~6x less overhead than a relation + Arrow on small as-of windows.
        columns = self._con.execute(statement, list(params)).fetchnumpy()
        return {name: np.ascontiguousarray(values) for name, values in columns.items()}

    # --- trades and order book ---------------------------------------------------------------
    def _write_trades(self, trades: Trades) -> int:
        table = pa.table({name: getattr(trades, name) for name in ("ts", "trade_id", "price", "amount", "is_buyer_maker")})
        select = f"SELECT ?, ?, trade_id, ts, price, amount, is_buyer_maker FROM {_BATCH}"
        statement = sql.upsert("trades", (*sql.TRADE_KEY, *sql.TRADE_VALUES), sql.TRADE_KEY, sql.TRADE_VALUES, select)
        return self._upsert_arrow(table, statement, [trades.exchange, trades.symbol])

    def trades(self, exchange: str, symbol: str, start: int | None = None, end: int | None = None) -> Trades:
        where, bounds = sql.range_filter(start, end)
        statement = f"SELECT {sql.TRADE_COLUMNS} FROM trades WHERE exchange = ? AND symbol = ?{where} ORDER BY ts, trade_id"
        frame = self._arrow(statement, [exchange, symbol, *bounds]).to_pandas()
        return Trades.from_frame(frame, exchange, symbol)

    def _write_depth(self, table: sql.DepthTable, exchange: str, symbol: str, rows: pd.DataFrame) -> int:
        statement = table.upsert(", ".join(table.row), "?", _BATCH)
        return self._upsert_arrow(depth_arrow(rows, table.row), statement, [exchange, symbol])

    def _read_depth(self, table: sql.DepthTable, exchange: str, symbol: str, where: str, bounds: list[int]) -> pd.DataFrame:
        return depth_frame(self._arrow(table.select(", ".join(table.row), where), [exchange, symbol, *bounds]))

    # --- portable SQL for later layers -----------------------------------------------------------
    def execute(self, sql_text: str, params: Sequence[Any] = ()) -> None:
        with self._transaction() as con:
            con.execute(sql_text, list(params))

    def query(self, sql_text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._con.execute(sql_text, list(params)).fetchall()

    @contextmanager
    def transaction(self) -> Iterator[_Session]:
        """Portable SQL (``execute``/``query``) inside one transaction: all statements commit, or none."""
        with self._transaction() as con:
            yield _Session(con)

    def _disk_full(self, exc: BaseException) -> bool:
        if isinstance(exc, OSError):
            return exc.errno == errno.ENOSPC
        return isinstance(exc, duckdb.Error) and "No space left on device" in str(exc)

    def close(self) -> None:
        with self._lock:
            self._con.close()
            if self._owned:
                self._owned = False  # a second close releases nothing
                store_owner.release(self.path)


class _Session:
    """``execute``/``query`` on a DuckDB connection inside an open transaction (see ``DuckDBStore.transaction``)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def execute(self, sql_text: str, params: Sequence[Any] = ()) -> None:
        self._con.execute(sql_text, list(params))

    def query(self, sql_text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._con.execute(sql_text, list(params)).fetchall()
