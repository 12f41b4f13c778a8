"""Batch Williams market structure (spec A.3/A.4): recursive L1..L5 swing pivots from numpy arrays.

``wms_batch`` is the reference the rest of the system builds on; ``incremental.WilliamsMarketStructure`` must emit
exactly the same pivots bar by bar (spec A.5, no-repaint theorem). Everything here is index based: a pivot is
``(index, price, confirmed_at)`` where ``confirmed_at`` is the bar at whose close the pivot became known.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from pivotal.structure import _sel_kernels as kern
from pivotal.structure.types import Kind, PivotArray, PivotEvent, PivotParams, PivotSet


def _price_array(values: object, name: str, n: int | None = None) -> np.ndarray:
    arr = np.ascontiguousarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array (got shape {arr.shape})")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} rows but high has {n}; pass arrays of one series")
    return arr


def bar_problem(row: int, open: float | None, high: float, low: float, close: float | None) -> str:
    """The message for a bar breaking spec A.7 (shared by batch and incremental, so both word it the same way)."""
    has_body = open is not None and close is not None
    values = f"open={open!r} high={high!r} low={low!r} close={close!r}" if has_body else f"high={high!r} low={low!r}"
    return f"row {row}: {_problem(open, high, low, close)} ({values}); fix or drop this bar before computing pivots"


def _problem(open: float | None, high: float, low: float, close: float | None) -> str:
    if math.isnan(high) or math.isnan(low):
        return "a price is NaN"
    if high < low:
        return "high < low"
    if open is None or close is None or math.isnan(open) or math.isnan(close):
        return "a price is NaN"  # without a body only the two checks above can fail
    return "low > min(open, close)" if low > min(open, close) else "high < max(open, close)"


def _raise_bad_row(row: int, high: np.ndarray, low: np.ndarray, open: np.ndarray | None, close: np.ndarray | None) -> None:
    if row < 0:
        return
    o = None if open is None else float(open[row])
    c = None if close is None else float(close[row])
    raise ValueError(bar_problem(row, o, float(high[row]), float(low[row]), c))


def _body(high: np.ndarray, low: np.ndarray, open: np.ndarray | None, close: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """open/close for the kernels; without a body (low, high) makes the check reduce to 'no NaN and high >= low'."""
    if (open is None) != (close is None):
        raise ValueError("pass both open and close, or neither")
    return (low, high) if open is None or close is None else (open, close)


def validate_bars(high: np.ndarray, low: np.ndarray, open: np.ndarray | None = None, close: np.ndarray | None = None) -> None:
    """Raise ValueError naming the first bad row and field (spec A.7). open/close are checked when given."""
    body_o, body_c = _body(high, low, open, close)
    _raise_bad_row(kern.first_bad_row(high, low, body_o, body_c, 0, high.shape[0]), high, low, open, close)


def wms_batch(
    *,
    open: object | None = None,
    high: object,
    low: object,
    close: object | None = None,
    params: PivotParams = PivotParams(),
) -> PivotSet:
    """All pivots of ``params.levels`` levels: ``result.highs[l-1]`` / ``result.lows[l-1]`` hold level l.

    open/close only serve validation here (event order lives in ``wms_events``) and may be None. The arguments are
    keyword-only, in the OHLC order of ``WilliamsMarketStructure.on_bar``: four same-shaped price arrays passed by
    position would be swapped silently.
    """
    hi = _price_array(high, "high")
    lo = _price_array(low, "low", hi.shape[0])
    op = None if open is None else _price_array(open, "open", hi.shape[0])
    cl = None if close is None else _price_array(close, "close", hi.shape[0])
    body_o, body_c = _body(hi, lo, op, cl)
    tie = kern.TIE_CODES[params.tie]
    k = params.k
    if params.skip_inside:
        effective, eff_high, eff_low, bad = kern.effective_bars(hi, lo, body_o, body_c)
        _raise_bad_row(bad, hi, lo, op, cl)
        first_highs = PivotArray(*kern.promote(effective, eff_high, effective, 1.0, k, tie))
        first_lows = PivotArray(*kern.promote(effective, eff_low, effective, -1.0, k, tie))
    else:  # one fused pass over the bars: validation + L1H + L1L (the batch is memory-bound)
        first_high_cols, first_low_cols, bad = kern.level1(hi, lo, body_o, body_c, k, tie)
        _raise_bad_row(bad, hi, lo, op, cl)
        first_highs = PivotArray(*first_high_cols)
        first_lows = PivotArray(*first_low_cols)
    highs = _upper_levels(first_highs, 1.0, params, tie)
    lows = _upper_levels(first_lows, -1.0, params, tie)
    return PivotSet(params, highs, lows)


def _upper_levels(level1: PivotArray, sign: float, params: PivotParams, tie: int) -> list[PivotArray]:
    """Each level >= 2 is SEL over the same-type level below (never the bars, never the other kind)."""
    result = [level1]
    for _ in range(2, params.levels + 1):
        result.append(_next_level(result[-1], sign, params.m, tie))
    return result


def _next_level(below: PivotArray, sign: float, m: int, tie: int) -> PivotArray:
    """Pivots of pivots: confirmed when the m-th same-type right neighbour one level down is confirmed."""
    return PivotArray(*kern.promote(below.index, below.price, below.confirmed_at, sign, m, tie))


def wms_events(
    pivots: PivotSet, open: object, close: object, ts: object | None = None, tf_ms: int | None = None
) -> list[PivotEvent]:
    """Every pivot as an event, in the exact order the incremental detector emits them.

    Order: (confirmed_at, level, kind). H and L sharing a (confirmed_at, level) both descend from the one L1 candidate
    bar confirmed at that close; that bar's open→close decides (close >= open: L first, else H first; spec A.3).
    With ``ts`` (bar open times, epoch ms) and ``tf_ms``, events carry ts and confirmed_ts.
    """
    op = np.asarray(open, dtype=np.float64)
    cl = np.asarray(close, dtype=np.float64)
    times = None if ts is None else _checked_times(ts, op.shape[0], tf_ms)
    columns = _event_columns(pivots)
    if columns[0].size == 0:
        return []
    conf, level, is_low, index, price = columns
    l1_highs = pivots.highs[0]
    bullish = np.ones(conf.size, bool)
    if len(l1_highs):  # only bars with an L1H confirmation can carry both kinds, so its bar is the trigger
        trigger = l1_highs.index[np.minimum(np.searchsorted(l1_highs.confirmed_at, conf), len(l1_highs) - 1)]
        bullish = cl[trigger] >= op[trigger]
    kind_rank = np.where(bullish, ~is_low, is_low).astype(np.int8)  # bullish: L (rank 0) before H
    order = np.lexsort((kind_rank, level, conf))
    return [_event(int(level[i]), bool(is_low[i]), int(index[i]), float(price[i]), int(conf[i]), times, tf_ms) for i in order]


def _event_columns(pivots: PivotSet) -> tuple[np.ndarray, ...]:
    parts = [(arr, lvl + 1, False) for lvl, arr in enumerate(pivots.highs)]
    parts += [(arr, lvl + 1, True) for lvl, arr in enumerate(pivots.lows)]
    conf = np.concatenate([a.confirmed_at for a, _, _ in parts] or [np.empty(0, np.int64)])
    level = np.concatenate([np.full(len(a), lvl, np.int64) for a, lvl, _ in parts] or [np.empty(0, np.int64)])
    is_low = np.concatenate([np.full(len(a), low, bool) for a, _, low in parts] or [np.empty(0, bool)])
    index = np.concatenate([a.index for a, _, _ in parts] or [np.empty(0, np.int64)])
    price = np.concatenate([a.price for a, _, _ in parts] or [np.empty(0, np.float64)])
    return conf, level, is_low, index, price


def _event(
    level: int, is_low: bool, index: int, price: float, conf: int, times: np.ndarray | None, tf_ms: int | None
) -> PivotEvent:
    kind: Kind = "L" if is_low else "H"
    if times is None or tf_ms is None:
        return PivotEvent(level, kind, index, price, conf)
    return PivotEvent(level, kind, index, price, conf, int(times[index]), int(times[conf]) + tf_ms)


def _checked_times(ts: object, n: int, tf_ms: int | None) -> np.ndarray:
    times = np.asarray(ts, dtype=np.int64)
    if times.ndim != 1 or times.shape[0] != n:
        raise ValueError(f"ts must be a 1-D array with one open time per bar ({n} rows, got shape {times.shape})")
    if tf_ms is None or tf_ms <= 0:
        raise ValueError(f"tf_ms must be the bar length in milliseconds, > 0 (got {tf_ms!r})")
    steps = np.diff(times)
    if steps.size and steps.min() <= 0:
        row = int(np.argmax(steps <= 0)) + 1
        raise ValueError(
            f"row {row}: timestamp {int(times[row])} is not after row {row - 1} ({int(times[row - 1])}); "
            "timestamps must be unique and sorted ascending (spec A.7)"
        )
    return times


@dataclass(frozen=True)
class TimedPivotArray:
    """A PivotArray plus ``ts`` (open time of the pivot bar) and ``confirmed_ts`` (close time of the confirming bar)."""

    index: np.ndarray
    price: np.ndarray
    confirmed_at: np.ndarray
    ts: np.ndarray  # int64 epoch ms
    confirmed_ts: np.ndarray  # int64 epoch ms = ts[confirmed_at] + tf_ms

    def __len__(self) -> int:
        return len(self.index)


@dataclass(frozen=True)
class TimedPivotSet:
    """``with_timestamps`` result: ``highs[l-1]`` / ``lows[l-1]`` hold level l, as in PivotSet."""

    params: PivotParams
    tf_ms: int
    highs: list[TimedPivotArray] = field(default_factory=list)
    lows: list[TimedPivotArray] = field(default_factory=list)

    def get(self, level: int, kind: Kind) -> TimedPivotArray:
        if not 1 <= level <= len(self.highs):
            raise ValueError(f"level {level} not computed (levels 1..{len(self.highs)})")
        return (self.highs if kind == "H" else self.lows)[level - 1]


def with_timestamps(pivots: PivotSet, ts: object, tf_ms: int) -> TimedPivotSet:
    """Attach wall-clock times: ts = open time of the pivot bar, confirmed_ts = close time of the confirming bar."""
    n_needed = 1 + max((int(a.confirmed_at[-1]) for a in pivots.highs + pivots.lows if len(a)), default=-1)
    times = np.asarray(ts, dtype=np.int64)
    if times.ndim != 1 or times.shape[0] < n_needed:
        raise ValueError(f"ts must cover every bar the pivots refer to (need >= {n_needed} rows, got shape {times.shape})")
    times = _checked_times(times, times.shape[0], tf_ms)

    def timed(a: PivotArray) -> TimedPivotArray:
        return TimedPivotArray(a.index, a.price, a.confirmed_at, times[a.index], times[a.confirmed_at] + tf_ms)

    return TimedPivotSet(pivots.params, tf_ms, [timed(a) for a in pivots.highs], [timed(a) for a in pivots.lows])
