"""Numba kernels of the LS3 sweep (spec B.6): episodes per level, per-bar signal resolution, trade outcomes, the
one-position filter with metrics, and one configuration's trade list. Every comparison is written exactly as in the
event-driven strategy (``ls3.strategy``) so both paths make bit-identical decisions; see ``ls3.sweep`` for the
API and ``ls3.pierce`` for the first-pierce search.

Threshold parameters are handled as *levels*: for an ascending array of candidate values, the kernels count how many
values a bar/episode passes (``volume >= v * VMA`` and ``range >= c * atr_ref`` are monotone in v and c), so one
episode table serves every (volume_spike_threshold, reversal_candle_size) pair.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from pivotal.core.metrics import trade_stats
from pivotal.core.vocabulary import EXIT_EOD as EOD
from pivotal.core.vocabulary import EXIT_SL as SL
from pivotal.core.vocabulary import EXIT_SL_GAP as SL_GAP
from pivotal.core.vocabulary import EXIT_TIME as TIME
from pivotal.core.vocabulary import EXIT_TP as TP
from pivotal.core.vocabulary import EXIT_TP_GAP as TP_GAP
from pivotal.strategies.ls3.pierce import first_pierce

# exit reasons are the int codes of core.vocabulary.ExitReason (numba cannot take the enum); names via core.trades
Arr = np.ndarray
Bars = tuple[np.ndarray, ...]  # LS3Market.bars / .levels: a tuple of arrays (numba passes it without copying)


@njit(cache=True)
def _volume_level(volume: float, vma: float, vst_values: Arr) -> int:
    """How many of the ascending ``vst_values`` satisfy ``VMA > 0 and volume >= v * VMA`` on one bar."""
    c = 0
    if vma > 0:  # NaN fails this too
        for v in vst_values:
            if volume >= v * vma:
                c += 1
    return c


@njit(cache=True)
def episodes(
    bars: Bars,
    levels: Bars,
    pierce_at: Arr,
    resume: Arr,
    horizon: int,
    pierce_depth: float,
    lookback: int,
    rejection: int,
    vst_values: Arr,
    rcs_values: Arr,
) -> tuple[Arr, ...]:
    """Episodes of one (pierce_depth, lookback, rejection) that can fire for *some* threshold pair, sorted by reclaim bar.

    ``bars`` = (open, high, low, close, atr, volume, vma, next_lower, next_higher) and ``levels`` = (index, price,
    confirmed_at, side) arrays, as held by ``LS3Market``; ``pierce_at`` (the ``pierce_column`` of
    ``pierce_depth``), ``resume`` and ``horizon``: see ``ls3.pierce``.
    Returns (r, side, s, price, atr_ref, vol_level, size_level); side +1 long (support), -1 short (resistance).
    Episodes that are bearish on a long reclaim (or bullish on a short one), or fail the weakest thresholds, cannot
    fire and are dropped; they still consumed their level, which is why each level is simulated on its own.
    """
    open_, high, low, close, atr, volume, vma = bars[0], bars[1], bars[2], bars[3], bars[4], bars[5], bars[6]
    next_lower, next_higher = bars[7], bars[8]
    lvl_index, lvl_price, lvl_side = levels[0], levels[1], levels[3]
    n = close.shape[0]
    m = lvl_index.shape[0]
    r_out = np.empty(m, np.int64)
    side_out = np.empty(m, np.int64)
    s_out = np.empty(m, np.int64)
    price_out = np.empty(m)
    atr_out = np.empty(m)
    vol_out = np.empty(m, np.int8)
    size_out = np.empty(m, np.int8)
    k = 0
    for i in range(m):
        lv = lvl_price[i]
        is_long = lvl_side[i] > 0
        b = min(lvl_index[i] + lookback, n - 1)
        s = pierce_at[i]
        if s > b:
            continue
        if s < 0:
            if b <= lvl_index[i] + horizon:
                continue
            thr = lv * (1 - pierce_depth) if is_long else lv * (1 + pierce_depth)
            s = first_pierce(low, high, next_lower, next_higher, resume[i], b, thr, is_long)  # lookback past the records
            if s < 0:
                continue
        r = -1
        for t in range(s, min(s + rejection, n)):
            if (close[t] > lv) if is_long else (close[t] < lv):
                r = t
                break
        if r < 0:
            continue  # expired (a real breakout) or the data ended while armed
        if not ((close[r] > open_[r]) if is_long else (close[r] < open_[r])):
            continue
        vl = 0
        for t in range(s, r + 1):
            vl = max(vl, _volume_level(volume[t], vma[t], vst_values))
        atr_ref = atr[s - 1]
        sl = 0
        if atr_ref > 0:
            rng = high[r] - low[r]
            for c in rcs_values:
                if rng >= c * atr_ref:
                    sl += 1
        if vl == 0 or sl == 0:
            continue
        r_out[k], side_out[k], s_out[k], price_out[k] = r, lvl_side[i], s, lv
        atr_out[k], vol_out[k], size_out[k] = atr_ref, vl, sl
        k += 1
    order = np.argsort(r_out[:k], kind="mergesort")
    return (
        r_out[:k][order],
        side_out[:k][order],
        s_out[:k][order],
        price_out[:k][order],
        atr_out[:k][order],
        vol_out[:k][order],
        size_out[:k][order],
    )


@njit(cache=True)
def _before(s1: int, key1: float, s2: int, key2: float) -> bool:
    return s1 < s2 or (s1 == s2 and key1 < key2)


@njit(cache=True)
def resolve(ep_r: Arr, ep_side: Arr, ep_s: Arr, ep_price: Arr, ep_vol: Arr, ep_size: Arr, vst_i: int, rcs_i: int) -> Arr:
    """Indices of the episodes that become signals for one threshold pair (B.2 signal resolution), in bar order."""
    m = ep_r.shape[0]
    out = np.empty(m, np.int64)
    k = 0
    i = 0
    while i < m:
        r = ep_r[i]
        best_long, best_short = -1, -1
        j = i
        while j < m and ep_r[j] == r:
            if ep_vol[j] > vst_i and ep_size[j] > rcs_i:
                if ep_side[j] > 0:
                    if best_long < 0 or _before(ep_s[j], ep_price[j], ep_s[best_long], ep_price[best_long]):
                        best_long = j
                elif best_short < 0 or _before(ep_s[j], -ep_price[j], ep_s[best_short], -ep_price[best_short]):
                    best_short = j
            j += 1
        if best_long >= 0 and best_short < 0:
            out[k] = best_long
            k += 1
        elif best_short >= 0 and best_long < 0:
            out[k] = best_short
            k += 1
        i = j
    return out[:k]


@njit(cache=True)
def simulate_trade(
    bars: Bars,
    r: int,
    side: int,
    atr_ref: float,
    stop_distance: float,
    target_multiple: float,
    max_hold: int,
    fee: float,
    slip: float,
) -> tuple[int, int, float, float, float, float, float]:
    """One trade from a signal at bar r (entry at open[r+1]); returns (exit_bar, reason, entry_fill, stop, target,
    exit_fill, net). exit_bar is -1 when r is the last bar (no entry)."""
    open_, high, low, close = bars[0], bars[1], bars[2], bars[3]
    n = close.shape[0]
    if r + 1 > n - 1:
        return -1, EOD, 0.0, 0.0, 0.0, 0.0, 0.0
    is_long = side > 0
    ef = open_[r + 1] * (1 + slip) if is_long else open_[r + 1] * (1 - slip)
    sd = stop_distance * atr_ref
    td = target_multiple * sd
    sl = ef - sd if is_long else ef + sd
    tp = ef + td if is_long else ef - td
    exit_bar, reason, price = n - 1, EOD, close[n - 1]
    for u in range(r + 1, n):
        if is_long:
            if u > r + 1 and open_[u] <= sl:
                exit_bar, reason, price = u, SL_GAP, open_[u]
                break
            if u > r + 1 and open_[u] >= tp:
                exit_bar, reason, price = u, TP_GAP, open_[u]
                break
            if low[u] <= sl:
                exit_bar, reason, price = u, SL, sl
                break
            if high[u] >= tp:
                exit_bar, reason, price = u, TP, tp
                break
        else:
            if u > r + 1 and open_[u] >= sl:
                exit_bar, reason, price = u, SL_GAP, open_[u]
                break
            if u > r + 1 and open_[u] <= tp:
                exit_bar, reason, price = u, TP_GAP, open_[u]
                break
            if high[u] >= sl:
                exit_bar, reason, price = u, SL, sl
                break
            if low[u] <= tp:
                exit_bar, reason, price = u, TP, tp
                break
        if u - (r + 1) + 1 >= max_hold:
            exit_bar, reason, price = u, TIME, close[u]
            break
    xf = price * (1 - slip) if is_long else price * (1 + slip)
    gross = (xf - ef) / ef if is_long else (ef - xf) / ef
    net = gross - fee * (1 + xf / ef)
    return exit_bar, reason, ef, sl, tp, xf, net


@njit(cache=True)
def outcomes(
    bars: Bars,
    ep_r: Arr,
    ep_side: Arr,
    ep_atr: Arr,
    stop_values: Arr,
    tm_values: Arr,
    need: Arr,
    max_hold: int,
    fee: float,
    slip: float,
) -> tuple[Arr, Arr]:
    """Exit bar and net return of every episode's trade for the (stop, target) pairs flagged in ``need``:
    arrays [episode, stop, tm] (unflagged pairs hold exit bar -1)."""
    m = ep_r.shape[0]
    exit_bar = np.full((m, stop_values.shape[0], tm_values.shape[0]), -1, np.int64)
    net = np.zeros((m, stop_values.shape[0], tm_values.shape[0]))
    for e in range(m):
        for a in range(stop_values.shape[0]):
            for b in range(tm_values.shape[0]):
                if not need[a, b]:
                    continue
                res = simulate_trade(bars, ep_r[e], ep_side[e], ep_atr[e], stop_values[a], tm_values[b], max_hold, fee, slip)
                exit_bar[e, a, b] = res[0]
                net[e, a, b] = res[6]
    return exit_bar, net


@njit(cache=True)
def take_trades(signals: np.ndarray, ep_r: np.ndarray, exit_bar: np.ndarray, start: int, end: int) -> np.ndarray:
    """One position at a time: keep signals with start <= r < end, an entry bar, and r after the last exit bar."""
    out = np.empty(signals.shape[0], np.int64)
    k = 0
    last_exit = -1
    for i in range(signals.shape[0]):
        e = signals[i]
        r = ep_r[e]
        if r < start or r >= end or exit_bar[e] < 0 or last_exit >= r:
            continue
        out[k] = e
        k += 1
        last_exit = exit_bar[e]
    return out[:k]


@njit(cache=True)
def run_configs(
    ep_r: Arr,
    ep_side: Arr,
    ep_s: Arr,
    ep_price: Arr,
    ep_vol: Arr,
    ep_size: Arr,
    out_exit: Arr,
    out_net: Arr,
    cfg_vst: Arr,
    cfg_rcs: Arr,
    cfg_stop: Arr,
    cfg_tm: Arr,
    start: int,
    end: int,
) -> Arr:
    """Metrics of many configurations sharing one episode table; configs must be sorted by (cfg_vst, cfg_rcs).

    Returns a float64 array [config, 6] in the column order of ``TRADE_METRICS``."""
    c = cfg_vst.shape[0]
    res = np.empty((c, 6))
    signals = np.empty(0, np.int64)
    prev_v, prev_c = -1, -1
    buf = np.empty(ep_r.shape[0])
    for i in range(c):
        if cfg_vst[i] != prev_v or cfg_rcs[i] != prev_c:
            signals = resolve(ep_r, ep_side, ep_s, ep_price, ep_vol, ep_size, cfg_vst[i], cfg_rcs[i])
            prev_v, prev_c = cfg_vst[i], cfg_rcs[i]
        taken = take_trades(signals, ep_r, out_exit[:, cfg_stop[i], cfg_tm[i]], start, end)
        for j in range(taken.shape[0]):
            buf[j] = out_net[taken[j], cfg_stop[i], cfg_tm[i]]
        net_pct, trades, win_rate, pf, mdd, sharpe = trade_stats(buf[: taken.shape[0]])
        res[i, 0], res[i, 1], res[i, 2], res[i, 3], res[i, 4], res[i, 5] = net_pct, trades, win_rate, pf, mdd, sharpe
    return res


@njit(cache=True)
def trade_list(
    bars: Bars,
    episodes_table: Bars,
    vst_i: int,
    rcs_i: int,
    stop_distance: float,
    target_multiple: float,
    max_hold: int,
    fee: float,
    slip: float,
    start: int,
    end: int,
) -> tuple[Arr, Arr, Arr]:
    """All trades of one configuration from its episode table and threshold levels (see ``resolve``), for signals
    with start <= r < end: ([signal_bar, side, exit_bar], reason, [level, entry_fill, stop, target, exit_fill, net])."""
    ep_r, ep_side, ep_s, ep_price, ep_atr, ep_vol, ep_size = episodes_table
    n = bars[3].shape[0]
    sig = resolve(ep_r, ep_side, ep_s, ep_price, ep_vol, ep_size, vst_i, rcs_i)
    k = sig.shape[0]
    ints = np.empty((k, 3), np.int64)
    reason = np.empty(k, np.int8)
    vals = np.empty((k, 6))
    q = 0
    last_exit = -1
    for e in sig:
        r = ep_r[e]
        if r < start or r >= end or last_exit >= r or r + 1 >= n:
            continue
        xb, why, ef, sl, tp, xf, net = simulate_trade(
            bars, r, ep_side[e], ep_atr[e], stop_distance, target_multiple, max_hold, fee, slip
        )
        last_exit = xb
        ints[q, 0], ints[q, 1], ints[q, 2], reason[q] = r, ep_side[e], xb, why
        vals[q, 0], vals[q, 1], vals[q, 2], vals[q, 3], vals[q, 4], vals[q, 5] = ep_price[e], ef, sl, tp, xf, net
        q += 1
    return ints[:q], reason[:q], vals[:q]
