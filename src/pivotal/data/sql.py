"""SQL text shared by the DuckDB and PostgreSQL backends (both accept it unchanged, up to placeholders).

Candles live in two tables: ``candle_series`` (one row per exchange/symbol/timeframe, with a small integer id) and
``candle_bars`` (series_id, ts, OHLCV). Keying bars by an integer instead of three strings made bulk ingest about 3x
faster in both engines (measured with benchmarks/bench_data.py). The view ``candles`` joins them back, so SQL written
by later layers can keep saying ``FROM candles WHERE symbol = ?``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pivotal.core.timeframes import TIMEFRAMES

SCHEMA_VERSION = "1"

NO_LOWER_BOUND = -(2**63)

BAR_VALUES = ("open", "high", "low", "close", "volume")
TRADE_KEY = ("exchange", "symbol", "trade_id")
TRADE_VALUES = ("ts", "price", "amount", "is_buyer_maker")
SNAPSHOT_KEY = ("exchange", "symbol", "last_update_id", "side", "level")
SNAPSHOT_VALUES = ("local_ts_ns", "event_ts_ms", "transaction_ts_ms", "price", "qty")
UPDATE_KEY = ("exchange", "symbol", "final_update_id", "side", "price")
UPDATE_VALUES = ("local_ts_ns", "event_ts_ms", "transaction_ts_ms", "first_update_id", "prev_final_update_id", "qty")

DDL = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS candle_series (
        id INTEGER PRIMARY KEY, exchange TEXT NOT NULL, symbol TEXT NOT NULL, timeframe TEXT NOT NULL,
        UNIQUE (exchange, symbol, timeframe))""",
    """CREATE TABLE IF NOT EXISTS candle_bars (
        series_id INTEGER NOT NULL, ts BIGINT NOT NULL,
        open DOUBLE PRECISION NOT NULL, high DOUBLE PRECISION NOT NULL, low DOUBLE PRECISION NOT NULL,
        close DOUBLE PRECISION NOT NULL, volume DOUBLE PRECISION NOT NULL{bar_pk})""",
    """CREATE OR REPLACE VIEW candles AS
        SELECT s.exchange, s.symbol, s.timeframe, b.ts, b.open, b.high, b.low, b.close, b.volume
        FROM candle_bars AS b JOIN candle_series AS s ON s.id = b.series_id""",
    """CREATE TABLE IF NOT EXISTS trades (
        exchange TEXT NOT NULL, symbol TEXT NOT NULL, trade_id BIGINT NOT NULL, ts BIGINT NOT NULL,
        price DOUBLE PRECISION NOT NULL, amount DOUBLE PRECISION NOT NULL, is_buyer_maker BOOLEAN NOT NULL,
        PRIMARY KEY ({trade_pk}))""",
    """CREATE TABLE IF NOT EXISTS depth_snapshots (
        exchange TEXT NOT NULL, symbol TEXT NOT NULL, local_ts_ns BIGINT NOT NULL, event_ts_ms BIGINT,
        transaction_ts_ms BIGINT, last_update_id BIGINT NOT NULL, side TEXT NOT NULL, level INTEGER NOT NULL,
        price DOUBLE PRECISION NOT NULL, qty DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (exchange, symbol, last_update_id, side, level))""",
    """CREATE TABLE IF NOT EXISTS depth_updates (
        exchange TEXT NOT NULL, symbol TEXT NOT NULL, local_ts_ns BIGINT NOT NULL, event_ts_ms BIGINT,
        transaction_ts_ms BIGINT, first_update_id BIGINT NOT NULL, final_update_id BIGINT NOT NULL,
        prev_final_update_id BIGINT, side TEXT NOT NULL, price DOUBLE PRECISION NOT NULL, qty DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (exchange, symbol, final_update_id, side, price))""",
)


def ddl(trade_pk: Sequence[str] = TRADE_KEY, bar_pk: bool = True, key_collation: str = "") -> list[str]:
    """CREATE statements. ``trade_pk`` widens for TimescaleDB, whose unique keys must contain the time column;
    ``bar_pk=False`` leaves the (series_id, ts) key to the write path (DuckDB, see ``duckdb_store``);
    ``key_collation`` (PostgreSQL: ``COLLATE "C"``) makes text key comparisons plain byte compares."""
    key = ",\n        PRIMARY KEY (series_id, ts)" if bar_pk else ""
    statements = []
    for text in DDL:
        text = text.replace("{trade_pk}", ", ".join(trade_pk)).replace("{bar_pk}", key)
        if key_collation:
            for column in ("exchange", "symbol", "timeframe"):
                text = text.replace(f"{column} TEXT NOT NULL", f"{column} TEXT {key_collation} NOT NULL")
        statements.append(text)
    return statements


def upsert(table: str, columns: Sequence[str], key: Sequence[str], values: Sequence[str], select: str) -> str:
    """``INSERT INTO table (columns) <select> ON CONFLICT (key) DO UPDATE SET values = excluded.values``."""
    updates = ", ".join(f"{name} = excluded.{name}" for name in values)
    return f"INSERT INTO {table} ({', '.join(columns)}) {select} ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"


SERIES_ID_SQL = "SELECT id FROM candle_series WHERE exchange = ? AND symbol = ? AND timeframe = ?"
# Next free id; the UNIQUE constraint turns a concurrent double allocation into an error, never a duplicate.
NEW_SERIES_SQL = (
    "INSERT INTO candle_series (id, exchange, symbol, timeframe) SELECT COALESCE(MAX(id), 0) + 1, ?, ?, ? FROM candle_series"
)


def _step_case() -> str:
    arms = " ".join(f"WHEN '{name}' THEN {ms}" for name, ms in TIMEFRAMES.items())
    return f"CASE s.timeframe {arms} END"


# Per-series coverage: a gap is a jump between consecutive bars larger than one bar (LAG window).
SERIES_SQL = f"""
SELECT s.exchange, s.symbol, s.timeframe, MIN(lagged.ts), MAX(lagged.ts), COUNT(*),
       SUM(CASE WHEN lagged.jump > {_step_case()} THEN 1 ELSE 0 END)
FROM (SELECT series_id, ts, ts - LAG(ts) OVER (PARTITION BY series_id ORDER BY ts) AS jump FROM candle_bars) AS lagged
JOIN candle_series AS s ON s.id = lagged.series_id
GROUP BY s.exchange, s.symbol, s.timeframe
ORDER BY s.exchange, s.symbol, s.timeframe
"""

BAR_COLUMNS = "ts, open, high, low, close, volume"
TRADE_COLUMNS = "ts, trade_id, price, amount, is_buyer_maker"
SNAPSHOT_ROW = ("local_ts_ns", "event_ts_ms", "transaction_ts_ms", "last_update_id", "side", "level", "price", "qty")
UPDATE_ROW = (
    "local_ts_ns",
    "event_ts_ms",
    "transaction_ts_ms",
    "first_update_id",
    "final_update_id",
    "prev_final_update_id",
    "side",
    "price",
    "qty",
)


@dataclass(frozen=True)
class DepthTable:
    """One order-book table: the stored row, the upsert key, the values an upsert replaces and the read order."""

    name: str
    row: tuple[str, ...]
    key: tuple[str, ...]
    values: tuple[str, ...]
    order: str

    def upsert(self, select_row: str, mark: str, batch: str) -> str:
        """Upsert from the temp table ``batch``: exchange and symbol as parameters (``mark``), then ``select_row``."""
        select = f"SELECT {mark}, {mark}, {select_row} FROM {batch}"
        return upsert(self.name, ("exchange", "symbol", *self.row), self.key, self.values, select)

    def select(self, columns: str, where: str) -> str:
        """Rows of one exchange and symbol (``?`` placeholders), in the table's order."""
        return f"SELECT {columns} FROM {self.name} WHERE exchange = ? AND symbol = ?{where} ORDER BY {self.order}"


SNAPSHOTS = DepthTable("depth_snapshots", SNAPSHOT_ROW, SNAPSHOT_KEY, SNAPSHOT_VALUES, "local_ts_ns, last_update_id, side, level")
UPDATES = DepthTable("depth_updates", UPDATE_ROW, UPDATE_KEY, UPDATE_VALUES, "local_ts_ns, final_update_id, side, price")

BARS_SQL = f"SELECT {BAR_COLUMNS} FROM candle_bars WHERE series_id = ?{{where}} ORDER BY ts"
LAST_TS_SQL = "SELECT MAX(ts) FROM candle_bars WHERE series_id = ? AND ts < ?"
# The newest n bars in [start, end), oldest first (PostgreSQL walks the key index backwards; the start bound lets
# DuckDB skip row groups by their min/max).
TAIL_SQL = f"""
SELECT {BAR_COLUMNS} FROM (
    SELECT {BAR_COLUMNS} FROM candle_bars WHERE series_id = ? AND ts >= ? AND ts < ? ORDER BY ts DESC LIMIT ?) AS newest
ORDER BY ts
"""


def range_filter(start: int | None, end: int | None, column: str = "ts") -> tuple[str, list[int]]:
    """`` AND column >= ? AND column < ?`` for the bounds given (``?`` placeholders)."""
    clauses, params = [], []
    if start is not None:
        clauses.append(f" AND {column} >= ?")
        params.append(int(start))
    if end is not None:
        clauses.append(f" AND {column} < ?")
        params.append(int(end))
    return "".join(clauses), params


def where(conditions: Sequence[tuple[str, str, object]], extra: Sequence[tuple[str, object]] = ()) -> tuple[str, list[object]]:
    """`` WHERE a = ? AND b >= ?`` and its parameters from (column, operator, value) triples, skipping None values
    (a filter field left as "any"); ``extra``: (clause, parameter) pairs appended as given. "" when nothing filters."""
    clauses = [f"{column} {op} ?" for column, op, value in conditions if value is not None]
    params = [value for _, _, value in conditions if value is not None]
    for clause, param in extra:
        clauses.append(clause)
        params.append(param)
    return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params
