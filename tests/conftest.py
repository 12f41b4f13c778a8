"""Shared fixtures: the real market data beside the repo, and throw-away stores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
