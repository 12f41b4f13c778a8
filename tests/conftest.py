"""Shared fixtures: the real market data beside the repo, and throw-away stores."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pivotal.data.store import MarketStore
from tests.stores import BACKENDS, throwaway_store

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    return Path(os.environ.get("PIVOTAL_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real exchange data). Tests that claim market behaviour read it from here."""
    path = shared_data_dir()
    if not (path / "PROVENANCE.md").exists():
        message = f"real market data not found at {path}; set PIVOTAL_SHARED_DATA to the shared/data folder"
        if os.environ.get("PIVOTAL_REQUIRE_SHARED_DATA"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the user's config or writes to the user's data dir."""
    monkeypatch.setenv("PIVOTAL_DATA_DIR", str(tmp_path / "pivotal-data"))
    monkeypatch.setenv("PIVOTAL_CONFIG", str(tmp_path / "no-config.toml"))


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MarketStore]:
    """An empty store on each backend in turn (DuckDB file; PostgreSQL in a throw-away schema)."""
    with throwaway_store(request.param, tmp_path) as market_store:
        yield market_store


# --- markers -------------------------------------------------------------------------------------------------------
# Every test gets exactly one of: ``realdata`` (reads ../shared/data), ``postgres`` (needs the server), ``ray``, or
# ``unit`` (hermetic). Markers are derived from what a test uses, so a new test cannot forget them:
# - ``shared_data`` among its fixtures, or a module-level ``pytestmark = pytest.mark.realdata`` → realdata;
# - the postgres parameter of the ``store`` fixture, or an explicit mark → postgres.
# ``pytest -m unit`` therefore runs on a bare clone. Without a PostgreSQL server the postgres tests are skipped with
# the reason, unless ``PIVOTAL_REQUIRE_POSTGRES=1`` (CI sets it), where they fail instead.

_NON_UNIT = ("realdata", "postgres", "ray", "browser", "redis")
REDIS_URL = os.environ.get("PIVOTAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _postgres_reachable() -> str | None:
    """None when the test server answers; otherwise why not."""
    import psycopg

    from tests.stores import POSTGRES_DSN

    try:
        with psycopg.connect(POSTGRES_DSN, connect_timeout=3):
            return None
    except Exception as exc:  # any failure to connect means "no server here"
        where = POSTGRES_DSN.split("@")[-1]
        return f"PostgreSQL at {where} not reachable ({type(exc).__name__}); start it or set PIVOTAL_TEST_POSTGRES_DSN"


def _redis_reachable() -> str | None:
    """None when the Redis test server answers; otherwise why not (``redis`` marker: skipped unless
    ``PIVOTAL_REQUIRE_REDIS=1``, like PostgreSQL)."""
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
        return None
    except Exception as exc:  # no package or no server: "no Redis here"
        return f"Redis at {REDIS_URL.split('@')[-1]} not reachable ({type(exc).__name__}); start it or set PIVOTAL_TEST_REDIS_URL"


BROWSER_TESTS = REPO / "tests" / "browser"  # every test under it is ``browser``
CHROMIUM = os.environ.get("PIVOTAL_CHROMIUM", "/usr/bin/chromium")


def _browser_available() -> str | None:
    """None when Playwright and Debian's Chromium are installed; otherwise why not (``browser`` marker: skipped
    unless ``PIVOTAL_REQUIRE_BROWSER=1``, like PostgreSQL)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python not installed (pip install -e '.[dev]')"
    if not os.access(CHROMIUM, os.X_OK):
        return f"Chromium not found at {CHROMIUM}; apt-get install chromium or set PIVOTAL_CHROMIUM"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    browser_reason: str | None = None
    browser_checked = False
    pg_reason: str | None = None
    pg_checked = False
    redis_reason: str | None = None
    redis_checked = False
    for item in items:
        if "shared_data" in getattr(item, "fixturenames", ()) and not item.get_closest_marker("realdata"):
            item.add_marker(pytest.mark.realdata)
        if BROWSER_TESTS in item.path.parents and not item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.browser)
        if item.get_closest_marker("browser"):
            if not browser_checked:
                browser_reason, browser_checked = _browser_available(), True
            if browser_reason and not os.environ.get("PIVOTAL_REQUIRE_BROWSER"):
                item.add_marker(pytest.mark.skip(reason=browser_reason))
        if not any(item.get_closest_marker(m) for m in _NON_UNIT):
            item.add_marker(pytest.mark.unit)
        if item.get_closest_marker("postgres"):
            if not pg_checked:
                pg_reason, pg_checked = _postgres_reachable(), True
            if pg_reason and not os.environ.get("PIVOTAL_REQUIRE_POSTGRES"):
                item.add_marker(pytest.mark.skip(reason=pg_reason))
        if item.get_closest_marker("redis"):
            if not redis_checked:
                redis_reason, redis_checked = _redis_reachable(), True
            if redis_reason and not os.environ.get("PIVOTAL_REQUIRE_REDIS"):
                item.add_marker(pytest.mark.skip(reason=redis_reason))
