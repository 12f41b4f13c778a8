"""Throw-away stores for tests: a DuckDB file in a temp folder, or PostgreSQL in a new, uniquely named schema.

Other engineers share the PostgreSQL database, so every store gets its own schema and drops it afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pivotal.data.duckdb_store import DuckDBStore
from pivotal.data.postgres_store import PostgresStore
from pivotal.data.store import MarketStore

POSTGRES_DSN = os.environ.get("PIVOTAL_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
# Parameters for a fixture that runs a test once per backend.
BACKENDS = ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]


def fresh_postgres_store() -> PostgresStore:
    """A store in a new schema; the caller drops it (prefer ``throwaway_postgres_store``)."""
    return PostgresStore(POSTGRES_DSN, f"pivotal_test_{uuid.uuid4().hex[:12]}")


@contextmanager
def throwaway_postgres_store() -> Iterator[PostgresStore]:
    """A fresh PostgreSQL store whose schema is dropped on exit, whatever happened inside."""
    pg = fresh_postgres_store()
    try:
        yield pg
    finally:
        pg.drop_schema()
        pg.close()


@contextmanager
def throwaway_store(backend: str, folder: Path) -> Iterator[MarketStore]:
    """``backend`` 'duckdb' (a file in ``folder``) or 'postgres' (a fresh schema), cleaned up on exit."""
    if backend == "postgres":
        with throwaway_postgres_store() as pg:
            yield pg
        return
    duck = DuckDBStore(folder / "store.duckdb")
    try:
        yield duck
    finally:
        duck.close()
