"""Versioned schemas for application state (pivots, model outputs, trained configurations, optimisation jobs).

Each repository owns a :class:`Schema`: a name and ordered migrations 1..n. :func:`migrate` brings the database to the
newest version in one transaction and records it in ``schema_versions`` (one row per repository). A database written
by a newer pivotal (its version above the code's) is refused with a message that says so, never silently altered.

Where the tables live: on the market store's connection, created and changed only by the state repositories (the
market store's own DDL holds market tables only). DuckDB: in the same file, next to the candles. One file means one
writer lock per process (a second file would need a second one, and a second connection), state and market reads in
one transaction where needed, and the databases of earlier releases, whose state tables already sit there, keep
working as they are. PostgreSQL: in the schema ``<market schema>_state``, first on the store's search path, so state
can be backed up, granted or dropped apart from market data; a table an earlier release left in the market schema is
moved over (``ALTER TABLE ... SET SCHEMA``, rows kept) the first time its repository opens. Either way a repository
that finds its tables but no ``schema_versions`` row records them as version 1 (the schema those releases created)
and applies what follows.

SQL is the portable subset both engines accept (``?`` placeholders, TEXT for JSON, ``ON CONFLICT``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from pivotal.core.clock import Clock, WallClock
from pivotal.core.errors import PivotalError

VERSIONS_TABLE = "schema_versions"
_VERSIONS_DDL = (
    f"CREATE TABLE IF NOT EXISTS {VERSIONS_TABLE} ("
    "repository TEXT PRIMARY KEY, version INTEGER NOT NULL, updated_ms BIGINT NOT NULL)"
)
_VERSION_UPSERT = (
    f"INSERT INTO {VERSIONS_TABLE} (repository, version, updated_ms) VALUES (?, ?, ?) "
    "ON CONFLICT (repository) DO UPDATE SET version = excluded.version, updated_ms = excluded.updated_ms"
)


@runtime_checkable
class SqlStore(Protocol):
    """Anything that runs portable SQL (``?`` placeholders): the market stores, or one transaction of them."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


@runtime_checkable
class TransactionalSqlStore(SqlStore, Protocol):
    """A ``SqlStore`` that can run several statements as one transaction (``DuckDBStore``, ``PostgresStore``)."""

    def transaction(self) -> AbstractContextManager[SqlStore]: ...


class SchemaError(PivotalError):
    """The state tables cannot be used by this version of pivotal; the message says why and what to do."""


@dataclass(frozen=True)
class Migration:
    """Step ``version - 1 -> version``; ``apply`` runs inside the migration transaction."""

    version: int
    description: str
    apply: Callable[[SqlStore], None]


def statements(*sql: str) -> Callable[[SqlStore], None]:
    """A migration step made of plain statements."""

    def apply(session: SqlStore) -> None:
        for statement in sql:
            session.execute(statement)

    return apply


@dataclass(frozen=True)
class Schema:
    """The versioned tables of one repository.

    ``legacy_tables``: tables that releases before versioning created; found without a ``schema_versions`` row they
    are taken as version 1.
    """

    name: str
    migrations: tuple[Migration, ...]
    legacy_tables: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        versions = [m.version for m in self.migrations]
        if versions != list(range(1, len(versions) + 1)):
            raise ValueError(f"schema {self.name!r}: migrations must be numbered 1..n in order (got {versions})")

    @property
    def latest(self) -> int:
        return len(self.migrations)


@contextmanager
def _autocommit(store: SqlStore) -> Iterator[SqlStore]:
    yield store


def _session(store: SqlStore) -> AbstractContextManager[SqlStore]:
    """One transaction where the store offers it; else statement by statement (test doubles)."""
    transaction = getattr(store, "transaction", None)
    return transaction() if callable(transaction) else _autocommit(store)


def table_exists(session: SqlStore, table: str) -> bool:
    """Whether ``table`` exists in the store's current schema (DuckDB and PostgreSQL both have information_schema)."""
    rows = session.query(
        "SELECT 1 FROM information_schema.tables WHERE table_name = ? AND table_schema = current_schema()", [table]
    )
    return bool(rows)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def adopt_legacy_tables(session: SqlStore, schema: Schema, legacy_schema: str | None) -> None:
    """Move ``schema``'s tables from ``legacy_schema`` (PostgreSQL: the market schema, where releases before the
    state schema kept them) into the current schema, so their rows stay in use. No-op where there is none."""
    if not legacy_schema:
        return
    [(current,)] = session.query("SELECT current_schema()")
    if current == legacy_schema:
        return
    for table in schema.legacy_tables:
        found = session.query(
            "SELECT 1 FROM information_schema.tables WHERE table_name = ? AND table_schema = ?", [table, legacy_schema]
        )
        if found and not table_exists(session, table):
            session.execute(f"ALTER TABLE {_quoted(legacy_schema)}.{_quoted(table)} SET SCHEMA {_quoted(current)}")


def stored_version(session: SqlStore, schema: Schema) -> int:
    """Version of ``schema`` in the database: 0 when absent, 1 for unversioned tables of earlier releases."""
    if table_exists(session, VERSIONS_TABLE):
        rows = session.query(f"SELECT version FROM {VERSIONS_TABLE} WHERE repository = ?", [schema.name])
        if rows:
            return int(rows[0][0])
    if schema.legacy_tables and any(table_exists(session, t) for t in schema.legacy_tables):
        return 1
    return 0


def migrate(store: SqlStore, schema: Schema, clock: Clock | None = None) -> int:
    """Bring ``schema`` to its newest version in one transaction; returns that version.

    Raises ``SchemaError`` when the database holds a newer version than this code knows. A store that offers
    ``migration_lock()`` (PostgreSQL: an advisory lock) holds it for the migration, so two processes opening a new
    state schema at once do not both create the same tables.
    """
    lock = getattr(store, "migration_lock", None)
    with lock() if callable(lock) else nullcontext(), _session(store) as session:
        session.execute(_VERSIONS_DDL)
        adopt_legacy_tables(session, schema, getattr(store, "legacy_state_schema", None))
        current = stored_version(session, schema)
        if current > schema.latest:
            raise SchemaError(
                f"the {schema.name} tables are at schema version {current}, newer than this pivotal understands "
                f"({schema.latest}); upgrade pivotal, or use a separate data directory / store schema for this version"
            )
        for step in schema.migrations[current:]:
            step.apply(session)
        if current != schema.latest or not _recorded(session, schema):
            session.execute(_VERSION_UPSERT, [schema.name, schema.latest, (clock or WallClock()).now_ms()])
    return schema.latest


def _recorded(session: SqlStore, schema: Schema) -> bool:
    return bool(session.query(f"SELECT 1 FROM {VERSIONS_TABLE} WHERE repository = ?", [schema.name]))
