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
        pytest.fail(f"real market data not found at {path}; set PIVOTAL_SHARED_DATA to the shared/data folder")
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
