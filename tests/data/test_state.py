"""Application-state repositories and their versioned schemas, on both backends (PostgreSQL cases carry the
``postgres`` marker through the ``store`` fixture; the DuckDB cases are hermetic).

Legacy databases: the DDL below is what releases before versioning created (copied from those releases); a store
built with it must keep working and be recorded as schema version 1.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from pivotal.core.clock import SimulatedClock
from pivotal.data.state import configurations, jobs, model_outputs, pivots
from pivotal.data.state.configurations import ConfigurationRecords
from pivotal.data.state.jobs import JobRecords
from pivotal.data.state.migrations import Migration, Schema, SchemaError, migrate, statements, stored_version, table_exists
from pivotal.data.state.model_outputs import ModelOutputRepository, OutputRow
from pivotal.data.state.pivots import PivotRepository, PivotRow, StoredState
from pivotal.data.store import MarketStore

OLD_DDL = (
    # structure/tracker.py
    """CREATE TABLE IF NOT EXISTS pivots (
        exchange TEXT NOT NULL, symbol TEXT NOT NULL, timeframe TEXT NOT NULL, params_hash TEXT NOT NULL,
        level INTEGER NOT NULL, kind TEXT NOT NULL, bar_index BIGINT NOT NULL, ts BIGINT NOT NULL,
        price DOUBLE PRECISION NOT NULL, confirmed_at BIGINT NOT NULL, confirmed_ts BIGINT NOT NULL,
        PRIMARY KEY (exchange, symbol, timeframe, params_hash, level, kind, ts))""",
    """CREATE TABLE IF NOT EXISTS pivot_state (
        exchange TEXT NOT NULL, symbol TEXT NOT NULL, timeframe TEXT NOT NULL, params_hash TEXT NOT NULL,
        params TEXT NOT NULL, last_ts BIGINT NOT NULL, bars BIGINT NOT NULL, state TEXT NOT NULL, updated_ms BIGINT NOT NULL,
        PRIMARY KEY (exchange, symbol, timeframe, params_hash))""",
    # models/output_store.py
    "CREATE TABLE IF NOT EXISTS model_outputs ("
    "model_name TEXT NOT NULL, symbol TEXT NOT NULL, ts BIGINT NOT NULL, model_type TEXT NOT NULL, "
    "action TEXT NOT NULL, confidence DOUBLE PRECISION NOT NULL, payload TEXT NOT NULL, "
    "PRIMARY KEY (model_name, symbol, ts))",
    # optimize/configs.py
    """CREATE TABLE IF NOT EXISTS trained_configurations (
    id TEXT PRIMARY KEY, job_id TEXT, strategy TEXT NOT NULL, pair TEXT NOT NULL, exchange TEXT NOT NULL,
    timeframe TEXT NOT NULL, parameters TEXT NOT NULL, is_metrics TEXT NOT NULL, oos_metrics TEXT NOT NULL,
    significance TEXT NOT NULL, sample_size INTEGER NOT NULL, lifecycle_stage TEXT NOT NULL,
    created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)""",
    # optimize/jobs.py
    """CREATE TABLE IF NOT EXISTS training_jobs (
    id TEXT PRIMARY KEY, spec TEXT NOT NULL, status TEXT NOT NULL, progress DOUBLE PRECISION NOT NULL,
    created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, started_at BIGINT, finished_at BIGINT, error TEXT)""",
)
KEY = ("binance", "BTC/USDT", "1h")
SCHEMAS = (pivots.SCHEMA, model_outputs.SCHEMA, configurations.SCHEMA, jobs.SCHEMA)


def _config_row(config_id: str, **changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": config_id, "job_id": "job-1", "strategy": "liquidity_sweep", "pair": "BTC/USDT", "exchange": "binance",
        "timeframe": "1h", "parameters": '{"pierce": 0.001}', "is_metrics": "{}", "oos_metrics": "{}",
        "significance": "{}", "sample_size": 42, "lifecycle_stage": "VALIDATION", "created_at": 1, "updated_at": 2,
    }  # fmt: skip
    row.update(changes)
    return row


def test_fresh_store_gets_every_schema_at_its_latest_version(store: MarketStore) -> None:
    PivotRepository(store), ModelOutputRepository(store), ConfigurationRecords(store), JobRecords(store)
    versions = dict(store.query("SELECT repository, version FROM schema_versions ORDER BY repository"))
    assert versions == {"model_outputs": 1, "optimization_jobs": 2, "pivots": 1, "trained_configurations": 1}
    before = store.query("SELECT repository, updated_ms FROM schema_versions ORDER BY repository")
    for schema in SCHEMAS:  # migrating again changes nothing
        assert migrate(store, schema, SimulatedClock(10**13)) == schema.latest
    assert store.query("SELECT repository, updated_ms FROM schema_versions ORDER BY repository") == before


@contextmanager
def _as_an_old_release(store: MarketStore) -> Iterator[None]:
    """PostgreSQL: old releases kept state in the market schema; write there, then restore the store's search path."""
    market_schema = getattr(store, "legacy_state_schema", None)
    if market_schema is None:  # DuckDB: one file, nothing moves
        yield
        return
    store.execute(f'SET search_path TO "{market_schema}"')
    try:
        yield
    finally:
        store.execute(f'SET search_path TO "{store.state_schema}", "{market_schema}"')  # type: ignore[attr-defined]


def test_a_store_created_by_the_old_ddl_keeps_working(store: MarketStore) -> None:
    with _as_an_old_release(store):
        for statement in OLD_DDL:
            store.execute(statement)
        pivot = [*KEY, "h1", 1, "H", 5, 1000, 101.5, 7, 9000]
        store.execute("INSERT INTO pivots VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", pivot)
        store.execute("INSERT INTO pivot_state VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [*KEY, "h1", "{}", 1000, 8, '{"s":1}', 5])
        output = ["cnn", "BTC/USDT", 10, "cnn", "BUY", 0.7, "{}"]
        store.execute("INSERT INTO model_outputs VALUES (?, ?, ?, ?, ?, ?, ?)", output)
        store.execute(f"INSERT INTO trained_configurations VALUES ({', '.join('?' * 14)})", list(_config_row("c1").values()))
        job = ["j1", "{}", "PENDING", 0.0, 1, 1, None, None, None]
        store.execute("INSERT INTO training_jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", job)
        if not hasattr(store, "state_schema"):
            for schema in SCHEMAS:
                assert stored_version(store, schema) == 1  # unversioned tables of an earlier release = version 1
    repo = PivotRepository(store)
    assert repo.load_state(KEY, "h1") == StoredState(1000, 8, '{"s":1}')
    assert repo.pivots(KEY, "h1") == [PivotRow(1, "H", 5, 101.5, 7, 1000, 9000)]
    assert ModelOutputRepository(store).exists("cnn", "BTC/USDT", 10)
    assert ConfigurationRecords(store).get("c1") == _config_row("c1")
    assert JobRecords(store).get("j1") == dict(zip(jobs.COLUMNS, job, strict=True))  # renamed, rows kept
    assert _tables(store, "training_jobs", "optimization_jobs") == ["optimization_jobs"]
    versions = dict(store.query("SELECT repository, version FROM schema_versions"))
    assert versions == {"model_outputs": 1, "optimization_jobs": 2, "pivots": 1, "trained_configurations": 1}
    state_schema = getattr(store, "state_schema", None)
    if state_schema is not None:  # PostgreSQL: moved into the state schema, rows kept, nothing left beside the candles
        where = store.query(
            "SELECT DISTINCT table_schema FROM information_schema.tables WHERE table_schema IN (?, ?) AND table_name IN "
            "('pivots', 'pivot_state', 'model_outputs', 'trained_configurations', 'optimization_jobs', 'schema_versions')",
            [state_schema, store.legacy_state_schema],  # type: ignore[attr-defined]
        )
        assert where == [(state_schema,)]


def _tables(store: MarketStore, *names: str) -> list[str]:
    """Which of ``names`` exist in the store's current (state) schema."""
    return [n for n in names if table_exists(store, n)]


def test_jobs_recorded_at_version_1_are_renamed_with_their_rows(store: MarketStore) -> None:
    """A database that recorded ``optimization_jobs`` at version 1 (table ``training_jobs``) gets the rename."""
    migrate(store, Schema("optimization_jobs", jobs.SCHEMA.migrations[:1], jobs.SCHEMA.legacy_tables))
    store.execute(
        "INSERT INTO training_jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", ["j7", '{"a": 1}', "FAILED", 0.5, 1, 2, 1, 2, "boom"]
    )
    assert stored_version(store, jobs.SCHEMA) == 1
    repo = JobRecords(store)
    assert stored_version(store, jobs.SCHEMA) == 2
    assert _tables(store, "training_jobs", "optimization_jobs") == ["optimization_jobs"]
    assert repo.get("j7") == {
        "id": "j7", "spec": '{"a": 1}', "status": "FAILED", "progress": 0.5, "created_at": 1, "updated_at": 2,
        "started_at": 1, "finished_at": 2, "error": "boom",
    }  # fmt: skip
    assert [r["id"] for r in repo.list()] == repo.ids() == ["j7"]


def _schema(*steps: Callable[..., None]) -> Schema:
    return Schema("demo", tuple(Migration(i + 1, f"step {i + 1}", step) for i, step in enumerate(steps)))


def test_migrations_run_in_order_and_each_once(store: MarketStore) -> None:
    v1 = statements("CREATE TABLE demo (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    assert migrate(store, _schema(v1)) == 1
    store.execute("INSERT INTO demo VALUES (1, 'a')")
    v2 = statements("ALTER TABLE demo ADD COLUMN note TEXT", "UPDATE demo SET note = 'from v2'")
    assert migrate(store, _schema(v1, v2)) == 2  # v1 is not run again (CREATE TABLE without IF NOT EXISTS)
    assert migrate(store, _schema(v1, v2)) == 2
    assert store.query("SELECT id, name, note FROM demo") == [(1, "a", "from v2")]


def test_a_failing_migration_changes_nothing(store: MarketStore) -> None:
    v1 = statements("CREATE TABLE demo (id INTEGER PRIMARY KEY)")
    migrate(store, _schema(v1))
    broken = statements("CREATE TABLE demo_extra (id INTEGER)", "INSERT INTO no_such_table VALUES (1)")
    with pytest.raises(Exception, match="no_such_table"):
        migrate(store, _schema(v1, broken))
    assert store.query("SELECT version FROM schema_versions WHERE repository = 'demo'") == [(1,)]
    assert (
        store.query("SELECT 1 FROM information_schema.tables WHERE table_name = 'demo_extra' AND table_schema = current_schema()")
        == []
    )


def test_a_newer_database_is_refused(store: MarketStore) -> None:
    PivotRepository(store)
    store.execute("UPDATE schema_versions SET version = 7 WHERE repository = 'pivots'")
    with pytest.raises(SchemaError) as exc_info:
        PivotRepository(store)
    assert str(exc_info.value) == (
        "the pivots tables are at schema version 7, newer than this pivotal understands (1); upgrade pivotal, "
        "or use a separate data directory / store schema for this version"
    )


def test_schema_versions_must_be_numbered_in_order() -> None:
    with pytest.raises(ValueError, match=r"migrations must be numbered 1..n in order \(got \[2\]\)"):
        Schema("bad", (Migration(2, "two", statements()),))


def test_pivot_repository_round_trip(store: MarketStore) -> None:
    repo = PivotRepository(store)
    assert repo.load_state(KEY, "h") is None and repo.pivots(KEY, "h") == []
    rows = [PivotRow(1, "L", 3, 99.5, 5, 3000, 6000), PivotRow(1, "H", 2, 104.0, 5, 2000, 6000)]
    repo.save(KEY, "h", "{}", rows, StoredState(5000, 6, '{"x":1}'), 77, replace_state=False)
    repo.save(KEY, "h", "{}", rows[:1], StoredState(5000, 6, '{"x":1}'), 78, replace_state=True)  # replay: no-op rows
    assert repo.pivots(KEY, "h") == [rows[1], rows[0]]  # by (confirmed_at, level, bar_index, kind)
    repo.save(KEY, "h", "{}", [], StoredState(9000, 10, '{"x":2}'), 79, replace_state=True)
    assert repo.load_state(KEY, "h") == StoredState(9000, 10, '{"x":2}')
    assert repo.load_state(KEY, "other") is None
    assert store.query("SELECT updated_ms FROM pivot_state") == [(79,)]


def test_model_output_repository(store: MarketStore) -> None:
    repo = ModelOutputRepository(store)
    first = OutputRow("cnn", "BTC/USDT", 100, "cnn", "BUY", 0.6, json.dumps({"n": 1}))
    assert repo.add(first) and not repo.add(OutputRow("cnn", "BTC/USDT", 100, "cnn", "SELL", 0.9, "{}"))  # first wins
    repo.add(OutputRow("cnn", "BTC/USDT", 200, "cnn", "HOLD", 0.5, json.dumps({"n": 2})))
    repo.add(OutputRow("dqn", "BTC/USDT", 150, "dqn", "SELL", 0.8, json.dumps({"n": 3})))
    assert repo.models() == ["cnn", "dqn"]
    assert repo.last_payloads("BTC/USDT", 160) == ['{"n": 1}', '{"n": 3}']
    assert repo.payloads(model_name="cnn") == ['{"n": 1}', '{"n": 2}']
    assert repo.payloads(start=120, end=250, limit=1) == ['{"n": 2}']


def test_configuration_records(store: MarketStore) -> None:
    repo = ConfigurationRecords(store)
    repo.save(_config_row("b"))
    repo.save(_config_row("a", pair="ETH/USDT", job_id="job-2"))
    repo.save(_config_row("b", sample_size=120, lifecycle_stage="MATURE", created_at=999, updated_at=5))
    assert repo.get("b") == _config_row("b", sample_size=120, lifecycle_stage="MATURE", updated_at=5)  # created kept
    assert [r["id"] for r in repo.list()] == ["b", "a"]  # by exchange, pair, timeframe, id
    assert [r["id"] for r in repo.list(job_id="job-2")] == ["a"] and repo.get("zz") is None
    with pytest.raises(ValueError, match="lacks column"):
        repo.save({"id": "x"})


def test_job_records_lifecycle(store: MarketStore) -> None:
    repo = JobRecords(store)
    repo.create("j1", '{"a": 1}', 10)
    repo.create("j2", "{}", 11)
    repo.mark_running("j1", 20)
    repo.set_progress("j1", 1.7, 25)
    assert repo.get("j1") == {
        "id": "j1", "spec": '{"a": 1}', "status": "RUNNING", "progress": 1.0, "created_at": 10, "updated_at": 25,
        "started_at": 20, "finished_at": None, "error": None,
    }  # fmt: skip
    repo.finish("j1", 30)
    repo.finish("j2", 31, error="boom")
    assert (repo.get("j1")["status"], repo.get("j2")["status"], repo.get("j2")["error"]) == ("COMPLETED", "FAILED", "boom")  # type: ignore[index]
    assert repo.ids() == ["j1", "j2"]
