"""Resampling candles to a coarser timeframe, and building candles from trades.

Aggregation: open first, high max, low min, close last, volume sum (``numpy.ufunc.reduceat`` over bucket runs).
A bucket is *complete* when every constituent bar is present (and, with ``as_of``, when it has closed by then).
Incomplete buckets — a hole in the source, or the still-forming last bucket — are dropped unless asked for, and
then come flagged in the returned ``complete`` mask: they are never silently mixed with complete ones.
"""

from __future__ import annotations

import numpy as np

from pivotal.core.timeframes import timeframe_ms
from pivotal.data.alignment import bucket_start
from pivotal.data.candles import Candles
from pivotal.data.trades import Trades


def _run_starts(buckets: np.ndarray) -> np.ndarray:
    """Index of the first element of each run of equal bucket values."""
    return np.flatnonzero(np.concatenate(([True], buckets[1:] != buckets[:-1])))


def _aggregate(
    buckets: np.ndarray, open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray
) -> tuple[np.ndarray, ...]:
    starts = _run_starts(buckets)
    lasts = np.concatenate((starts[1:], [len(buckets)])) - 1
    return (
        buckets[starts],
        open_[starts],
        np.maximum.reduceat(high, starts),
        np.minimum.reduceat(low, starts),
        close[lasts],
        np.add.reduceat(volume, starts),
        lasts - starts + 1,
    )


def _keep(candles: Candles, complete: np.ndarray, include_incomplete: bool) -> tuple[Candles, np.ndarray]:
    if include_incomplete:
        return candles, complete
    index = np.flatnonzero(complete)
    kept = Candles.from_columns(
        [getattr(candles, name)[index] for name in ("ts", "open", "high", "low", "close", "volume")],
        exchange=candles.exchange,
        symbol=candles.symbol,
        timeframe=candles.timeframe,
    )
    return kept, complete[index]


def resample(
    candles: Candles, timeframe: str, *, include_incomplete: bool = False, as_of: int | None = None
) -> tuple[Candles, np.ndarray]:
    """Aggregate ``candles`` (sorted, unique, of ``candles.timeframe``) to ``timeframe``.

    Returns ``(candles, complete)``; by default only complete buckets are returned (``complete`` all True).
    ``as_of``: buckets closing after this time (epoch ms) count as still forming.
    """
    source_ms, target_ms = timeframe_ms(candles.timeframe), timeframe_ms(timeframe)
    if target_ms <= source_ms or target_ms % source_ms:
        raise ValueError(f"cannot resample {candles.timeframe} to {timeframe}: the target must be a whole multiple of the source")
    ts = np.asarray(candles.ts, dtype=np.int64)
    if len(ts) > 1 and np.any(np.diff(ts) <= 0):
        raise ValueError("resample needs candles sorted by ts with unique open times; validate or sort them first")
    if len(ts) == 0:
        return Candles.empty(candles.exchange, candles.symbol, timeframe), np.empty(0, bool)
    *columns, counts = _aggregate(
        bucket_start(ts, timeframe), candles.open, candles.high, candles.low, candles.close, candles.volume
    )
    complete = counts == target_ms // source_ms
    if as_of is not None:
        complete &= columns[0] + target_ms <= as_of
    out = Candles.from_columns(columns, exchange=candles.exchange, symbol=candles.symbol, timeframe=timeframe)
    return _keep(out, complete, include_incomplete)


def candles_from_trades(
    trades: Trades, timeframe: str = "1s", *, until: int | None = None, include_incomplete: bool = False
) -> tuple[Candles, np.ndarray]:
    """Candles of ``timeframe`` from trade prints (only intervals that have trades; none are invented).

    ``until``: the feed is known complete up to this time (exclusive); a bucket closing later is still forming.
    Default: the last trade's time + 1 ms, so the bucket holding the last trade is flagged incomplete unless it ended.
    """
    ts = np.asarray(trades.ts, dtype=np.int64)
    if len(ts) == 0:
        return Candles.empty(trades.exchange, trades.symbol, timeframe), np.empty(0, bool)
    if np.any(np.diff(ts) < 0):
        raise ValueError("candles_from_trades needs trades sorted by (ts, trade_id)")
    price = np.asarray(trades.price, dtype=np.float64)
    *columns, _ = _aggregate(bucket_start(ts, timeframe), price, price, price, price, np.asarray(trades.amount, np.float64))
    horizon = int(ts[-1]) + 1 if until is None else int(until)
    complete = columns[0] + timeframe_ms(timeframe) <= horizon
    out = Candles.from_columns(columns, exchange=trades.exchange, symbol=trades.symbol, timeframe=timeframe)
    return _keep(out, complete, include_incomplete)
