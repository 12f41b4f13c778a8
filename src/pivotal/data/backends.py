"""Open the store the settings name: the embedded DuckDB file (default) or PostgreSQL."""

from __future__ import annotations

from pivotal.config import Settings
from pivotal.data.store import MarketStore


def open_store(settings: Settings | None = None) -> MarketStore:
    """``settings.store == 'duckdb'``: the file ``settings.duckdb_path`` (data dir created); ``'postgres'``: the
    schema ``settings.postgres_schema`` at ``settings.postgres_dsn``."""
    settings = settings or Settings()
    if settings.store == "postgres":
        from pivotal.data.postgres_store import PostgresStore

        return PostgresStore(settings.postgres_dsn.get_secret_value(), settings.postgres_schema)
    from pivotal.data.duckdb_store import DuckDBStore

    settings.ensure_dirs()
    return DuckDBStore(settings.duckdb_path)
