"""Numba kernels of the batch pivot engine (spec A.3/A.4/A.7): selection, inside-bar filter, input validation.

The kernels take C-contiguous float64 arrays only, so each compiles once (``cache=True``) and every caller shares
that specialisation. On real data the batch is memory-bound, so level 1 reads the four price columns exactly once:
validation and the H and L selections happen in the same pass (``level1``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

TIE_FIRST = 0
TIE_LAST = 1
TIE_STRICT = 2
TIE_CODES = {"first": TIE_FIRST, "last": TIE_LAST, "strict": TIE_STRICT}


@njit(inline="always")
def pivot_capacity(n: int, w: int) -> int:
    """Upper bound on SEL output: same-type pivots are >= w+1 apart under every tie rule; +1 for the write-ahead."""
    return max(n - 2 * w - 1, 0) // (w + 1) + 2


@njit(inline="always")
def _bar_ok(h: float, lo: float, o: float, c: float) -> bool:
    """Spec A.7 in four comparisons: any NaN makes one of them false, and low <= open/close <= high implies high >= low."""
    return (lo <= o) & (lo <= c) & (h >= o) & (h >= c)


@njit(cache=True)
def first_bad_row(high: np.ndarray, low: np.ndarray, open_: np.ndarray, close: np.ndarray, start: int, stop: int) -> int:
    """First row in [start, stop) failing ``_bar_ok``, or -1. Without a body pass open_=low, close=high."""
    for t in range(start, stop):
        if not _bar_ok(high[t], low[t], open_[t], close[t]):
            return t
    return -1


@njit(inline="always")
def _beats(v: float, other: float, strict: bool, lows: bool) -> bool:
    if lows:
        return (v < other) if strict else (v <= other)
    return (v > other) if strict else (v >= other)


@njit(inline="always")
def _promote_scan(
    index: np.ndarray,
    price: np.ndarray,
    conf: np.ndarray,
    w: int,
    out: tuple,
    left_strict: bool,
    right_strict: bool,
    lows: bool,
) -> int:
    """Branch-free SEL: every j is written to ``out`` and the cursor advances only if j qualifies.

    Called with literal flags only, so after inlining LLVM folds every flag test away (one tight loop per variant);
    the data-dependent outcome never becomes a branch, which avoids the mispredictions that dominate a naive scan.
    """
    out_index, out_price, out_conf = out
    count = 0
    for j in range(w, price.shape[0] - w):
        v = price[j]
        ok = True
        for d in range(1, w + 1):
            ok &= _beats(v, price[j - d], left_strict, lows) & _beats(v, price[j + d], right_strict, lows)
        out_index[count] = index[j]
        out_price[count] = v
        out_conf[count] = conf[j + w]
        count += ok
    return count


@njit(cache=True)
def promote(index: np.ndarray, price: np.ndarray, conf: np.ndarray, sign: float, w: int, tie: int) -> tuple:
    """SEL(sign*price, w, tie) of spec A.3 over a pivot list: the selected (index, price, conf[j+w]) triples.

    Level ℓ+1 from level ℓ (w = m), or level 1 from the effective bars (index = conf = their bar positions, w = k).
    ``sign`` is +1 for highs and -1 for lows (flipped comparisons, no negated copy). O(N*w): for the small w used in
    practice this beats the monotonic-deque O(N) variant of spec A.4.
    """
    size = pivot_capacity(price.shape[0], w)
    out = (np.empty(size, np.int64), np.empty(size, np.float64), np.empty(size, np.int64))
    lows = sign < 0
    if tie == TIE_FIRST:
        n = (
            _promote_scan(index, price, conf, w, out, True, False, True)
            if lows
            else _promote_scan(index, price, conf, w, out, True, False, False)
        )
    elif tie == TIE_LAST:
        n = (
            _promote_scan(index, price, conf, w, out, False, True, True)
            if lows
            else _promote_scan(index, price, conf, w, out, False, True, False)
        )
    else:
        n = (
            _promote_scan(index, price, conf, w, out, True, True, True)
            if lows
            else _promote_scan(index, price, conf, w, out, True, True, False)
        )
    return out[0][:n], out[1][:n], out[2][:n]


@njit(inline="always")
def _scan_bars(
    high: np.ndarray,
    low: np.ndarray,
    open_: np.ndarray,
    close: np.ndarray,
    w: int,
    hi_out: tuple,
    lo_out: tuple,
    left_strict: bool,
    right_strict: bool,
) -> tuple:
    """One pass over the bars: validate row j, then test it as H and as L (both branch-free, as in _promote_scan)."""
    hi_index, hi_price, hi_conf = hi_out
    lo_index, lo_price, lo_conf = lo_out
    nh = 0
    nl = 0
    for j in range(w, high.shape[0] - w):
        vh = high[j]
        vl = low[j]
        if not _bar_ok(vh, vl, open_[j], close[j]):
            return nh, nl, j
        ok_h = True
        ok_l = True
        for d in range(1, w + 1):
            ok_h &= _beats(vh, high[j - d], left_strict, False) & _beats(vh, high[j + d], right_strict, False)
            ok_l &= _beats(vl, low[j - d], left_strict, True) & _beats(vl, low[j + d], right_strict, True)
        hi_index[nh] = j
        hi_price[nh] = vh
        hi_conf[nh] = j + w
        nh += ok_h
        lo_index[nl] = j
        lo_price[nl] = vl
        lo_conf[nl] = j + w
        nl += ok_l
    return nh, nl, -1


@njit(cache=True)
def level1(high: np.ndarray, low: np.ndarray, open_: np.ndarray, close: np.ndarray, w: int, tie: int) -> tuple:
    """(L1H triples, L1L triples, first bad row or -1) over all bars; without a body pass open_=low, close=high.

    Each triple is (index, price, confirmed_at) arrays; confirmed_at = index + w since every bar is effective.
    """
    n = high.shape[0]
    size = pivot_capacity(n, w)
    hi_out = (np.empty(size, np.int64), np.empty(size, np.float64), np.empty(size, np.int64))
    lo_out = (np.empty(size, np.int64), np.empty(size, np.float64), np.empty(size, np.int64))
    bad = first_bad_row(high, low, open_, close, 0, min(w, n))
    nh = 0
    nl = 0
    if bad < 0:
        if tie == TIE_FIRST:
            nh, nl, bad = _scan_bars(high, low, open_, close, w, hi_out, lo_out, True, False)
        elif tie == TIE_LAST:
            nh, nl, bad = _scan_bars(high, low, open_, close, w, hi_out, lo_out, False, True)
        else:
            nh, nl, bad = _scan_bars(high, low, open_, close, w, hi_out, lo_out, True, True)
    if bad < 0:
        bad = first_bad_row(high, low, open_, close, max(n - w, w), n)
    if bad >= 0:
        nh = 0
        nl = 0
    highs = (hi_out[0][:nh], hi_out[1][:nh], hi_out[2][:nh])
    lows = (lo_out[0][:nl], lo_out[1][:nl], lo_out[2][:nl])
    return highs, lows, bad


@njit(cache=True)
def effective_bars(high: np.ndarray, low: np.ndarray, open_: np.ndarray, close: np.ndarray) -> tuple:
    """Williams' inside-bar rule (spec A.3) fused with validation: (positions, highs, lows of non-inside bars, bad row).

    A bar is inside iff high < mother high and low > mother low (strict); the mother is the last non-inside bar.
    """
    n = high.shape[0]
    index = np.empty(n, np.int64)
    eff_high = np.empty(n, np.float64)
    eff_low = np.empty(n, np.float64)
    count = 0
    mother_high = -np.inf  # no mother yet: bar 0 is never inside
    mother_low = np.inf
    for t in range(n):
        h = high[t]
        lo = low[t]
        if not _bar_ok(h, lo, open_[t], close[t]):
            return index[:0], eff_high[:0], eff_low[:0], t
        keep = not ((h < mother_high) & (lo > mother_low))
        index[count] = t  # write-ahead, advance only for a kept bar: no data-dependent branch
        eff_high[count] = h
        eff_low[count] = lo
        count += keep
        mother_high = h if keep else mother_high
        mother_low = lo if keep else mother_low
    return index[:count], eff_high[:count], eff_low[:count], -1
