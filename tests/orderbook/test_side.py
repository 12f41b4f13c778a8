"""The blocked side's +inf padding: the in-block search counts over all CAP slots, so every slot past a block's count
must hold +inf through splits, deletes, freed and reused blocks, and growth."""

from __future__ import annotations

import numpy as np

from pivotal.data.orderbook.side import CAP, grow_side, new_side, side_levels, side_set


def _check(side: tuple[np.ndarray, ...], expected: dict[float, float]) -> None:
    keys, _, cnt, order, _, meta, _ = side
    for p in range(int(meta[0])):
        b = order[p]
        assert np.all(np.isposinf(keys[b, cnt[b] :])), f"block {b} tail not +inf"
    out = np.empty((len(expected) + 1, 2))
    n = side_levels(keys, side[1], cnt, order, meta, len(expected) + 1, out)
    assert out[:n].tolist() == [[k, q] for k, q in sorted(expected.items(), reverse=True)]


def _apply(side: tuple[np.ndarray, ...], book: dict[float, float], key: float, qty: float) -> None:
    assert side_set(*side, key, qty)
    if qty == 0.0:
        book.pop(key, None)
    else:
        book[key] = qty


def test_padding_survives_splits_deletes_and_block_reuse() -> None:
    side = new_side(64)
    book: dict[float, float] = {}
    rng = np.random.default_rng(7)
    for key in rng.permutation(5 * CAP):  # random inserts: many splits
        _apply(side, book, float(key), 1.0 + key)
    _check(side, book)
    for key in range(0, 5 * CAP, 2):  # deletes in every block, lo == 0 included
        _apply(side, book, float(key), 0.0)
    _check(side, book)
    for key in range(5 * CAP):  # empty every block: all of them go back to the free stack
        _apply(side, book, float(key), 0.0)
    assert side[5][0] == 0 and side[5][2] == 0
    side = grow_side(side)
    for key in rng.permutation(3 * CAP) + 0.5:  # reused (and grown) blocks start with stale keys: padded on reuse
        _apply(side, book, float(key), 2.0)
    _check(side, book)
    _apply(side, book, 10.5, 7.0)  # an update of an existing level, found by the counting search
    _apply(side, book, -1.0, 3.0)  # below every block's first key
    _apply(side, book, 1e9, 4.0)  # above everything: the last block
    _check(side, book)
