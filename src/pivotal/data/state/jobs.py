"""``JobRecords``: the ``optimization_jobs`` table (parameter searches: spec JSON + status
PENDING -> RUNNING -> COMPLETED | FAILED).

Version 1 is what earlier releases created, under the name ``training_jobs``; version 2 renames it to
``optimization_jobs`` (rows kept) because "training" means model training only. ``optimize.jobs`` maps the rows to
``OptimizationJob``.
"""

from __future__ import annotations

from typing import Any

from pivotal.data.state.migrations import Migration, Schema, SqlStore, migrate, statements

TABLE = "optimization_jobs"
LEGACY_TABLE = "training_jobs"  # the name of version 1
COLUMNS = ("id", "spec", "status", "progress", "created_at", "updated_at", "started_at", "finished_at", "error")
_COLUMN_LIST = ", ".join(COLUMNS)

SCHEMA = Schema(
    "optimization_jobs",
    (
        Migration(
            1,
            "training_jobs",
            statements(
                f"""CREATE TABLE IF NOT EXISTS {LEGACY_TABLE} (
                id TEXT PRIMARY KEY, spec TEXT NOT NULL, status TEXT NOT NULL, progress DOUBLE PRECISION NOT NULL,
                created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, started_at BIGINT, finished_at BIGINT, error TEXT)"""
            ),
        ),
        Migration(2, "rename training_jobs to optimization_jobs", statements(f"ALTER TABLE {LEGACY_TABLE} RENAME TO {TABLE}")),
    ),
    legacy_tables=(LEGACY_TABLE,),
)


class JobRecords:
    """Rows of ``optimization_jobs`` as dicts of ``COLUMNS``; the schema is migrated when the repository is created.
    Times are epoch ms, given by the caller (its clock)."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        migrate(store, SCHEMA)

    def create(self, job_id: str, spec_json: str, now_ms: int) -> None:
        self.store.execute(
            f"INSERT INTO {TABLE} ({_COLUMN_LIST}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (job_id, spec_json, "PENDING", 0.0, now_ms, now_ms, None, None, None),
        )

    def get(self, job_id: str) -> dict[str, Any] | None:
        rows = self.store.query(f"SELECT {_COLUMN_LIST} FROM {TABLE} WHERE id = ?", (job_id,))
        return dict(zip(COLUMNS, rows[0], strict=True)) if rows else None

    def ids(self) -> list[str]:
        return [str(r[0]) for r in self.store.query(f"SELECT id FROM {TABLE} ORDER BY created_at, id")]

    def mark_running(self, job_id: str, now_ms: int) -> None:
        self.store.execute(
            f"UPDATE {TABLE} SET status = 'RUNNING', started_at = ?, updated_at = ?, finished_at = NULL, error = NULL "
            "WHERE id = ?",
            (now_ms, now_ms, job_id),
        )

    def set_progress(self, job_id: str, progress: float, now_ms: int) -> None:
        self.store.execute(
            f"UPDATE {TABLE} SET progress = ?, updated_at = ? WHERE id = ?", (min(max(progress, 0.0), 1.0), now_ms, job_id)
        )

    def finish(self, job_id: str, now_ms: int, error: str | None = None) -> None:
        """COMPLETED (progress 1) without ``error``, else FAILED with it."""
        if error is None:
            self.set_progress(job_id, 1.0, now_ms)
        self.store.execute(
            f"UPDATE {TABLE} SET status = ?, finished_at = ?, updated_at = ?, error = ? WHERE id = ?",
            ("FAILED" if error else "COMPLETED", now_ms, now_ms, error, job_id),
        )

    def list(self) -> list[dict[str, Any]]:
        """Every job, oldest first."""
        rows = self.store.query(f"SELECT {_COLUMN_LIST} FROM {TABLE} ORDER BY created_at, id")
        return [dict(zip(COLUMNS, r, strict=True)) for r in rows]
