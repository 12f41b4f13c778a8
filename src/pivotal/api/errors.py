"""One error format for every error the API returns:
``{"success": false, "error": {"code", "message", "details", "timestamp", "suggestions"}}``.

Our ``PivotalError``s keep their one-line message (it names the field and the fix); anything else is a bug and
answers 500 with a fixed message: no traceback, no exception text (it could hold a path or a secret).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pivotal.core.errors import DataNotFound, PivotalError, StoreBusy, StoreUnavailable

log = logging.getLogger("pivotal.api")

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
          409: "conflict", 413: "too_large", 415: "unsupported_media_type", 422: "validation_error",
          429: "rate_limited", 500: "internal_error", 503: "unavailable"}  # fmt: skip


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def error_body(status: int, message: str, details: Any = None, suggestions: list[str] | None = None) -> dict[str, Any]:
    return {
        "success": False,
        "error": {
            "code": _CODES.get(status, f"http_{status}"),
            "message": message,
            "details": details,
            "timestamp": now_iso(),
            "suggestions": suggestions or [],
        },
    }


def error_response(
    status: int, message: str, details: Any = None, suggestions: list[str] | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(status, message, details, suggestions), status_code=status, headers=headers)


def _status_of(exc: PivotalError) -> int:
    if isinstance(exc, DataNotFound | LookupError):
        return 404
    if isinstance(exc, StoreBusy | StoreUnavailable):
        return 503
    return 400  # UserInputError and the rest: the request named something that cannot be done


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the one format."""

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else _CODES.get(exc.status_code, "error")
        if exc.status_code == 404 and exc.detail == "Not Found":
            message = f"no route {request.method} {request.url.path}; see /openapi.json for the routes"
        return error_response(exc.status_code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        first = details[0] if details else {"field": "request", "message": "invalid"}
        return error_response(422, f"{first['field']}: {first['message']}", details, ["see /openapi.json for the request schema"])

    @app.exception_handler(PivotalError)
    async def _ours(request: Request, exc: PivotalError) -> JSONResponse:
        return error_response(_status_of(exc), str(exc))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s %s: %s", request.method, request.url.path, type(exc).__name__)
        return error_response(500, "internal error; the server log names the failing route", None, ["report it as a bug"])
