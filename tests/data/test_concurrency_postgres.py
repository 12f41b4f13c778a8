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


def _migrate_each(barrier: Any, schemas: list[str], errors: Any) -> None:
    """One process: open each (existing) schema, wait for the other process, then open every state repository."""
    from pivotal.data.state.configurations import ConfigurationRecords
    from pivotal.data.state.jobs import JobRecords
    from pivotal.data.state.model_outputs import ModelOutputRepository
    from pivotal.data.state.pivots import PivotRepository

    for schema in schemas:
        store = PostgresStore(POSTGRES_DSN, schema)
        try:
            barrier.wait(timeout=60)
            for repository in (ConfigurationRecords, JobRecords, ModelOutputRepository, PivotRepository):
                repository(store)  # type: ignore[arg-type]
        except Exception as exc:  # reported to the parent, which asserts there are none
            errors.put(f"{schema}: {type(exc).__name__}: {exc}".splitlines()[0])
        finally:
            store.close()


def test_two_processes_migrating_a_new_state_schema_at_once_both_succeed() -> None:
    base = f"pivotal_test_migr_{uuid.uuid4().hex[:8]}"
    schemas = [f"{base}_{i}" for i in range(ROUNDS)]
    for schema in schemas:  # market schema in place; the state tables are created by the racing processes
        PostgresStore(POSTGRES_DSN, schema).close()
    ctx = multiprocessing.get_context("fork")
    barrier, errors = ctx.Barrier(2), ctx.Queue()
    workers = [ctx.Process(target=_migrate_each, args=(barrier, schemas, errors)) for _ in range(2)]
    try:
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=120)
        found = []
        while not errors.empty():
            found.append(errors.get())
        assert found == [] and [w.exitcode for w in workers] == [0, 0]
        with psycopg.connect(POSTGRES_DSN) as con:
            versions = con.execute(
                f'SELECT repository, version FROM "{schemas[0]}_state".schema_versions ORDER BY repository'
            ).fetchall()
        assert len(versions) == 4
    finally:
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as con:
            for schema in schemas:
                for name in (f"{schema}_state", schema):
                    con.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
