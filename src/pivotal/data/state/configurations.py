"""``ConfigurationRecords``: the ``trained_configurations`` table (parameter-search results ready for live use).

Rows are plain dicts of the column values (JSON columns as text); ``optimize.configs`` maps them to and from
``TrainedConfiguration``. Saving upserts by id and keeps the first ``created_at``.
"""

from __future__ import annotations

from typing import Any

from pivotal.data.state.migrations import Migration, Schema, SqlStore, migrate, statements

COLUMNS = (
    "id", "job_id", "strategy", "pair", "exchange", "timeframe", "parameters", "is_metrics", "oos_metrics",
    "significance", "sample_size", "lifecycle_stage", "created_at", "updated_at",
)  # fmt: skip
_COLUMN_LIST = ", ".join(COLUMNS)

SCHEMA = Schema(
    "trained_configurations",
    (
        Migration(
            1,
            "trained_configurations",
            statements(
                """CREATE TABLE IF NOT EXISTS trained_configurations (
                id TEXT PRIMARY KEY, job_id TEXT, strategy TEXT NOT NULL, pair TEXT NOT NULL, exchange TEXT NOT NULL,
                timeframe TEXT NOT NULL, parameters TEXT NOT NULL, is_metrics TEXT NOT NULL, oos_metrics TEXT NOT NULL,
                significance TEXT NOT NULL, sample_size INTEGER NOT NULL, lifecycle_stage TEXT NOT NULL,
                created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)"""
            ),
        ),
    ),
    legacy_tables=("trained_configurations",),
)

_UPSERT = (
    f"INSERT INTO trained_configurations ({_COLUMN_LIST}) VALUES ({', '.join('?' * len(COLUMNS))}) "
    "ON CONFLICT (id) DO UPDATE SET job_id = excluded.job_id, parameters = excluded.parameters, "
    "is_metrics = excluded.is_metrics, oos_metrics = excluded.oos_metrics, significance = excluded.significance, "
    "sample_size = excluded.sample_size, lifecycle_stage = excluded.lifecycle_stage, updated_at = excluded.updated_at"
)


class ConfigurationRecords:
    """Rows of ``trained_configurations``; the schema is migrated when the repository is created."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        migrate(store, SCHEMA)

    def save(self, row: dict[str, Any]) -> None:
        """Upsert by ``id``; every column of ``COLUMNS`` must be present (``created_at`` of an existing row is kept)."""
        missing = [c for c in COLUMNS if c not in row]
        if missing:
            raise ValueError(f"trained configuration row lacks column(s) {', '.join(missing)}")
        self.store.execute(_UPSERT, [row[c] for c in COLUMNS])

    def get(self, config_id: str) -> dict[str, Any] | None:
        rows = self.store.query(f"SELECT {_COLUMN_LIST} FROM trained_configurations WHERE id = ?", (config_id,))
        return dict(zip(COLUMNS, rows[0], strict=True)) if rows else None

    def list(self, job_id: str | None = None, strategy: str | None = None) -> list[dict[str, Any]]:
        clauses, params = [], []
        for clause, value in (("job_id = ?", job_id), ("strategy = ?", strategy)):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT {_COLUMN_LIST} FROM trained_configurations{where} ORDER BY exchange, pair, timeframe, id"
        return [dict(zip(COLUMNS, r, strict=True)) for r in self.store.query(sql, params)]
