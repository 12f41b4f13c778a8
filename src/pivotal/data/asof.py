"""As-of windows: for a time t, the last N *closed* candles of several series, never a bar that closes after t.

A bar with open time ``ts`` closes at ``ts + timeframe_ms``; it is closed at ``t`` iff ``ts + timeframe_ms <= t``.
Two ways to answer, same results:

- :func:`closed_window` / :func:`asof_windows` on a store: one ``ORDER BY ts DESC LIMIT n`` query per series.
- :class:`AsOfCache`: loads each series into numpy once and answers with ``searchsorted`` (microseconds; use it
  for backtests and training loops that ask for many t). It is a snapshot: call ``refresh()`` after new writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Protocol, runtime_checkable

import numpy as np

from pivotal.data.candles import Candles
from pivotal.data.store import MarketStore
from pivotal.core.timeframes import timeframe_ms

SeriesKey = tuple[str, str]  # (symbol, timeframe)


@runtime_checkable
class TailReader(Protocol):
    """A store that can return the newest ``n`` bars before ``end`` in one query, and the newest open time before a
    time (both backends do)."""

    def tail(self, exchange: str, symbol: str, timeframe: str, end: int, n: int, start: int | None = None) -> Candles: ...

    def last_ts(self, exchange: str, symbol: str, timeframe: str, before: int | None = None) -> int | None: ...


def _open_time_limit(timeframe: str, t: int) -> int:
    """Exclusive upper bound on open times of bars closed at ``t``."""
    return int(t) - timeframe_ms(timeframe) + 1


def closed_window(store: MarketStore, exchange: str, symbol: str, timeframe: str, t: int, n: int) -> Candles:
    """The last ``n`` candles with ``ts + tf_ms <= t`` (fewer if the store has fewer), oldest first."""
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


def series_keys(symbols: Sequence[str], timeframes: Sequence[str], reference_symbol: str | None) -> list[SeriesKey]:
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
) -> dict[SeriesKey, Candles]:
    """Closed windows for every symbol (plus the reference symbol) and timeframe at time ``t``."""
    window = source.closed_window if isinstance(source, AsOfCache) else partial(closed_window, source)
    return {key: window(exchange, key[0], key[1], t, n) for key in series_keys(symbols, timeframes, reference_symbol)}


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

    def closed_window(self, exchange: str, symbol: str, timeframe: str, t: int, n: int) -> Candles:
        series = self.load(exchange, symbol, timeframe)
        stop = int(np.searchsorted(series.ts, _open_time_limit(timeframe, t), side="left"))
        return series.slice(max(0, stop - n), stop)

    def windows(
        self,
        exchange: str,
        symbols: Sequence[str],
        timeframes: Sequence[str],
        t: int,
        n: int,
        reference_symbol: str | None = "BTC/USDT",
    ) -> dict[SeriesKey, Candles]:
        """``asof_windows`` answered from memory."""
        return asof_windows(self, exchange, symbols, timeframes, t, n, reference_symbol)
