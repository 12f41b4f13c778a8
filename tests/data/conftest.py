"""Both store backends behind one fixture: the same behavioural suite runs against each."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pivotal.data.duckdb_store import DuckDBStore
from pivotal.data.postgres_store import PostgresStore
from pivotal.data.store import MarketStore

POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def fresh_postgres_store() -> PostgresStore:
    """A store in a new, uniquely named schema (other engineers share the database)."""
    return PostgresStore(POSTGRES_DSN, f"pivotal_test_{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=["duckdb", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MarketStore]:
    if request.param == "duckdb":
        duck = DuckDBStore(tmp_path / "store.duckdb")
        yield duck
        duck.close()
        return
    pg = fresh_postgres_store()
    try:
        yield pg
    finally:
        pg.drop_schema()
        pg.close()
