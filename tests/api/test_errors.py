"""Every error has the one format ``{success: false, error: {code, message, details, timestamp, suggestions}}``."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pivotal.core.errors import UserInputError
from pivotal.data.loaders import check_range
from pivotal.services import data

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def _without_time(body: dict[str, Any]) -> dict[str, Any]:
    assert ISO.match(body["error"]["timestamp"]), body
    return {**body, "error": {k: v for k, v in body["error"].items() if k != "timestamp"}}


def test_unknown_route_is_404_in_the_format(client: TestClient) -> None:
    r = client.get("/api/nope")
    assert r.status_code == 404
    assert _without_time(r.json()) == {
        "success": False,
        "error": {"code": "not_found", "message": "no route GET /api/nope; see /openapi.json for the routes", "details": None,
                  "suggestions": []},
    }  # fmt: skip


def test_validation_error_is_422_naming_the_field(client: TestClient) -> None:
    r = client.get("/api/candles", params={"exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1h", "limit": 0})
    assert r.status_code == 422
    assert _without_time(r.json()) == {
        "success": False,
        "error": {
            "code": "validation_error",
            "message": "query.limit: Input should be greater than or equal to 1",
            "details": [
                {"field": "query.limit", "message": "Input should be greater than or equal to 1", "type": "greater_than_equal"}
            ],
            "suggestions": ["see /openapi.json for the request schema"],
        },
    }


def test_user_input_error_is_400_with_its_one_line(client: TestClient) -> None:
    r = client.get("/api/candles", params={"exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1h", "start": 10, "end": 5})
    assert r.status_code == 400
    body = _without_time(r.json())
    assert body["error"]["code"] == "bad_request" and body["error"]["message"] == check_range_message(10, 5)
    assert body["error"]["details"] is None and body["error"]["suggestions"] == []


def check_range_message(start: int, end: int) -> str:
    try:
        check_range(start, end)
    except UserInputError as exc:
        return str(exc)
    raise AssertionError("check_range accepted an empty range")


def test_bad_timeframe_is_422_listing_the_names(client: TestClient) -> None:
    r = client.get("/api/candles", params={"exchange": "binance", "symbol": "BTC/USDT", "timeframe": "7x"})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "query.timeframe"
    assert "1s|1m" in r.json()["error"]["message"]


def test_missing_data_is_404_in_the_format(client: TestClient) -> None:
    r = client.get("/api/candles", params={"exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1h"})
    assert r.status_code == 404
    assert _without_time(r.json())["error"] == {
        "code": "not_found",
        "message": "no 1h candles of binance BTC/USDT stored in that range; see GET /api/series",
        "details": None,
        "suggestions": [],
    }


def test_a_bug_is_500_without_traceback_or_exception_text(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(settings: object) -> list[object]:
        raise RuntimeError("password=hunter2 at /home/user/secret")  # pragma: allowlist secret

    monkeypatch.setattr(data, "series", broken)
    r = client.get("/api/series")
    assert r.status_code == 500
    assert "hunter2" not in r.text and "Traceback" not in r.text and "RuntimeError" not in r.text
    assert _without_time(r.json())["error"] == {
        "code": "internal_error",
        "message": "internal error; the server log names the failing route",
        "details": None,
        "suggestions": ["report it as a bug"],
    }


def test_openapi_schema_is_served_and_lists_the_routes(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert {"/api/candles", "/api/pivots", "/api/annotations", "/api/jobs/backtest", "/api/models/{name}"} <= set(schema["paths"])
    assert client.get("/docs").status_code == 404  # the Swagger page loads a CDN script: not served
