"""Candle downloads through ccxt: paginated, rate-limited, retried with backoff, resumable, closed bars only.

Every page is one atomic store write, so an interrupted download keeps whole pages and the next run resumes from
``store.last_ts() + timeframe``. Public candles need no API key; none is ever passed or logged here.

An empty or unparsable answer where closed bars should exist is a fault, not the end of the data: it is retried like
one and, if it persists, the unfilled span goes into the download ledger (``unfilled_spans``) and the download stops
with an error. A bad bar (high < low, a non-positive price, off the grid, a conflicting duplicate) never reaches the
candle table: it is kept in the quarantine (``quarantined``) with the reason and the rest of its page is stored.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import ccxt
import numpy as np

from pivotal.core.timeframes import timeframe_ms
from pivotal.data.alignment import is_aligned, timeframe_origin
from pivotal.data.candles import Candles
from pivotal.data.store import MarketStore
from pivotal.data.validation import ValidationError, sane_time_range, validate_candles

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
    quarantined: int = 0  # bad bars kept in the quarantine, never stored as candles


@dataclass(frozen=True)
class QuarantinedBar:
    """A bar an exchange sent that failed validation: kept verbatim (as ccxt parsed it) with the reason."""

    exchange: str
    symbol: str
    timeframe: str
    ts: int | None
    raw: str
    reason: str
    recorded_at: int


@dataclass(frozen=True)
class UnfilledSpan:
    """Bars in [start, end) that the exchange did not deliver (empty or unparsable answers that persisted)."""

    exchange: str
    symbol: str
    timeframe: str
    start: int
    end: int
    reason: str
    recorded_at: int


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
    fetcher.call(client.load_markets, check=lambda markets: None if markets else "the market list came back empty")
    ensure_ledger(store)
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
    resumed_from, written, pages, n_bad, retries_before = cursor, 0, 0, 0, fetcher.retries
    labels = (exchange_id, symbol, tf)
    while cursor < end:
        try:
            page = _fetch_page(fetcher, labels, cursor, end, now, step)
        except _Unfilled as exc:
            record_unfilled(store, UnfilledSpan(*labels, cursor, end, exc.reason, int(time.time() * 1000)))
            raise DownloadError(
                f"{exchange_id} {symbol} {tf}: no bars from {_utc(cursor)} to {_utc(end)} after {exc.attempts} attempts "
                f"({exc.reason}); {written} rows were stored, the missing span is recorded in the download ledger; "
                "fix: run the same command again later (it resumes there)"
            ) from None
        if page is None:
            break
        if page.bad:
            n_bad += quarantine(store, page.bad)
        if len(page.candles):
            written += store.write_candles(page.candles, source=f"{exchange_id} fetch_ohlcv {symbol} {tf} since {cursor}")
        pages += 1
        cursor = page.last_ts + step
        if progress is not None:
            progress(PageEvent(exchange_id, symbol, tf, resumed_from, end, cursor, len(page.candles), written))
    clear_unfilled(store, *labels, resumed_from, end)  # got through to `end` without a persistent fault
    return SeriesResult(exchange_id, symbol, tf, resumed_from, written, pages, fetcher.retries - retries_before, n_bad)


def _utc(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ms / 1000)) + " UTC"


def _resume_point(store: MarketStore, exchange_id: str, symbol: str, tf: str, since: int, step: int) -> int:
    """First bar to fetch: ``since`` rounded up to the timeframe grid, or just after the newest stored bar."""
    origin = timeframe_origin(tf)  # weekly bars open on Mondays, not on the epoch's Thursday
    start = origin - (origin - since) // step * step
    last = store.last_ts(exchange_id, symbol, tf)
    if last is not None and last + step > start:
        return last + step
    return start


class _Unfilled(Exception):
    def __init__(self, reason: str, attempts: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts


@dataclass(frozen=True)
class _Page:
    candles: Candles  # the good closed bars inside [cursor, end)
    bad: list[QuarantinedBar]
    last_ts: int  # newest open time seen inside [cursor, end), good or quarantined: where the next page starts


def _fetch_page(fetcher: _Fetcher, labels: tuple[str, str, str], cursor: int, end: int, now: int, step: int) -> _Page | None:
    """The next page of closed bars, or None at a normal end of the data.

    An empty (or unparsable) page while closed bars can still exist is retried with the fetcher's backoff. Before
    each retry one bar is probed without the upper bound: if the exchange's next bar opens at or after ``end`` (or is
    still open), the span up to ``end`` is a real hole in the exchange's data and the download ends normally; so does
    a market the exchange lists as not trading (halted, delisted) when nothing follows. A trading market always has
    at least its still-open bar, so nothing at all up to ``now`` is a fault.
    """
    client, (exchange, symbol, tf) = fetcher.client, labels
    reason = "empty page"
    for attempt in range(fetcher.policy.attempts):
        raw = fetcher.call(client.fetch_ohlcv, symbol, tf, since=cursor, limit=PAGE_LIMIT, params={"until": end - 1})
        page = _parse_page(raw, cursor, end, now, step, labels)
        if page is not None:
            return page
        if cursor + step > now:  # only the still-open bar could follow
            return None
        probe = fetcher.call(client.fetch_ohlcv, symbol, tf, since=cursor, limit=1)
        first = _first_ts(probe)
        if first is not None and (first >= end or first + step > now):
            return None
        if first is None and _halted(client, symbol):  # a market that stopped trading has no bars up to now
            return None
        reason = _empty_reason(client)
        if attempt + 1 < fetcher.policy.attempts:
            fetcher.backoff(attempt, f"{exchange} {symbol} {tf}: {reason} at {_utc(cursor)}")
    raise _Unfilled(reason, fetcher.policy.attempts)


def _halted(client: ccxt.Exchange, symbol: str) -> bool:
    """ccxt marks a market inactive when the exchange lists it as not trading (Binance status BREAK, delisted)."""
    return (client.markets or {}).get(symbol, {}).get("active") is False


def _first_ts(rows: object) -> int | None:
    try:
        return int(rows[0][0])  # type: ignore[index]
    except (TypeError, ValueError, IndexError, KeyError):
        return None


def _empty_reason(client: ccxt.Exchange) -> str:
    """Name what came back: a JSON empty list, or a body that is not JSON (an HTML maintenance page behind a 200)."""
    body = (getattr(client, "last_http_response", None) or "").strip()
    try:
        json.loads(body)
    except ValueError:
        snippet = " ".join(body.split())[:60]
        return f"unparsable answer (not JSON): {snippet!r}"
    return "empty page"


def _parse_page(page: object, cursor: int, end: int, now: int, step: int, labels: tuple[str, str, str]) -> _Page | None:
    """Split one page into good closed bars inside [cursor, end) and bad bars; None when nothing in range came back."""
    exchange, symbol, tf = labels
    if not isinstance(page, list) or not page:
        return None
    rows: list[tuple[int | None, list[Any]]] = []
    for row in page:
        cells = list(row) if isinstance(row, list | tuple) else [row]
        rows.append((_int_or_none(cells[0] if cells else None), cells))
    lo, hi = sane_time_range(now)
    in_range = [(ts, cells) for ts, cells in rows if ts is None or (cursor <= ts < end and ts + step <= now)]
    if not in_range:
        return None
    recorded_at = int(time.time() * 1000)
    bad: list[QuarantinedBar] = []
    good: dict[int, list[float]] = {}
    for ts, cells in sorted(in_range, key=lambda r: (r[0] is None, r[0] or 0)):
        values = [_float_or_nan(v) for v in cells[1:6]] if len(cells) >= 6 else None
        reason = _bar_problem(ts, values, tf, lo, hi, labels)
        if reason is None and ts is not None and ts in good and good[ts] != values:
            reason = f"repeats the bar at {ts} with different values {good[ts]}"
        if reason is not None or ts is None or values is None:
            bad.append(QuarantinedBar(exchange, symbol, tf, ts, _raw(cells), reason or "unusable bar", recorded_at))
        elif ts not in good:
            good[ts] = values  # an exact duplicate is simply dropped
    seen = [ts for ts, _ in in_range if ts is not None and cursor <= ts < end]
    if not seen:
        return None  # only rows without a usable time: nothing to advance on, treat as an empty page
    ts_sorted = sorted(good)
    arr = np.array([good[t] for t in ts_sorted], dtype=np.float64).reshape(-1, 5)
    o, h, lo_, c, v = (arr[:, i].copy() for i in range(5))
    candles = Candles(np.array(ts_sorted, dtype=np.int64), o, h, lo_, c, v, exchange=exchange, symbol=symbol, timeframe=tf)
    return _Page(candles, bad, max(seen))


def _bar_problem(
    ts: int | None, values: list[float] | None, tf: str, lo: int, hi: int, labels: tuple[str, str, str]
) -> str | None:
    """Why one bar cannot be stored (the store's own validation wording), or None."""
    if ts is None:
        return "open time is not an integer epoch ms"
    if values is None:
        return "expected [ts, open, high, low, close, volume]"
    if not lo <= ts <= hi:
        return f"open time {ts} is outside the sane range (2009 .. now + 1 day)"
    if not bool(is_aligned(np.array([ts]), tf)[0]):
        return f"open time {ts} is not aligned to the {tf} grid"
    o, h, low, c, v = (np.array([x]) for x in values)
    bar = Candles(np.array([ts]), o, h, low, c, v, exchange=labels[0], symbol=labels[1], timeframe=labels[2])
    try:
        validate_candles(bar, "bar")
    except ValidationError as exc:
        return str(exc).removeprefix("bar: row 0, ")
    return None


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) < 2**62 else None
    if isinstance(value, float) and math.isfinite(value) and value == int(value) and abs(value) < 2**62:
        return int(value)
    return None


def _float_or_nan(value: object) -> float:
    if isinstance(value, bool):
        return math.nan
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return math.nan


def _raw(cells: list[Any]) -> str:
    try:
        return json.dumps(cells, allow_nan=True, default=str)[:1000]
    except (TypeError, ValueError):
        return repr(cells)[:1000]


# --- the download ledger: quarantined bars and unfilled spans (portable SQL on the market store) -----------------------

LEDGER_DDL = (
    """CREATE TABLE IF NOT EXISTS download_quarantine (
        exchange TEXT NOT NULL, symbol TEXT NOT NULL, timeframe TEXT NOT NULL, ts BIGINT, raw TEXT NOT NULL,
        reason TEXT NOT NULL, recorded_at BIGINT NOT NULL, PRIMARY KEY (exchange, symbol, timeframe, raw))""",
    """CREATE TABLE IF NOT EXISTS download_gaps (
        exchange TEXT NOT NULL, symbol TEXT NOT NULL, timeframe TEXT NOT NULL, start_ts BIGINT NOT NULL,
        end_ts BIGINT NOT NULL, reason TEXT NOT NULL, recorded_at BIGINT NOT NULL,
        PRIMARY KEY (exchange, symbol, timeframe, start_ts))""",
)


def ensure_ledger(store: MarketStore) -> None:
    for statement in LEDGER_DDL:
        store.execute(statement)


def quarantine(store: MarketStore, bars: Sequence[QuarantinedBar]) -> int:
    """Keep bad bars (idempotent: the same raw bar is kept once); returns how many this call saw."""
    for b in bars:
        store.execute(
            "INSERT INTO download_quarantine VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (exchange, symbol, timeframe, raw) DO UPDATE SET reason = excluded.reason",
            [b.exchange, b.symbol, b.timeframe, b.ts, b.raw, b.reason, b.recorded_at],
        )
    for b in bars:
        log.warning("%s %s %s: quarantined bar %s: %s", b.exchange, b.symbol, b.timeframe, b.raw, b.reason)
    return len(bars)


def quarantined(store: MarketStore, exchange: str | None = None, symbol: str | None = None) -> list[QuarantinedBar]:
    """Bad bars kept by downloads, oldest first (optionally of one exchange / symbol)."""
    ensure_ledger(store)
    where, params = _series_filter(exchange, symbol)
    rows = store.query(
        "SELECT exchange, symbol, timeframe, ts, raw, reason, recorded_at FROM download_quarantine"
        f"{where} ORDER BY exchange, symbol, timeframe, ts, raw",
        params,
    )
    return [QuarantinedBar(*r) for r in rows]


def _series_filter(exchange: str | None, symbol: str | None) -> tuple[str, list[str]]:
    clauses = [(f"{name} = ?", value) for name, value in (("exchange", exchange), ("symbol", symbol)) if value is not None]
    if not clauses:
        return "", []
    return " WHERE " + " AND ".join(c for c, _ in clauses), [v for _, v in clauses]


def record_unfilled(store: MarketStore, span: UnfilledSpan) -> None:
    store.execute(
        "INSERT INTO download_gaps VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (exchange, symbol, timeframe, start_ts) "
        "DO UPDATE SET end_ts = excluded.end_ts, reason = excluded.reason, recorded_at = excluded.recorded_at",
        [span.exchange, span.symbol, span.timeframe, span.start, span.end, span.reason, span.recorded_at],
    )


def clear_unfilled(store: MarketStore, exchange: str, symbol: str, timeframe: str, start: int, end: int) -> None:
    """A run that got through [start, end) without a persistent fault has filled what was recorded there."""
    store.execute(
        "DELETE FROM download_gaps WHERE exchange = ? AND symbol = ? AND timeframe = ? AND start_ts >= ? AND start_ts < ?",
        [exchange, symbol, timeframe, start, end],
    )


def unfilled_spans(store: MarketStore, exchange: str | None = None, symbol: str | None = None) -> list[UnfilledSpan]:
    """Spans a download could not fill (recorded when it stopped; removed when a later run gets through them)."""
    ensure_ledger(store)
    where, params = _series_filter(exchange, symbol)
    rows = store.query(
        "SELECT exchange, symbol, timeframe, start_ts, end_ts, reason, recorded_at FROM download_gaps"
        f"{where} ORDER BY exchange, symbol, timeframe, start_ts",
        params,
    )
    return [UnfilledSpan(*r) for r in rows]


class _Fetcher:
    """Calls the exchange, retrying transient failures with backoff; honours a Retry-After header when present."""

    def __init__(self, client: ccxt.Exchange, policy: RetryPolicy, sleep: Callable[[float], None]):
        self.client = client
        self.policy = policy
        self.sleep = sleep
        self.retries = 0
        self.rng = random.Random()

    def call(self, fn: Callable[..., T], *args: Any, check: Callable[[T], str | None] | None = None, **kwargs: Any) -> T:
        """``fn(...)``, retrying transient failures; ``check`` names an answer that is unusable (retried the same way)."""
        for attempt in range(self.policy.attempts):
            try:
                result = fn(*args, **kwargs)
            except RETRYABLE as exc:
                problem: str = f"{type(exc).__name__}: {exc}"
                failure: BaseException | None = exc
            except ccxt.BaseError as exc:
                raise DownloadError(f"{self.client.id}: permanent error, not retried: {type(exc).__name__}: {exc}") from exc
            else:
                bad = check(result) if check is not None else None
                if bad is None:
                    return result
                problem, failure = bad, None
            if attempt + 1 == self.policy.attempts:
                raise DownloadError(f"{self.client.id}: gave up after {self.policy.attempts} attempts: {problem}") from failure
            self.backoff(attempt, problem, ddos=isinstance(failure, ccxt.DDoSProtection))
        raise AssertionError("unreachable")

    def backoff(self, attempt: int, problem: str, ddos: bool = False) -> None:
        """Sleep before retry ``attempt + 1``; 429/418 answers may say how long to wait (Retry-After)."""
        delay = self.policy.delay(attempt, self.rng)
        if ddos:
            delay = max(delay, self._retry_after())
        log.warning("%s: %s, retry %d in %.2fs", self.client.id, problem.split(":")[0], attempt + 1, delay)
        self.retries += 1
        self.sleep(delay)

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
            return int(self.call(self.client.fetch_time, check=_not_a_time))
        return int(self.client.milliseconds())


def _not_a_time(value: object) -> str | None:
    """A /time answer that is not an epoch ms (an HTML page behind a 200 gives None) is retried, not trusted."""
    lo, hi = sane_time_range()
    return None if isinstance(value, int) and lo <= value <= hi + 365 * 86_400_000 else f"unusable server time {value!r}"
