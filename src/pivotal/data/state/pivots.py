"""``PivotRepository``: persisted pivot events and incremental-detector state, per (series, parameter set).

Tables: ``pivots`` (append-only: a pivot once written never changes; a replay re-inserts the same rows, which
``ON CONFLICT DO NOTHING`` turns into no-ops) and ``pivot_state`` (one row per series and parameter hash: the
detector state as JSON, the last processed bar, the number of bars fed). Schema version 1 is the layout earlier
releases created without a version row, so their databases are used as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pivotal.data.state.migrations import Migration, Schema, SqlStore, migrate, statements
from pivotal.data.store import SeriesKey

SCHEMA = Schema(
    "pivots",
    (
        Migration(
            1,
            "pivots and pivot_state",
            statements(
                """CREATE TABLE IF NOT EXISTS pivots (
                exchange TEXT NOT NULL, symbol TEXT NOT NULL, timeframe TEXT NOT NULL, params_hash TEXT NOT NULL,
                level INTEGER NOT NULL, kind TEXT NOT NULL, bar_index BIGINT NOT NULL, ts BIGINT NOT NULL,
                price DOUBLE PRECISION NOT NULL, confirmed_at BIGINT NOT NULL, confirmed_ts BIGINT NOT NULL,
                PRIMARY KEY (exchange, symbol, timeframe, params_hash, level, kind, ts))""",
                """CREATE TABLE IF NOT EXISTS pivot_state (
                exchange TEXT NOT NULL, symbol TEXT NOT NULL, timeframe TEXT NOT NULL, params_hash TEXT NOT NULL,
                params TEXT NOT NULL, last_ts BIGINT NOT NULL, bars BIGINT NOT NULL, state TEXT NOT NULL,
                updated_ms BIGINT NOT NULL, PRIMARY KEY (exchange, symbol, timeframe, params_hash))""",
            ),
        ),
    ),
    legacy_tables=("pivots", "pivot_state"),
)

_PIVOT_COLUMNS = "exchange, symbol, timeframe, params_hash, level, kind, bar_index, ts, price, confirmed_at, confirmed_ts"
# One statement per update, columns passed as arrays: binding thousands of scalar placeholders is ~10x slower.
_PIVOTS_INSERT = (
    f"INSERT INTO pivots ({_PIVOT_COLUMNS}) SELECT ?, ?, ?, ?, UNNEST(CAST(? AS INTEGER[])), UNNEST(CAST(? AS TEXT[])), "
    "UNNEST(CAST(? AS BIGINT[])), UNNEST(CAST(? AS BIGINT[])), UNNEST(CAST(? AS DOUBLE PRECISION[])), "
    "UNNEST(CAST(? AS BIGINT[])), UNNEST(CAST(? AS BIGINT[])) ON CONFLICT DO NOTHING"
)
_STATE_UPSERT = (
    "INSERT INTO pivot_state (exchange, symbol, timeframe, params_hash, params, last_ts, bars, state, updated_ms) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (exchange, symbol, timeframe, params_hash) DO UPDATE SET "
    "params = excluded.params, last_ts = excluded.last_ts, bars = excluded.bars, state = excluded.state, "
    "updated_ms = excluded.updated_ms"
)
# DuckDB's ON CONFLICT DO UPDATE costs ~3x a plain UPDATE: once a series has a state row, update it in place.
_STATE_UPDATE = (
    "UPDATE pivot_state SET params = ?, last_ts = ?, bars = ?, state = ?, updated_ms = ? "
    "WHERE exchange = ? AND symbol = ? AND timeframe = ? AND params_hash = ?"
)
_STATE_SELECT = (
    "SELECT last_ts, bars, state FROM pivot_state WHERE exchange = ? AND symbol = ? AND timeframe = ? AND params_hash = ?"
)
_PIVOTS_SELECT = (
    "SELECT level, kind, bar_index, price, confirmed_at, ts, confirmed_ts FROM pivots "
    "WHERE exchange = ? AND symbol = ? AND timeframe = ? AND params_hash = ? "
    "ORDER BY confirmed_at, level, bar_index, kind"
)


@dataclass(frozen=True)
class StoredState:
    """The persisted detector of one series: ``state`` is ``WilliamsMarketStructure.state()`` as JSON text."""

    last_ts: int
    bars: int
    state: str


@dataclass(frozen=True)
class PivotRow:
    """One persisted pivot (the fields of ``structure.types.PivotEvent``; this layer does not import structure)."""

    level: int
    kind: str
    index: int
    price: float
    confirmed_at: int
    ts: int
    confirmed_ts: int


class PivotRepository:
    """Pivot events and detector state on a store; the schema is migrated when the repository is created."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        migrate(store, SCHEMA)

    def load_state(self, key: SeriesKey, params_hash: str) -> StoredState | None:
        rows = self.store.query(_STATE_SELECT, [*key, params_hash])
        if not rows:
            return None
        last_ts, bars, state = rows[0]
        return StoredState(int(last_ts), int(bars), str(state))

    def save(
        self,
        key: SeriesKey,
        params_hash: str,
        params_json: str,
        pivots: Sequence[PivotRow],
        state: StoredState,
        updated_ms: int,
        replace_state: bool,
    ) -> None:
        """Pivots first, then the state (a crash in between replays the same bars: harmless, see module docstring).

        ``replace_state``: a state row exists already (updated in place, the cheaper statement on DuckDB).
        """
        if pivots:
            columns = [
                [p.level for p in pivots],
                [p.kind for p in pivots],
                [p.index for p in pivots],
                [p.ts for p in pivots],
                [p.price for p in pivots],
                [p.confirmed_at for p in pivots],
                [p.confirmed_ts for p in pivots],
            ]
            self.store.execute(_PIVOTS_INSERT, [*key, params_hash, *columns])
        values = [params_json, state.last_ts, state.bars, state.state, updated_ms]
        if replace_state:
            self.store.execute(_STATE_UPDATE, [*values, *key, params_hash])
        else:
            self.store.execute(_STATE_UPSERT, [*key, params_hash, *values])

    def pivots(self, key: SeriesKey, params_hash: str) -> list[PivotRow]:
        """Every persisted pivot of the series for one parameter set, ordered by (confirmed_at, level, bar_index, kind)."""
        rows = self.store.query(_PIVOTS_SELECT, [*key, params_hash])
        return [PivotRow(int(lv), str(kd), int(i), float(p), int(c), int(t), int(ct)) for lv, kd, i, p, c, t, ct in rows]
