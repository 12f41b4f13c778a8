"""A bounded schemathesis run against /openapi.json (with the token, so state-changing routes are exercised past
auth): no request the schema allows may answer 5xx."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from pivotal.api.app import create_app
from pivotal.api.hub import Hub
from pivotal.api.security import RateLimiter, Token
from pivotal.config import Settings, load_settings
from tests.api.conftest import AUTH, TOKEN

schemathesis = pytest.importorskip("schemathesis")


def _isolated_settings() -> Settings:
    """Settings of a throw-away data folder, never the user's config (the schema is built at import, before the
    autouse fixture runs)."""
    folder = Path(tempfile.mkdtemp(prefix="pivotal-fuzz-"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PIVOTAL_CONFIG", str(folder / "no-config.toml"))
        mp.setenv("PIVOTAL_DATA_DIR", str(folder / "data"))
        mp.delenv("PIVOTAL_STORE", raising=False)
        return load_settings()


APP = create_app(_isolated_settings(), Token(TOKEN), RateLimiter(1_000_000, 60.0), Hub(buffer=100))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_5xx(case: Any) -> None:
    response = case.call(headers=AUTH)
    assert response.status_code < 500, (case.method, case.path, response.text[:300])
