"""The security model: a token on every state-changing route (found by enumerating the app's routes, so a new route
without it fails here), the bind rule, the rate limit, no CORS by default, the token never shown."""

from __future__ import annotations

import logging
import re

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from pivotal.api.app import create_app
from pivotal.api.security import STATE_CHANGING, RateLimiter, Token, check_bind, is_loopback
from pivotal.cli.main import app as cli
from pivotal.config import Settings
from pivotal.core.errors import UserInputError
from tests.api.conftest import AUTH, TOKEN


def _state_changing(client: TestClient) -> list[tuple[str, str]]:
    routes = [r for r in client.app.routes if isinstance(r, APIRoute)]  # type: ignore[attr-defined]
    return [(m, re.sub(r"\{[^}]+\}", "x", r.path)) for r in routes for m in sorted((r.methods or set()) & STATE_CHANGING)]


def test_every_state_changing_route_needs_the_token(client: TestClient) -> None:
    found = _state_changing(client)
    assert len(found) >= 5  # POST/PATCH/DELETE annotations, POST jobs, POST events: the enumeration sees them
    for method, path in found:
        for headers in ({}, {"Authorization": "Bearer wrong-token-000000000"}, {"Authorization": TOKEN}):
            r = client.request(method, path, json={}, headers=headers)
            assert r.status_code == 401, (method, path, headers, r.text)
            assert r.json()["error"]["code"] == "unauthorized"
            assert r.headers["WWW-Authenticate"] == "Bearer"
            assert TOKEN not in r.text


def test_with_the_token_a_state_changing_route_runs(client: TestClient) -> None:
    r = client.post("/api/events", json={"type": "pivot", "payload": {"label": "L1H"}}, headers=AUTH)
    assert r.status_code == 202 and r.json() == {"seq": 1}


def test_reads_need_no_token(client: TestClient) -> None:
    assert client.get("/api/series").json() == []
    assert client.get("/api/health").json() == {"success": True, "ws_clients": 0, "last_seq": 0}


def test_the_token_hides_in_repr_and_logs(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    token = Token(TOKEN)
    assert TOKEN not in repr(token) and TOKEN not in str(token) and TOKEN not in f"{token}"
    app = create_app(settings, token)
    assert TOKEN not in repr(app.state.token) and TOKEN not in repr(vars(app.state))
    caplog.set_level(logging.DEBUG)
    with TestClient(app, raise_server_exceptions=False) as c:
        c.post("/api/events", json={"type": "x"}, headers=AUTH)
    assert TOKEN not in caplog.text
    with pytest.raises(UserInputError, match="too short"):
        Token("short")


def test_generated_tokens_are_long_and_differ() -> None:
    a, b = Token.generate(), Token.generate()
    assert a.generated and len(a.reveal()) >= 40 and a.reveal() != b.reveal()


def test_bind_rule() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.org")
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", Token(TOKEN))
    with pytest.raises(UserInputError, match=r"^refusing to bind 0\.0\.0\.0: .* set PIVOTAL_API_TOKEN"):
        check_bind("0.0.0.0", None)


def test_serve_refuses_a_public_address_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIVOTAL_API_TOKEN", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"], env={"COLUMNS": "300"})
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: refusing to bind 0.0.0.0"), result.output


def test_rate_limit_answers_429_with_retry_after(settings: Settings) -> None:
    now = [1000.0]
    app = create_app(settings, Token(TOKEN), RateLimiter(2, 60.0, clock=lambda: now[0]))
    with TestClient(app) as c:
        for _ in range(2):
            assert c.post("/api/events", json={"type": "fill"}, headers=AUTH).status_code == 202
        r = c.post("/api/events", json={"type": "fill"}, headers=AUTH)
        assert r.status_code == 429 and r.headers["Retry-After"] == "60"
        assert r.json()["error"]["code"] == "rate_limited" and r.json()["error"]["details"] == {"retry_after_s": 60}
        assert c.post("/api/events", json={"type": "fill"}).status_code == 429  # unauthenticated attempts count too
        assert c.get("/api/series").status_code == 200  # reads are not limited
        now[0] += 45.0
        assert c.post("/api/events", json={"type": "fill"}, headers=AUTH).headers["Retry-After"] == "15"
        now[0] += 15.0
        assert c.post("/api/events", json={"type": "fill"}, headers=AUTH).status_code == 202


def test_cors_is_off_by_default_and_on_for_named_origins(settings: Settings, client: TestClient) -> None:
    origin = {"Origin": "https://evil.example"}
    assert "access-control-allow-origin" not in client.get("/api/series", headers=origin).headers
    app = create_app(settings, Token(TOKEN), cors_origins=["http://localhost:3000"])
    with TestClient(app) as c:
        r = c.get("/api/series", headers={"Origin": "http://localhost:3000"})
        assert r.headers["access-control-allow-origin"] == "http://localhost:3000"
        assert "access-control-allow-origin" not in c.get("/api/series", headers=origin).headers


def test_serve_prints_a_generated_token_once_and_never_an_env_token(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    seen: list[tuple[str, int]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **kw: seen.append((host, port)))
    monkeypatch.delenv("PIVOTAL_API_TOKEN", raising=False)
    out = CliRunner().invoke(cli, ["serve", "--port", "9999"], env={"COLUMNS": "300"}).output
    [line] = [x for x in out.splitlines() if x.startswith("token for state-changing requests (shown once): ")]
    assert len(line.rsplit(" ", 1)[1]) >= 40 and seen == [("127.0.0.1", 9999)]
    monkeypatch.setenv("PIVOTAL_API_TOKEN", TOKEN)
    out = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"], env={"COLUMNS": "300"}).output
    assert TOKEN not in out and "token for state-changing requests: PIVOTAL_API_TOKEN" in out
    assert seen[-1] == ("0.0.0.0", 8765)
