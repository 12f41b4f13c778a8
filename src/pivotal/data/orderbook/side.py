"""One side of an L2 book as a blocked sorted array (numba kernels): exact levels, cheap inserts and deletes.

Why blocks: a flat sorted array must shift every level between the change and its end on each insert or delete;
on the recorded Binance captures that is 80-350 levels per update (diffs touch levels far from the touch as well).
Here levels live in blocks of at most ``CAP`` sorted keys, the blocks in key order (``order``), so an update shifts
at most ``CAP`` keys plus, rarely, the block order. Keys ascend and the best level is the *last* key of the last
block (bids keyed by price, asks by -price).

Arrays of a side (``new_side``): ``keys``/``qtys`` (blocks × CAP; the unused tail of a block in use holds +inf, so
the in-block search is a branch-free count over all ``CAP`` keys that the compiler vectorises), ``cnt`` (levels per
block), ``order`` (block ids in key order), ``free`` (stack of unused block ids), ``meta`` = [blocks in use, free
ids, levels], ``firsts`` (the first key of the block at each position of ``order``: the block search reads one small
contiguous array).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["CAP", "HALF", "blocks_for", "grow_side", "new_side", "side_best", "side_levels", "side_set", "side_set_many"]

CAP = 64
HALF = CAP // 2

Side = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def blocks_for(inserts: int) -> int:
    """Blocks that can never run out for ``inserts`` level insertions (each split needs HALF inserts; no merges)."""
    return inserts // HALF + 2


def new_side(blocks: int) -> Side:
    return (
        np.empty((blocks, CAP), np.float64),
        np.empty((blocks, CAP), np.float64),
        np.zeros(blocks, np.int64),
        np.empty(blocks, np.int64),
        np.arange(blocks - 1, -1, -1, dtype=np.int64),
        np.array([0, blocks, 0], np.int64),
        np.empty(blocks, np.float64),
    )


def grow_side(side: Side) -> Side:
    """The same levels with twice the blocks."""
    keys, qtys, cnt, order, free, meta, firsts = side
    old = len(cnt)
    bigger = new_side(2 * old)
    bigger[0][:old] = keys
    bigger[1][:old] = qtys
    bigger[2][:old] = cnt
    bigger[3][:old] = order
    nfree = int(meta[1])
    bigger[4][:nfree] = free[:nfree]
    bigger[4][nfree : nfree + old] = np.arange(2 * old - 1, old - 1, -1)
    bigger[5][:] = (meta[0], nfree + old, meta[2])
    bigger[6][:old] = firsts
    return bigger


@njit(cache=True, inline="always")  # inlined into the replay loops: no call, no array refcounting per level
def side_set(
    keys: np.ndarray, qtys: np.ndarray, cnt: np.ndarray, order: np.ndarray, free: np.ndarray, meta: np.ndarray,
    firsts: np.ndarray, key: float, qty: float,
) -> bool:  # fmt: skip
    """Set the level ``key`` to ``qty`` (0 removes it). False when a block was needed and none is free (no change)."""
    nblk = meta[0]
    if nblk == 0:
        if qty == 0.0:
            return True
        if meta[1] == 0:
            return False
        meta[1] -= 1
        b = free[meta[1]]
        keys[b, :] = np.inf
        keys[b, 0] = key
        qtys[b, 0] = qty
        cnt[b] = 1
        order[0] = b
        firsts[0] = key
        meta[0] = 1
        meta[2] += 1
        return True
    if firsts[nblk - 1] <= key:  # most updates are near the touch: the last block
        p = nblk - 1
    else:
        p = 0  # branchless: last block (of the first nblk - 1) whose first key <= key, else 0
        length = nblk - 1
        while length > 1:
            half = length >> 1
            if firsts[p + half] <= key:
                p += half
            length -= half
    b = order[p]
    c = cnt[b]
    lo = 0  # lower bound (first index with keys >= key) by counting over the whole +inf-padded block: SIMD, no branch
    row = keys[b]
    for j in range(CAP):
        lo += row[j] < key
    if lo < c and keys[b, lo] == key:
        if qty != 0.0:
            qtys[b, lo] = qty
            return True
        for j in range(lo, c - 1):
            keys[b, j] = keys[b, j + 1]
            qtys[b, j] = qtys[b, j + 1]
        keys[b, c - 1] = np.inf
        cnt[b] = c - 1
        meta[2] -= 1
        if c == 1:
            for q in range(p, nblk - 1):
                order[q] = order[q + 1]
                firsts[q] = firsts[q + 1]
            meta[0] = nblk - 1
            free[meta[1]] = b
            meta[1] += 1
        elif lo == 0:
            firsts[p] = keys[b, 0]
        return True
    if qty == 0.0:
        return True
    if c == CAP:
        if meta[1] == 0:
            return False
        meta[1] -= 1
        nb = free[meta[1]]
        keys[nb, :] = np.inf
        for j in range(HALF):
            keys[nb, j] = keys[b, HALF + j]
            qtys[nb, j] = qtys[b, HALF + j]
        cnt[nb] = HALF
        cnt[b] = HALF
        keys[b, HALF:] = np.inf
        for q in range(nblk, p + 1, -1):
            order[q] = order[q - 1]
            firsts[q] = firsts[q - 1]
        order[p + 1] = nb
        firsts[p + 1] = keys[nb, 0]
        meta[0] = nblk + 1
        c = HALF
        if lo > HALF:
            b = nb
            lo -= HALF
            p += 1
    for j in range(c, lo, -1):
        keys[b, j] = keys[b, j - 1]
        qtys[b, j] = qtys[b, j - 1]
    keys[b, lo] = key
    qtys[b, lo] = qty
    cnt[b] = c + 1
    meta[2] += 1
    if lo == 0:
        firsts[p] = key
    return True


@njit(cache=True)
def side_set_many(
    keys: np.ndarray, qtys: np.ndarray, cnt: np.ndarray, order: np.ndarray, free: np.ndarray, meta: np.ndarray,
    firsts: np.ndarray, levels: np.ndarray, sign: float, start: int,
) -> int:  # fmt: skip
    """Apply (price, qty) rows from ``start`` on (key = sign × price); the row that found no free block, or -1."""
    for i in range(start, levels.shape[0]):
        if not side_set(keys, qtys, cnt, order, free, meta, firsts, sign * levels[i, 0], levels[i, 1]):
            return i
    return -1


@njit(cache=True)
def side_best(keys: np.ndarray, qtys: np.ndarray, cnt: np.ndarray, order: np.ndarray, meta: np.ndarray) -> tuple[float, float]:
    """(key, qty) of the best (highest-key) level; (nan, nan) when empty."""
    if meta[0] == 0:
        return np.nan, np.nan
    b = order[meta[0] - 1]
    return keys[b, cnt[b] - 1], qtys[b, cnt[b] - 1]


@njit(cache=True)
def side_levels(
    keys: np.ndarray, qtys: np.ndarray, cnt: np.ndarray, order: np.ndarray, meta: np.ndarray, n: int, out: np.ndarray
) -> int:
    """Write the best ``n`` levels, best first, as (key, qty) rows into ``out``; the number written."""
    k = 0
    for p in range(meta[0] - 1, -1, -1):
        b = order[p]
        for j in range(cnt[b] - 1, -1, -1):
            if k >= n:
                return k
            out[k, 0] = keys[b, j]
            out[k, 1] = qtys[b, j]
            k += 1
    return k
