"""Two processes opening a PostgreSQL store on the same new schema at once: both succeed (no ``UniqueViolation``
from concurrent ``CREATE SCHEMA/TABLE IF NOT EXISTS``), and both see one set of tables."""

from __future__ import annotations

import multiprocessing
import uuid
from typing import Any

import psycopg
import pytest

from pivotal.data.postgres_store import PostgresStore
from tests.stores import POSTGRES_DSN

pytestmark = pytest.mark.postgres

ROUNDS = 6


def _open_each(barrier: Any, schemas: list[str], errors: Any) -> None:
    """One process: for each schema, wait for the other process, then open (and so create) it at the same moment."""
    for schema in schemas:
        barrier.wait(timeout=60)
        try:
            PostgresStore(POSTGRES_DSN, schema).close()
        except Exception as exc:  # reported to the parent, which asserts there are none
            errors.put(f"{schema}: {type(exc).__name__}: {exc}".splitlines()[0])


def test_two_processes_creating_the_same_new_schema_both_succeed() -> None:
    base = f"pivotal_test_race_{uuid.uuid4().hex[:8]}"
    schemas = [f"{base}_{i}" for i in range(ROUNDS)]
    ctx = multiprocessing.get_context("fork")
    barrier, errors = ctx.Barrier(2), ctx.Queue()
    workers = [ctx.Process(target=_open_each, args=(barrier, schemas, errors)) for _ in range(2)]
    try:
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=120)
        assert [w.exitcode for w in workers] == [0, 0]
        found = []
        while not errors.empty():
            found.append(errors.get())
        assert found == []
        with psycopg.connect(POSTGRES_DSN) as con:
            tables = con.execute(
                "SELECT table_schema, COUNT(*) FROM information_schema.tables WHERE table_schema LIKE %s GROUP BY 1",
                [f"{base}%"],
            ).fetchall()
        assert len(tables) == ROUNDS and len({n for _, n in tables}) == 1
    finally:
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as con:
            for schema in schemas:
                for name in (f"{schema}_state", schema):
                    con.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
