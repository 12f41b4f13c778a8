"""First-pierce search of the LS3 sweep: for a key level and a threshold, the first bar in a window whose low (high)
reaches the threshold. Market-only parts are built once per market; the per-configuration query is a short scan.

The bars that can be the first pierce from a start bar ``a`` are the chain of successive new lows from ``a``
(``a``, then ``next_lower[a]``, ...): every bar skipped in between has a low above the previous chain bar's, so it
cannot pierce first. The chain does not depend on the threshold, so it is stored per level once (CSR *records*, up to
``index + horizon``) and a query scans it sequentially instead of chasing pointers through the bar arrays; measured
~3x faster on 1m BTC. Queries past the horizon continue along the chain from ``resume``, so any lookback is exact.

Record values are mirrored for resistances (``-high``), so one test serves both sides: the first record with
``value <= side * threshold`` is the pierce (negation is exact in floating point, so decisions stay bit-identical).
"""

from __future__ import annotations

import numpy as np
from numba import njit

Arr = np.ndarray


@njit(cache=True)
def next_beyond(values: Arr, lower: bool) -> Arr:
    """Per bar t, the next bar with a strictly lower (or higher) value than ``values[t]``; n if none (monotonic stack)."""
    n = values.shape[0]
    out = np.full(n, n, np.int64)
    stack = np.empty(n, np.int64)
    k = 0
    for t in range(n):
        while k > 0 and ((values[t] < values[stack[k - 1]]) if lower else (values[t] > values[stack[k - 1]])):
            k -= 1
            out[stack[k]] = t
        stack[k] = t
        k += 1
    return out


@njit(cache=True)
def first_pierce(low: Arr, high: Arr, next_lower: Arr, next_higher: Arr, a: int, b: int, thr: float, is_long: bool) -> int:
    """First bar in [a, b] with low <= thr (long) or high >= thr (short); -1 if none (walks the chain of new extremes)."""
    t = a
    if is_long:
        while t <= b:
            if low[t] <= thr:
                return t
            t = next_lower[t]
    else:
        while t <= b:
            if high[t] >= thr:
                return t
            t = next_higher[t]
    return -1


@njit(cache=True)
def pierce_records(
    low: Arr,
    high: Arr,
    next_lower: Arr,
    next_higher: Arr,
    lvl_index: Arr,
    lvl_conf: Arr,
    lvl_side: Arr,
    warmup: int,
    horizon: int,
) -> tuple[Arr, Arr, Arr, Arr]:
    """Per level i, the chain bars from ``max(conf + 1, warmup)`` up to ``min(index + horizon, n - 1)``:
    (ptr [levels + 1], bar, mirrored value, resume [levels] = the first chain bar after the records).

    Two passes (count, then fill) into exact-size arrays: ~4x faster than one pass into a growing buffer."""
    n = low.shape[0]
    m = lvl_index.shape[0]
    ptr = np.empty(m + 1, np.int64)
    resume = np.empty(m, np.int64)
    ptr[0] = 0
    for i in range(m):
        chain = next_lower if lvl_side[i] > 0 else next_higher
        ptr[i + 1] = ptr[i] + _chain_length(chain, max(lvl_conf[i] + 1, warmup), min(lvl_index[i] + horizon, n - 1))
    bar = np.empty(ptr[m], np.int32)  # bar numbers < 2**31; 12 bytes per record instead of 16
    val = np.empty(ptr[m])
    for i in range(m):
        is_long = lvl_side[i] > 0
        chain = next_lower if is_long else next_higher
        extreme = low if is_long else high
        sign = 1.0 if is_long else -1.0
        t = max(lvl_conf[i] + 1, warmup)
        stop = min(lvl_index[i] + horizon, n - 1)
        k = ptr[i]
        while t <= stop:
            bar[k] = t
            val[k] = sign * extreme[t]
            k += 1
            t = chain[t]
        resume[i] = t
    return ptr, bar, val, resume


@njit(cache=True)
def _chain_length(chain: Arr, t: int, stop: int) -> int:
    count = 0
    while t <= stop:
        count += 1
        t = chain[t]
    return count


@njit(cache=True)
def pierce_column(records: tuple[Arr, Arr, Arr, Arr], lvl_price: Arr, lvl_side: Arr, pierce_depth: float) -> Arr:
    """Per level, the first record bar that reaches the level's threshold at ``pierce_depth``, -1 if none.

    ``episodes`` turns it into the pierce bar of any lookback: none if it lies after ``index + lookback``, and for
    lookbacks past the horizon a -1 continues along the chain from ``resume``."""
    ptr, rec_bar, rec_val = records[0], records[1], records[2]
    m = lvl_price.shape[0]
    out = np.full(m, -1, np.int32)
    for i in range(m):
        lv = lvl_price[i]
        mirrored = lv * (1 - pierce_depth) if lvl_side[i] > 0 else -(lv * (1 + pierce_depth))  # thresholds as in B.2
        for j in range(ptr[i], ptr[i + 1]):
            if rec_val[j] <= mirrored:
                out[i] = rec_bar[j]
                break
    return out


@njit(cache=True)
def pierce_table(records: tuple[Arr, Arr, Arr, Arr], lvl_price: Arr, lvl_side: Arr, depths: Arr) -> Arr:
    """``pierce_column`` of each of the ascending ``depths``: an int32 array [len(depths), levels], built once per
    market for the grid's pierce depths so that a grid configuration's first-pierce search is one read per level.

    One pass over each level's records serves every depth: a deeper threshold is reached at the same or a later record."""
    ptr, rec_bar, rec_val = records[0], records[1], records[2]
    out = np.full((depths.shape[0], lvl_price.shape[0]), -1, np.int32)
    for i in range(lvl_price.shape[0]):
        lv = lvl_price[i]
        is_long = lvl_side[i] > 0
        j, end = ptr[i], ptr[i + 1]
        for d in range(depths.shape[0]):
            mirrored = lv * (1 - depths[d]) if is_long else -(lv * (1 + depths[d]))  # exactly as pierce_column
            while j < end and rec_val[j] > mirrored:
                j += 1
            if j == end:
                break
            out[d, i] = rec_bar[j]
    return out
