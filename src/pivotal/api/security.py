"""The security model of ``pivotal serve``: loopback by default, a bearer token for every state-changing request,
a per-client rate limit on them, no CORS unless asked for.

The token comes from ``PIVOTAL_API_TOKEN`` or is generated at start and printed once. It is held in a ``Token`` whose
repr hides it, compared in constant time, and never logged or echoed in an error. The check is a middleware over
every POST/PUT/PATCH/DELETE, so a route added later cannot forget it.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable

from fastapi import Request, Response

from pivotal.api.errors import error_response
from pivotal.core.errors import UserInputError

TOKEN_ENV = "PIVOTAL_API_TOKEN"
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Token:
    """A bearer token; ``repr``/``str`` never show it."""

    __slots__ = ("_value", "generated")

    def __init__(self, value: str, generated: bool = False) -> None:
        if len(value) < 16:
            raise UserInputError(f"{TOKEN_ENV} is too short ({len(value)} characters); use at least 16 random characters")
        self._value = value
        self.generated = generated

    @classmethod
    def from_env(cls) -> Token | None:
        value = os.environ.get(TOKEN_ENV, "").strip()
        return cls(value) if value else None

    @classmethod
    def generate(cls) -> Token:
        return cls(secrets.token_urlsafe(32), generated=True)

    def matches(self, presented: str) -> bool:
        return hmac.compare_digest(self._value.encode(), presented.encode())

    def reveal(self) -> str:
        """The value, for the one line printed at start (and tests)."""
        return self._value

    def __repr__(self) -> str:
        return "Token(***)"

    __str__ = __repr__


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token_from_env: Token | None) -> None:
    """Refuse a non-loopback address unless the token was set in the environment (a generated token printed to one
    terminal must not be all that guards a server others can reach)."""
    if not is_loopback(host) and token_from_env is None:
        raise UserInputError(
            f"refusing to bind {host}: it is reachable from other machines; set {TOKEN_ENV} to a long random secret "
            "first, or bind 127.0.0.1"
        )


class RateLimiter:
    """At most ``limit`` state-changing requests per ``window_s`` per client (sliding window)."""

    def __init__(self, limit: int = 60, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int:
        """0 when the request may go (it is counted), else the whole seconds to wait."""
        now = self.clock()
        with self._lock:
            hits = self._hits.setdefault(client, deque())
            while hits and hits[0] <= now - self.window_s:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(1, math.ceil(hits[0] + self.window_s - now))
            hits.append(now)
            return 0


def guard(
    token: Token, limiter: RateLimiter
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    """The middleware: rate limit, then token, for every state-changing request; reads pass untouched."""

    async def middleware(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.method not in STATE_CHANGING:
            return await call_next(request)
        client = request.client.host if request.client else "unknown"
        wait = limiter.retry_after(client)
        if wait:
            return error_response(
                429, f"too many state-changing requests; retry in {wait} s", {"retry_after_s": wait},
                ["slow down; reads are not limited"], headers={"Retry-After": str(wait)},
            )  # fmt: skip
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented or not token.matches(presented.strip()):
            return error_response(
                401, "a bearer token is required for this request", None,
                [f"send 'Authorization: Bearer <token>' with the token printed by `pivotal serve` or set in {TOKEN_ENV}"],
                headers={"WWW-Authenticate": "Bearer"},
            )  # fmt: skip
        return await call_next(request)

    return middleware
