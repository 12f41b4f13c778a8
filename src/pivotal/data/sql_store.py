"""What both SQL backends of the ``MarketStore`` share: the SQL and the result handling, written once.

Only moving rows in and out differs (DuckDB: Arrow/numpy; PostgreSQL: binary COPY), so a backend supplies
``_write_candles`` / ``_write_trades`` (validated, non-empty batches), ``_fetch_bars`` (run a bar SELECT, return its
columns as numpy arrays), ``_write_depth`` / ``_read_depth`` (one order-book table) and ``query`` (portable SQL with
``?`` placeholders). Validation, empty batches and the candle queries are handled here, once.
"""

from __future__ import annotations

import errno
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from pivotal.data import sql
from pivotal.data.candles import Candles
from pivotal.data.gaps import find_gaps, missing_bars
from pivotal.data.store import Gap, Holding, Problem, SeriesInfo, SeriesKey
from pivotal.data.trades import Trades
from pivotal.data.validation import validate_candles, validate_depth_snapshot, validate_depth_updates, validate_trades
from pivotal.data.verify import check_series

# What ``holdings`` reports besides candles: kind, table, time column -> ms, what one unit is.
_HOLDINGS = (
    ("trades", "trades", "ts", "COUNT(*)"),
    ("depth snapshots", "depth_snapshots", "local_ts_ns / 1000000", "COUNT(DISTINCT last_update_id)"),
    ("depth updates", "depth_updates", "local_ts_ns / 1000000", "COUNT(DISTINCT final_update_id)"),
)
_ORPHAN_BARS_SQL = (
    "SELECT series_id, COUNT(*), MIN(ts) FROM candle_bars WHERE series_id NOT IN (SELECT id FROM candle_series) "
    "GROUP BY series_id ORDER BY series_id"
)


class SqlMarketStore(ABC):
    """Base of ``DuckDBStore`` and ``PostgresStore``: the write entry points, candle reads and order-book reads."""

    _lock: threading.RLock
    _series_ids: dict[SeriesKey, int]

    @abstractmethod
    def _write_candles(self, candles: Candles) -> None:
        """Upsert one validated, non-empty series batch in one transaction."""

    @abstractmethod
    def _write_trades(self, trades: Trades) -> int:
        """Upsert validated, non-empty trades in one transaction; returns rows written."""

    @abstractmethod
    def _fetch_bars(self, statement: str, params: Sequence[Any]) -> dict[str, np.ndarray]:
        """The columns ts, open, high, low, close, volume of a bar SELECT (``?`` placeholders)."""

    @abstractmethod
    def _write_depth(self, table: sql.DepthTable, exchange: str, symbol: str, rows: pd.DataFrame) -> int:
        """Upsert validated rows of one order-book table in one transaction; returns rows written."""

    @abstractmethod
    def _read_depth(self, table: sql.DepthTable, exchange: str, symbol: str, where: str, bounds: list[int]) -> pd.DataFrame:
        """Rows of one order-book table (``where``: extra ``AND`` clauses with ``?`` placeholders for ``bounds``)."""

    @abstractmethod
    def query(self, sql_text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Portable SQL (``?`` placeholders) -> all rows."""

    def _series_id(self, key: SeriesKey) -> int | None:
        """Integer id of a stored series (cached: ids never change), or None."""
        if key not in self._series_ids:
            rows = self.query(sql.SERIES_ID_SQL, list(key))
            if not rows:
                return None
            self._series_ids[key] = int(rows[0][0])
        return self._series_ids[key]

    @abstractmethod
    def transaction(self) -> Any:
        """Context yielding ``execute``/``query`` inside one transaction."""

    def _disk_full(self, exc: BaseException) -> bool:
        """Whether a failed write ran out of disk (backends add their engine's error)."""
        return isinstance(exc, OSError) and exc.errno == errno.ENOSPC

    def _guard_disk(self, exc: BaseException) -> None:
        """Re-raise a full disk as one ``OSError(ENOSPC)`` line (the transaction was rolled back: nothing written)."""
        if self._disk_full(exc):
            raise OSError(
                errno.ENOSPC,
                f"disk full while writing to {self!r}; nothing of this batch was written; "
                "fix: free space on that disk (or move the data directory) and run the same command again",
            ) from None

    def write_candles(self, candles: Candles, source: str = "") -> int:
        validate_candles(candles, source)
        if len(candles):
            try:
                self._write_candles(candles)
            except Exception as exc:
                self._guard_disk(exc)
                raise
        return len(candles)

    def write_trades(self, trades: Trades, source: str = "") -> int:
        validate_trades(trades, source)
        try:
            return self._write_trades(trades) if len(trades) else 0
        except Exception as exc:
            self._guard_disk(exc)
            raise

    # --- repair ----------------------------------------------------------------------------------------
    def delete_candles(self, exchange: str, symbol: str, timeframe: str, start: int | None = None, end: int | None = None) -> int:
        """Delete the bars of one series with ``start <= ts < end`` (all without bounds) in one transaction; returns
        how many. The series keeps its id (ids are cached and never reused), so re-importing it later is plain."""
        where, bounds = sql.range_filter(start, end)
        with self._lock:
            series_id = self._series_id((exchange, symbol, timeframe))
            if series_id is None:
                return 0
            with self.transaction() as tx:
                [(count,)] = tx.query(f"SELECT COUNT(*) FROM candle_bars WHERE series_id = ?{where}", [series_id, *bounds])
                tx.execute(f"DELETE FROM candle_bars WHERE series_id = ?{where}", [series_id, *bounds])
        return int(count)

    def verify(self, now_ms: int | None = None) -> list[Problem]:
        """Every broken invariant in the stored candles (see ``data.verify``), series by series; [] when sound."""
        problems = [
            Problem("?", "?", "?", f"bars of series id {sid} with no candle_series row", int(n), f"first ts {first}")
            for sid, n, first in self.query(_ORPHAN_BARS_SQL)
        ]
        ledger = {(s.exchange, s.symbol, s.timeframe): s for s in self.series()}
        for exchange, symbol, timeframe in self.query("SELECT exchange, symbol, timeframe FROM candle_series ORDER BY 1, 2, 3"):
            key = (exchange, symbol, timeframe)
            problems.extend(check_series(self.candles(*key), ledger.get(key), now_ms))
        return problems

    def holdings(self) -> list[Holding]:
        """Trades, depth snapshots and depth updates per market (candles: ``series``)."""
        found: list[Holding] = []
        for kind, table, ms, units in _HOLDINGS:
            rows = self.query(
                f"SELECT exchange, symbol, MIN({ms}), MAX({ms}), {units}, COUNT(*) FROM {table} "
                "GROUP BY exchange, symbol ORDER BY exchange, symbol"
            )
            found.extend(Holding(kind, ex, sym, int(lo), int(hi), int(n), int(r)) for ex, sym, lo, hi, n, r in rows)
        return found

    def _bars(self, key: SeriesKey, statement: str, params: Sequence[Any]) -> Candles:
        """Bars of one series: ``statement`` takes the series id first, then ``params``."""
        with self._lock:
            series_id = self._series_id(key)
            if series_id is None:
                return Candles.empty(*key)
            columns = self._fetch_bars(statement, [series_id, *params])
        c = columns
        return Candles(c["ts"], c["open"], c["high"], c["low"], c["close"], c["volume"], key[0], key[1], key[2])

    def candles(self, exchange: str, symbol: str, timeframe: str, start: int | None = None, end: int | None = None) -> Candles:
        where, bounds = sql.range_filter(start, end)
        return self._bars((exchange, symbol, timeframe), sql.BARS_SQL.format(where=where), bounds)

    def tail(self, exchange: str, symbol: str, timeframe: str, end: int, n: int, start: int | None = None) -> Candles:
        """The last ``n`` bars with ``start <= ts < end``, oldest first."""
        lower = sql.NO_LOWER_BOUND if start is None else int(start)
        return self._bars((exchange, symbol, timeframe), sql.TAIL_SQL, [lower, int(end), int(n)])

    def last_ts(self, exchange: str, symbol: str, timeframe: str, before: int | None = None) -> int | None:
        """Open time of the newest stored bar (with ``ts < before`` if given), or None."""
        limit = 2**63 - 1 if before is None else int(before)
        with self._lock:
            series_id = self._series_id((exchange, symbol, timeframe))
            value = None if series_id is None else self.query(sql.LAST_TS_SQL, [series_id, limit])[0][0]
        return None if value is None else int(value)

    def series(self) -> list[SeriesInfo]:
        return [
            SeriesInfo(ex, sym, tf, int(first), int(last), int(rows), missing_bars(int(first), int(last), int(rows), tf), int(g))
            for ex, sym, tf, first, last, rows, g in self.query(sql.SERIES_SQL)
        ]

    def gaps(self, exchange: str, symbol: str, timeframe: str) -> list[Gap]:
        return find_gaps(self.candles(exchange, symbol, timeframe).ts, timeframe)

    def write_depth_snapshot(self, exchange: str, symbol: str, rows: pd.DataFrame, source: str = "") -> int:
        validate_depth_snapshot(rows, source)
        return self._write_depth(sql.SNAPSHOTS, exchange, symbol, rows) if len(rows) else 0

    def write_depth_updates(self, exchange: str, symbol: str, rows: pd.DataFrame, source: str = "") -> int:
        validate_depth_updates(rows, source)
        return self._write_depth(sql.UPDATES, exchange, symbol, rows) if len(rows) else 0

    def depth_snapshots(self, exchange: str, symbol: str) -> pd.DataFrame:
        return self._read_depth(sql.SNAPSHOTS, exchange, symbol, "", [])

    def depth_updates(self, exchange: str, symbol: str, start_ns: int | None = None, end_ns: int | None = None) -> pd.DataFrame:
        where, bounds = sql.range_filter(start_ns, end_ns, column="local_ts_ns")
        return self._read_depth(sql.UPDATES, exchange, symbol, where, bounds)
