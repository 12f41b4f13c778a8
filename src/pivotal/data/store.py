"""The ``MarketStore`` protocol: the seam between the data lake and everything built on it.

Backends (one file each): ``duckdb_store.DuckDBStore`` (embedded default) and
``postgres_store.PostgresStore``. Use :func:`open_store` to get the one the settings name.

Conventions
- Times are UTC epoch milliseconds; ``candles(..., start, end)`` returns bars with ``start <= ts < end``.
- Primary key of candles: (exchange, symbol, timeframe, ts). Writes are upserts: re-importing the same
  data changes nothing, overlapping imports merge, and every write call is one transaction (all or nothing).
- Every write is validated first (see ``validation.py``); invalid input raises ``ValidationError`` naming
  source, row and field, and nothing is written.
- The store's own DDL holds market tables only. ``execute``/``query`` (and ``transaction()`` on both backends) serve
  the application-state repositories in ``pivotal.data.state`` (pivots, model outputs, trained configurations,
  jobs), which own their tables and versioned migrations on the same database: placeholders are ``?``, JSON is
  TEXT, only SQL both engines accept (CREATE TABLE IF NOT EXISTS, INSERT ... ON CONFLICT (...) DO UPDATE/NOTHING).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from pivotal.core.errors import StoreUnavailable
from pivotal.data.candles import Candles
from pivotal.data.trades import Trades

SeriesKey = tuple[str, str, str]
"""(exchange, symbol, timeframe): the identity of one stored candle series."""


@dataclass(frozen=True)
class SeriesInfo:
    """Coverage of one stored candle series."""

    exchange: str
    symbol: str
    timeframe: str
    first_ts: int
    last_ts: int
    rows: int
    missing_bars: int
    gaps: int


class IncompatibleStore(StoreUnavailable, RuntimeError):
    """The store's tables were written by an incompatible pivotal version (refused, never altered)."""


@dataclass(frozen=True)
class Holding:
    """What the store holds of one non-candle kind for one market (``data info``): trades, depth snapshots or
    depth updates. ``first``/``last`` are epoch ms; ``units`` counts trades, snapshots (distinct update ids) or
    updates (distinct final update ids), ``rows`` the stored rows."""

    kind: str
    exchange: str
    symbol: str
    first: int
    last: int
    units: int
    rows: int


@dataclass(frozen=True)
class Problem:
    """One broken invariant of a stored series (``data verify``): what, how many rows, the first example."""

    exchange: str
    symbol: str
    timeframe: str
    check: str
    count: int
    example: str

    def __str__(self) -> str:
        where = "/".join(p for p in (self.exchange, self.symbol, self.timeframe) if p)
        return f"{where}: {self.check}: {self.count:,} row(s), e.g. {self.example}"


@dataclass(frozen=True)
class Gap:
    """Missing bars between two stored bars: ``start`` is the first missing open time, ``end`` the next stored."""

    start: int
    end: int
    missing: int


@runtime_checkable
class MarketStore(Protocol):
    # --- candles -------------------------------------------------------------------------------
    def write_candles(self, candles: Candles, source: str = "") -> int:
        """Validate and upsert one series batch atomically; returns rows written. ``source`` names the
        file or feed for error messages."""
        ...

    def candles(
        self, exchange: str, symbol: str, timeframe: str, start: int | None = None, end: int | None = None
    ) -> Candles: ...

    def last_ts(self, exchange: str, symbol: str, timeframe: str, before: int | None = None) -> int | None:
        """Open time of the newest stored bar (with ``ts < before`` when given), or None."""
        ...

    def tail(self, exchange: str, symbol: str, timeframe: str, end: int, n: int, start: int | None = None) -> Candles:
        """The last ``n`` bars with ``start <= ts < end``, oldest first (the as-of window primitive)."""
        ...

    def series(self) -> list[SeriesInfo]:
        """Coverage of every stored candle series."""
        ...

    def gaps(self, exchange: str, symbol: str, timeframe: str) -> list[Gap]: ...

    # --- trades and order book ---------------------------------------------------------------
    def write_trades(self, trades: Trades, source: str = "") -> int: ...

    def trades(self, exchange: str, symbol: str, start: int | None = None, end: int | None = None) -> Trades: ...

    def write_depth_snapshot(self, exchange: str, symbol: str, rows: pd.DataFrame, source: str = "") -> int:
        """Rows: local_ts_ns, event_ts_ms, last_update_id, side ('bid'|'ask'), level, price, qty."""
        ...

    def write_depth_updates(self, exchange: str, symbol: str, rows: pd.DataFrame, source: str = "") -> int:
        """Rows: local_ts_ns, event_ts_ms, transaction_ts_ms, first_update_id, final_update_id,
        prev_final_update_id, side, price, qty (absolute qty; 0 removes the level)."""
        ...

    def depth_snapshots(self, exchange: str, symbol: str) -> pd.DataFrame: ...

    def depth_updates(
        self, exchange: str, symbol: str, start_ns: int | None = None, end_ns: int | None = None
    ) -> pd.DataFrame: ...

    # --- what is stored, and repair ---------------------------------------------------------------
    def holdings(self) -> list[Holding]:
        """Trades, depth snapshots and depth updates per market (``data info``)."""
        ...

    def verify(self, now_ms: int | None = None) -> list[Problem]:
        """Every broken invariant of the stored candles; [] when sound (``data verify``)."""
        ...

    def delete_candles(self, exchange: str, symbol: str, timeframe: str, start: int | None = None, end: int | None = None) -> int:
        """Delete one series' bars with ``start <= ts < end`` (all without bounds) in one transaction; how many."""
        ...

    # --- portable SQL for later layers -----------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def close(self) -> None: ...
