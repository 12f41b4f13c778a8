"""Open the store the settings name: the embedded DuckDB file (default) or PostgreSQL.

``open_store(settings, transient=True)`` gives a store that opens the backend for each call (or ``transaction()``)
and closes it right after: long jobs (``optimize``) hold the embedded file only for the moments they read or write,
so other commands can use it in between (docs/data.md "Concurrency").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pivotal.config import Settings
from pivotal.data.store import MarketStore


def open_store(settings: Settings | None = None, *, transient: bool = False) -> MarketStore:
    """``settings.store == 'duckdb'``: the file ``settings.duckdb_path`` (data dir created); ``'postgres'``: the
    schema ``settings.postgres_schema`` at ``settings.postgres_dsn``. ``transient``: see the module doc."""
    settings = settings or Settings()
    if transient and settings.store != "postgres":  # PostgreSQL has no file lock: one connection for the whole job
        return TransientStore(lambda: open_store(settings))
    if settings.store == "postgres":
        from pivotal.data.postgres_store import PostgresStore

        return PostgresStore(settings.postgres_dsn.get_secret_value(), settings.postgres_schema)
    from pivotal.data.duckdb_store import DuckDBStore

    settings.ensure_dirs()
    return DuckDBStore(settings.duckdb_path)


class TransientStore:
    """A ``MarketStore`` that opens the real one per call and closes it after (results are plain arrays and rows,
    valid after the close). ``transaction()`` holds it open for the block. Each open of DuckDB costs ~30 ms."""

    def __init__(self, opener: Callable[[], MarketStore]) -> None:
        self._opener = opener
        self._methods: dict[str, bool] = {}  # attribute name -> is a method (learnt on first access)

    def __repr__(self) -> str:
        return "TransientStore()"

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        store = self._opener()
        try:
            return getattr(store, name)(*args, **kwargs)
        finally:
            store.close()

    def __getattr__(self, name: str) -> Any:
        """Methods are wrapped (open, call, close); plain attributes (``legacy_state_schema``, …) are read from a
        store opened for the purpose, and a missing one raises ``AttributeError`` as on the store itself."""
        if name.startswith("_"):
            raise AttributeError(name)
        if self._methods.get(name):  # known method: open the store once, for the call itself
            return lambda *args, **kwargs: self._call(name, *args, **kwargs)
        store = self._opener()
        try:
            value = getattr(store, name)
        finally:
            store.close()
        self._methods[name] = callable(value)
        if callable(value):
            return lambda *args, **kwargs: self._call(name, *args, **kwargs)
        return value

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        store = self._opener()
        try:
            with store.transaction() as tx:  # type: ignore[attr-defined]
                yield tx
        finally:
            store.close()

    def close(self) -> None:
        """Nothing is held between calls."""
