"""Candle downloads through ccxt: paginated, rate-limited, retried with backoff, resumable, closed bars only.

Every page is one atomic store write, so an interrupted download keeps whole pages and the next run resumes from
``store.last_ts() + timeframe``. Public candles need no API key; none is ever passed or logged here.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import ccxt
import numpy as np

from pivotal.data.alignment import timeframe_origin
from pivotal.data.candles import Candles
from pivotal.data.store import MarketStore
from pivotal.core.timeframes import timeframe_ms

log = logging.getLogger(__name__)
T = TypeVar("T")

PAGE_LIMIT = 1000
# OperationFailed is ccxt's base of the transient errors: NetworkError, DDoSProtection, RateLimitExceeded,
# ExchangeNotAvailable, RequestTimeout (and Binance's -1001 "internal error"). ExchangeError (bad symbol,
# bad request, auth) is permanent and surfaces at once.
RETRYABLE: tuple[type[Exception], ...] = (ccxt.OperationFailed,)


class DownloadError(RuntimeError):
    """A download stopped: a permanent exchange error, or a transient one that outlasted the retry budget."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: delay_n = min(max_delay, base * 2**n) * (1 + jitter * U[0, 1))."""

    attempts: int = 6
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    jitter: float = 0.5

    def delay(self, retry: int, rng: random.Random) -> float:
        return min(self.max_delay_s, self.base_delay_s * 2**retry) * (1 + self.jitter * rng.random())


@dataclass(frozen=True)
class PageEvent:
    """Reported after each stored page: the series, its requested span and how far it got."""

    exchange: str
    symbol: str
    timeframe: str
    start: int
    end: int
    cursor: int  # open time of the next bar to fetch
    page_rows: int
    series_rows: int


@dataclass(frozen=True)
class SeriesResult:
    exchange: str
    symbol: str
    timeframe: str
    resumed_from: int
    rows_written: int
    pages: int
    retries: int


Progress = Callable[[PageEvent], None]


def make_client(exchange_id: str) -> ccxt.Exchange:
    """A public (key-less) ccxt client with ccxt's own rate limiter on."""
    if exchange_id not in ccxt.exchanges:
        raise ValueError(f"unknown exchange {exchange_id!r}: not a ccxt exchange id (e.g. binance, coinbase, bybit)")
    return getattr(ccxt, exchange_id)({"enableRateLimit": True})


def download_candles(
    store: MarketStore,
    exchange_id: str,
    symbols: Sequence[str],
    timeframes: Sequence[str],
    since: int,
    until: int | None = None,
    *,
    client: ccxt.Exchange | None = None,
    progress: Progress | None = None,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[SeriesResult]:
    """Download closed candles with open time in [since, until) (until defaults to now) for every symbol x timeframe."""
    client = client or make_client(exchange_id)
    fetcher = _Fetcher(client, retry or RetryPolicy(), sleep)
    fetcher.call(client.load_markets)
    _check_request(client, exchange_id, symbols, timeframes)
    results = []
    for symbol in symbols:
        for tf in timeframes:
            results.append(_download_series(store, fetcher, exchange_id, symbol, tf, since, until, progress))
    return results


def _check_request(client: ccxt.Exchange, exchange_id: str, symbols: Sequence[str], timeframes: Sequence[str]) -> None:
    for tf in timeframes:
        timeframe_ms(tf)
        if tf not in (client.timeframes or {}):
            offered = " ".join(client.timeframes or {}) or "none"
            raise ValueError(f"{exchange_id} has no {tf} candles; it offers: {offered}")
    unknown = [s for s in symbols if s not in client.markets]
    if unknown:
        raise ValueError(f"{exchange_id} has no market {', '.join(unknown)}; use ccxt unified symbols such as BTC/USDT")


def _download_series(
    store: MarketStore,
    fetcher: _Fetcher,
    exchange_id: str,
    symbol: str,
    tf: str,
    since: int,
    until: int | None,
    progress: Progress | None,
) -> SeriesResult:
    step = timeframe_ms(tf)
    now = fetcher.server_time()
    end = now if until is None else min(until, now)
    cursor = _resume_point(store, exchange_id, symbol, tf, since, step)
    resumed_from, written, pages, retries_before = cursor, 0, 0, fetcher.retries
    while cursor < end:
        page = fetcher.call(fetcher.client.fetch_ohlcv, symbol, tf, since=cursor, limit=PAGE_LIMIT, params={"until": end - 1})
        candles = _closed_bars(page, cursor, end, now, step, exchange_id, symbol, tf)
        if len(candles) == 0:
            break
        written += store.write_candles(candles, source=f"{exchange_id} fetch_ohlcv {symbol} {tf} since {cursor}")
        pages += 1
        cursor = int(candles.ts[-1]) + step
        if progress is not None:
            progress(PageEvent(exchange_id, symbol, tf, resumed_from, end, cursor, len(candles), written))
    return SeriesResult(exchange_id, symbol, tf, resumed_from, written, pages, fetcher.retries - retries_before)


def _resume_point(store: MarketStore, exchange_id: str, symbol: str, tf: str, since: int, step: int) -> int:
    """First bar to fetch: ``since`` rounded up to the timeframe grid, or just after the newest stored bar."""
    origin = timeframe_origin(tf)  # weekly bars open on Mondays, not on the epoch's Thursday
    start = origin - (origin - since) // step * step
    last = store.last_ts(exchange_id, symbol, tf)
    if last is not None and last + step > start:
        return last + step
    return start


def _closed_bars(
    page: list[list[Any]], cursor: int, end: int, now: int, step: int, exchange: str, symbol: str, tf: str
) -> Candles:
    """Bars of one page inside [cursor, end) that had closed by ``now`` (the still-open last bar is dropped)."""
    if not page:
        return Candles.empty(exchange, symbol, tf)
    rows = np.array([[np.nan if v is None else v for v in row[:6]] for row in page], dtype=np.float64)
    ts = rows[:, 0].astype(np.int64)
    keep = (ts >= cursor) & (ts < end) & (ts + step <= now)
    r = rows[keep]
    return Candles(ts[keep], r[:, 1].copy(), r[:, 2].copy(), r[:, 3].copy(), r[:, 4].copy(), r[:, 5].copy(), exchange, symbol, tf)


class _Fetcher:
    """Calls the exchange, retrying transient failures with backoff; honours a Retry-After header when present."""

    def __init__(self, client: ccxt.Exchange, policy: RetryPolicy, sleep: Callable[[float], None]):
        self.client = client
        self.policy = policy
        self.sleep = sleep
        self.retries = 0
        self.rng = random.Random()

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        for attempt in range(self.policy.attempts):
            try:
                return fn(*args, **kwargs)
            except RETRYABLE as exc:
                if attempt + 1 == self.policy.attempts:
                    raise DownloadError(
                        f"{self.client.id}: gave up after {self.policy.attempts} attempts: {type(exc).__name__}: {exc}"
                    ) from exc
                delay = self.policy.delay(attempt, self.rng)
                if isinstance(exc, ccxt.DDoSProtection):  # 429/418: the exchange may say how long to wait
                    delay = max(delay, self._retry_after())
                log.warning("%s: %s, retry %d in %.2fs", self.client.id, type(exc).__name__, attempt + 1, delay)
                self.retries += 1
                self.sleep(delay)
            except ccxt.BaseError as exc:
                raise DownloadError(f"{self.client.id}: permanent error, not retried: {type(exc).__name__}: {exc}") from exc
        raise AssertionError("unreachable")

    def _retry_after(self) -> float:
        headers = self.client.last_response_headers or {}
        value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
        try:
            return float(value) if value is not None else 0.0
        except ValueError:
            return 0.0

    def server_time(self) -> int:
        """The exchange clock decides which bar is still open; fall back to ours where it has no time endpoint."""
        if self.client.has.get("fetchTime"):
            return int(self.call(self.client.fetch_time))
        return int(self.client.milliseconds())
