"""Depth rows (one per message × side × level, the store / shared-Parquet layout) regrouped into diff messages.

Why: the store keeps one row per price level; the book applies whole messages. ``DepthMessages`` is the columnar
view both the exact per-message replay and the numba batch kernels read, built once from the same frame whether it
came from ``MarketStore.depth_updates`` or from ``read_shared`` on a Parquet file (one loader per concept).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pivotal.core.errors import UserInputError
from pivotal.data.orderbook.book import NO_PU

__all__ = ["NO_PU", "DepthMessages", "snapshot_levels"]


@dataclass(frozen=True)
class DepthMessages:
    """Diff messages in arrival order. Message ``i`` owns rows ``start[i]:start[i + 1]``.

    Per message: ``first_id`` (U), ``final_id`` (u), ``prev_id`` (pu, ``NO_PU`` for spot), ``event_ms`` (E, exchange
    clock), ``local_ns`` (recorder clock). Per row: ``is_bid``, ``price``, ``qty`` (absolute, 0 removes the level)."""

    start: np.ndarray
    first_id: np.ndarray
    final_id: np.ndarray
    prev_id: np.ndarray
    event_ms: np.ndarray
    local_ns: np.ndarray
    is_bid: np.ndarray
    price: np.ndarray
    qty: np.ndarray

    def __len__(self) -> int:
        return len(self.first_id)

    @property
    def rows(self) -> int:
        return len(self.price)

    @property
    def has_pu(self) -> bool:
        return bool(len(self.prev_id)) and bool(self.prev_id[0] != NO_PU)

    def levels(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(bids, asks) of message ``i`` as (k, 2) arrays of (price, qty)."""
        a, b = int(self.start[i]), int(self.start[i + 1])
        rows = np.column_stack((self.price[a:b], self.qty[a:b]))
        bid = self.is_bid[a:b]
        return rows[bid], rows[~bid]

    def pu(self, i: int) -> int | None:
        p = int(self.prev_id[i])
        return None if p == NO_PU else p

    def drop(self, i: int) -> DepthMessages:
        """A copy without message ``i`` (fault injection: a lost message)."""
        a, b = int(self.start[i]), int(self.start[i + 1])
        keep_rows = np.r_[0:a, b : self.rows]
        keep = np.r_[0:i, i + 1 : len(self)]
        lengths = np.diff(self.start)[keep]
        start = np.zeros(len(keep) + 1, dtype=np.int64)
        np.cumsum(lengths, out=start[1:])
        return DepthMessages(
            start,
            self.first_id[keep],
            self.final_id[keep],
            self.prev_id[keep],
            self.event_ms[keep],
            self.local_ns[keep],
            self.is_bid[keep_rows],
            self.price[keep_rows],
            self.qty[keep_rows],
        )

    def head(self, n: int) -> DepthMessages:
        """The first ``n`` messages (prefix replay)."""
        end = int(self.start[min(n, len(self))])
        return DepthMessages(
            self.start[: min(n, len(self)) + 1].copy(),
            self.first_id[:n],
            self.final_id[:n],
            self.prev_id[:n],
            self.event_ms[:n],
            self.local_ns[:n],
            self.is_bid[:end],
            self.price[:end],
            self.qty[:end],
        )

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, source: str = "depth updates") -> DepthMessages:
        """Group store/Parquet depth-update rows into messages ordered by (local_ts_ns, final_update_id)."""
        needed = ("local_ts_ns", "event_ts_ms", "first_update_id", "final_update_id", "side", "price", "qty")
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise UserInputError(f"{source}: missing column(s) {', '.join(missing)}; import the depth_updates file again")
        if frame["event_ts_ms"].isna().any():
            raise UserInputError(f"{source}: field event_ts_ms has nulls; depth rows need the exchange event time (E)")
        local = frame["local_ts_ns"].to_numpy(np.int64)
        final = frame["final_update_id"].to_numpy(np.int64)
        order = np.lexsort((final, local))
        local = local[order]
        final = final[order]
        first = frame["first_update_id"].to_numpy(np.int64)[order]
        if "prev_final_update_id" in frame.columns:
            prev = frame["prev_final_update_id"].astype("Int64").fillna(NO_PU).to_numpy(np.int64)[order]
        else:
            prev = np.full(len(frame), NO_PU, dtype=np.int64)
        event = frame["event_ts_ms"].astype("Int64").to_numpy(np.int64)[order]
        side = frame["side"].to_numpy()[order]
        is_bid = side == "bid"
        if not np.all(is_bid | (side == "ask")):
            raise UserInputError(f"{source}: field side must be 'bid' or 'ask'")
        n = len(frame)
        boundary = np.ones(n, dtype=bool)
        if n:
            boundary[1:] = (final[1:] != final[:-1]) | (local[1:] != local[:-1]) | (first[1:] != first[:-1])
        heads = np.flatnonzero(boundary)
        start = np.append(heads, n).astype(np.int64)
        return cls(
            start,
            np.ascontiguousarray(first[heads]),
            np.ascontiguousarray(final[heads]),
            np.ascontiguousarray(prev[heads]),
            np.ascontiguousarray(event[heads]),
            np.ascontiguousarray(local[heads]),
            np.ascontiguousarray(is_bid),
            np.ascontiguousarray(frame["price"].to_numpy(np.float64)[order]),
            np.ascontiguousarray(frame["qty"].to_numpy(np.float64)[order]),
        )


def snapshot_levels(frame: pd.DataFrame, source: str = "depth snapshot") -> tuple[int, np.ndarray, np.ndarray, int]:
    """The first REST snapshot in ``frame``: (last_update_id, bids (k, 2), asks (k, 2), local_ts_ns)."""
    if frame.empty:
        raise UserInputError(f"{source}: no depth snapshot; import the book_snapshot file (pivotal data import) first")
    ids = frame["last_update_id"].to_numpy(np.int64)
    first = int(ids.min())
    one = frame[ids == first]
    rows = np.column_stack((one["price"].to_numpy(np.float64), one["qty"].to_numpy(np.float64)))
    bid = (one["side"] == "bid").to_numpy()
    return first, rows[bid], rows[~bid], int(one["local_ts_ns"].to_numpy(np.int64).min())
