"""As-of windows: for a time t, the last N *closed* candles of several series, never a bar that closes after t.

A bar with open time ``ts`` closes at ``ts + timeframe_ms``; it is closed at ``t`` iff ``ts + timeframe_ms <= t``.
Two ways to answer, same results:

- :func:`closed_window` / :func:`asof_windows` on a store: one ``ORDER BY ts DESC LIMIT n`` query per series.
- :class:`AsOfCache`: loads each series into numpy once and answers with ``searchsorted`` (microseconds; use it
  for backtests and training loops that ask for many t). It is a snapshot: call ``refresh()`` after new writes.

Staleness. A window's *age* at t is ``t - close of its newest bar`` (``window_age_ms``). Both ways refuse a window
older than a limit with ``StaleDataError`` instead of handing a 2018 window to a 2024 t: by default the newest bar
may close at most one bar of its timeframe later than expected, i.e. ``age <= 2 x timeframe`` (``default_max_age_ms``;
with no missing bars the age is below one timeframe). Callers that want old windows say so with ``max_age_ms``
(``NO_AGE_LIMIT`` accepts any age). An empty window (no bar closed by t) is not stale: it has no age, and the
completeness check reports it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Protocol, runtime_checkable

import numpy as np

from pivotal.core.errors import StaleDataError
from pivotal.core.timeframes import timeframe_ms
from pivotal.data.candles import Candles
from pivotal.data.store import MarketStore

WindowKey = tuple[str, str]  # (symbol, timeframe)
NO_AGE_LIMIT = math.inf  # ``max_age_ms`` that accepts a window of any age


def default_max_age_ms(timeframe: str) -> int:
    """The default staleness limit: the newest bar closes at most one bar later than expected (2 x timeframe)."""
    return 2 * timeframe_ms(timeframe)


def window_age_ms(window: Candles, t: int, timeframe: str | None = None) -> int | None:
    """``t`` minus the close time of the window's newest bar (None for an empty window)."""
    if len(window) == 0:
        return None
    return int(t) - int(window.ts[-1]) - timeframe_ms(timeframe or window.timeframe)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def _duration(ms: float) -> str:
    if ms >= 86_400_000:
        return f"{ms / 86_400_000:.1f} d"
    if ms >= 3_600_000:
        return f"{ms / 3_600_000:.1f} h"
    return f"{ms / 60_000:.1f} min"


def stale_message(exchange: str, symbol: str, timeframe: str, t: int, newest_close: int, max_age_ms: float) -> str:
    """One line: which series, t, its newest close, the limit, and the fix."""
    return (
        f"stale window {exchange} {symbol} {timeframe} at t={_iso(t)}: newest bar closed {_iso(newest_close)} "
        f"({_duration(t - newest_close)} before t), limit {_duration(max_age_ms)}; import newer bars, or pass max_age_ms "
        "to accept older windows"
    )


def check_fresh(window: Candles, exchange: str, symbol: str, timeframe: str, t: int, max_age_ms: float | None = None) -> Candles:
    """``window`` unchanged when its age at t is within the limit (default ``default_max_age_ms``), else
    ``StaleDataError``."""
    if len(window) == 0:
        return window
    tf = timeframe_ms(timeframe)
    limit = 2 * tf if max_age_ms is None else max_age_ms
    newest_close = int(window.ts[-1]) + tf
    if t - newest_close > limit:
        raise StaleDataError(stale_message(exchange, symbol, timeframe, t, newest_close, limit))
    return window


@runtime_checkable
class TailReader(Protocol):
    """A store that can return the newest ``n`` bars before ``end`` in one query, and the newest open time before a
    time (both backends do)."""

    def tail(self, exchange: str, symbol: str, timeframe: str, end: int, n: int, start: int | None = None) -> Candles: ...

    def last_ts(self, exchange: str, symbol: str, timeframe: str, before: int | None = None) -> int | None: ...


def _open_time_limit(timeframe: str, t: int) -> int:
    """Exclusive upper bound on open times of bars closed at ``t``."""
    return int(t) - timeframe_ms(timeframe) + 1


def closed_window(
    store: MarketStore, exchange: str, symbol: str, timeframe: str, t: int, n: int, max_age_ms: float | None = None
) -> Candles:
    """The last ``n`` candles with ``ts + tf_ms <= t`` (fewer if the store has fewer), oldest first; ``StaleDataError``
    when the newest is older than ``max_age_ms`` at t (default: ``default_max_age_ms``)."""
    window = _closed_window(store, exchange, symbol, timeframe, t, n)
    return check_fresh(window, exchange, symbol, timeframe, t, max_age_ms)


def _closed_window(store: MarketStore, exchange: str, symbol: str, timeframe: str, t: int, n: int) -> Candles:
    end = _open_time_limit(timeframe, t)
    if isinstance(store, TailReader):
        # Most windows lie within 2n bars of t: ask with that bound first (DuckDB then reads one row group). If t
        # falls in a gap, anchor the bound at the newest bar before t instead; only a gap inside the window or the
        # start of the series needs the unbounded query.
        lookback = 2 * n * timeframe_ms(timeframe)
        window = store.tail(exchange, symbol, timeframe, end, n, start=end - lookback)
        if len(window) == n:
            return window
        if len(window) == 0:
            newest = store.last_ts(exchange, symbol, timeframe, before=end)
            if newest is None:
                return window
            window = store.tail(exchange, symbol, timeframe, end, n, start=newest + 1 - lookback)
            if len(window) == n:
                return window
        return store.tail(exchange, symbol, timeframe, end, n)
    everything = store.candles(exchange, symbol, timeframe, end=end)
    return everything.slice(max(0, len(everything) - n), len(everything))


def series_keys(symbols: Sequence[str], timeframes: Sequence[str], reference_symbol: str | None) -> list[WindowKey]:
    """Every (symbol, timeframe) asked for, the reference symbol added once for each timeframe."""
    names = list(dict.fromkeys([*symbols, *([reference_symbol] if reference_symbol else [])]))
    return [(symbol, timeframe) for symbol in names for timeframe in timeframes]


def asof_windows(
    source: MarketStore | AsOfCache,
    exchange: str,
    symbols: Sequence[str],
    timeframes: Sequence[str],
    t: int,
    n: int,
    reference_symbol: str | None = "BTC/USDT",
    max_age_ms: float | None = None,
) -> dict[WindowKey, Candles]:
    """Closed windows for every symbol (plus the reference symbol) and timeframe at time ``t``; ``StaleDataError`` for
    the first window older than ``max_age_ms`` (default per timeframe: ``default_max_age_ms``)."""
    window = source.closed_window if isinstance(source, AsOfCache) else partial(closed_window, source)
    keys = series_keys(symbols, timeframes, reference_symbol)
    return {key: window(exchange, key[0], key[1], t, n, max_age_ms) for key in keys}


def window_ages(windows: dict[WindowKey, Candles], t: int) -> dict[WindowKey, int | None]:
    """The age at t of every window of ``asof_windows`` (None where empty)."""
    return {key: window_age_ms(window, t, key[1]) for key, window in windows.items()}


class AsOfCache:
    """Series held in memory as numpy arrays; windows are zero-copy views found with ``searchsorted``."""

    def __init__(self, store: MarketStore) -> None:
        self._store = store
        self._series: dict[tuple[str, str, str], Candles] = {}

    def load(self, exchange: str, symbol: str, timeframe: str) -> Candles:
        """The full series (read from the store on first use)."""
        key = (exchange, symbol, timeframe)
        if key not in self._series:
            self._series[key] = self._store.candles(exchange, symbol, timeframe)
        return self._series[key]

    def refresh(self) -> None:
        """Forget everything loaded, so the next query sees writes made since."""
        self._series.clear()

    def closed_window(
        self, exchange: str, symbol: str, timeframe: str, t: int, n: int, max_age_ms: float | None = None
    ) -> Candles:
        """As the module's ``closed_window``, from memory (same staleness rule)."""
        series = self._series.get((exchange, symbol, timeframe))
        if series is None:
            series = self.load(exchange, symbol, timeframe)
        tf = timeframe_ms(timeframe)
        stop = int(np.searchsorted(series.ts, t - tf + 1, side="left"))
        if stop:
            newest_close = int(series.ts[stop - 1]) + tf
            limit = 2 * tf if max_age_ms is None else max_age_ms
            if t - newest_close > limit:
                raise StaleDataError(stale_message(exchange, symbol, timeframe, t, newest_close, limit))
        return series.slice(max(0, stop - n), stop)

    def age_ms(self, exchange: str, symbol: str, timeframe: str, t: int) -> int | None:
        """Age at t of the newest bar closed by t (None before the first bar)."""
        return window_age_ms(self.closed_window(exchange, symbol, timeframe, t, 1, NO_AGE_LIMIT), t, timeframe)

    def windows(
        self,
        exchange: str,
        symbols: Sequence[str],
        timeframes: Sequence[str],
        t: int,
        n: int,
        reference_symbol: str | None = "BTC/USDT",
        max_age_ms: float | None = None,
    ) -> dict[WindowKey, Candles]:
        """``asof_windows`` answered from memory."""
        return asof_windows(self, exchange, symbols, timeframes, t, n, reference_symbol, max_age_ms)
