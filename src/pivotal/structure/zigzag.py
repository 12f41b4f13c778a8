"""Alternating (zigzag) display view of one pivot level (spec A.6). For drawing only, never for training.

Rule: merge the level's H and L pivots by (index, outside-bar order), then collapse every run of same-type points to
its most extreme member (the earlier one on a tie). The last vertex is *provisional*: a later, more extreme pivot of the
same type would replace it, which is exactly the repainting the detector itself never does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pivotal.structure.types import PivotArray, PivotSet

HIGH, LOW = 1, -1


@dataclass(frozen=True)
class Zigzag:
    """Vertices in time order. ``kind`` is +1 (high) / -1 (low); ``confirmed_at`` is the bar that confirmed the pivot."""

    index: np.ndarray
    price: np.ndarray
    kind: np.ndarray
    confirmed_at: np.ndarray

    def __len__(self) -> int:
        return len(self.index)

    @property
    def provisional(self) -> np.ndarray:
        """True for the last vertex only: it may still move until an opposite pivot after it is confirmed."""
        flags = np.zeros(len(self.index), dtype=bool)
        if len(flags):
            flags[-1] = True
        return flags

    def labels(self) -> list[str]:
        return [
            f"{'H' if k == HIGH else 'L'}{int(i)}({float(p):g})"
            for i, p, k in zip(self.index, self.price, self.kind, strict=True)
        ]


def _merge_order(highs: PivotArray, lows: PivotArray, open_: np.ndarray | None, close: np.ndarray | None) -> np.ndarray:
    """Sort keys: bar index, then the outside-bar rule (bullish bar: low printed first; bearish: high first)."""
    index = np.concatenate([highs.index, lows.index]).astype(np.int64)
    kind = np.concatenate([np.full(len(highs), HIGH), np.full(len(lows), LOW)])
    shared = np.intersect1d(highs.index, lows.index)
    if len(shared) and (open_ is None or close is None):
        raise ValueError(f"bar {int(shared[0])} is both a high and a low pivot: pass open and close to order them")
    rank: np.ndarray = np.zeros(len(index), dtype=np.int64)
    if len(shared) and open_ is not None and close is not None:
        bullish = close[index] >= open_[index]
        rank = np.where(bullish == (kind == HIGH), 1, 0)  # the later-printed extreme sorts second
    return np.lexsort((rank, index))


def zigzag(highs: PivotArray, lows: PivotArray, open_: np.ndarray | None = None, close: np.ndarray | None = None) -> Zigzag:
    """Zigzag of one level from its high and low pivots (``open_``/``close`` needed only for outside bars)."""
    order = _merge_order(highs, lows, open_, close)
    index = np.concatenate([highs.index, lows.index]).astype(np.int64)[order]
    price = np.concatenate([highs.price, lows.price]).astype(np.float64)[order]
    kind = np.concatenate([np.full(len(highs), HIGH), np.full(len(lows), LOW)])[order]
    conf = np.concatenate([highs.confirmed_at, lows.confirmed_at]).astype(np.int64)[order]
    if len(index) == 0:
        return Zigzag(index, price, kind, conf)
    run = np.cumsum(np.r_[0, kind[1:] != kind[:-1]])
    # Within each run, the most extreme first: sort by (run, -kind*price, position) and keep the first of each run.
    pos = np.arange(len(index))
    best = np.lexsort((pos, -kind * price, run))
    keep = best[np.r_[True, run[best][1:] != run[best][:-1]]]
    return Zigzag(index[keep], price[keep], kind[keep], conf[keep])


def zigzag_of_level(pivots: PivotSet, level: int, open_: np.ndarray | None = None, close: np.ndarray | None = None) -> Zigzag:
    return zigzag(pivots.get(level, "H"), pivots.get(level, "L"), open_, close)


def zigzag_at(pivots: PivotSet, level: int, t: int, open_: np.ndarray | None = None, close: np.ndarray | None = None) -> Zigzag:
    """The zigzag a live viewer sees at the close of bar ``t`` (from pivots confirmed by then)."""
    return zigzag_of_level(pivots.known_at(t), level, open_, close)
