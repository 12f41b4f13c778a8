"""Exact L2 book from a REST snapshot plus diff-depth messages, with Binance's update-id sequence rules.

Why: the COB features and any book-based backtest are only as good as the book; a silently skipped message leaves a
stale level forever. So every diff is checked against the update-id chain and a break raises ``SequenceGap`` (the
caller resyncs from a new snapshot) instead of being papered over.

Rules (https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams, "How to manage a local order
book correctly"; USD-M: derivatives "Diff. Book Depth Streams"):

* a message with ``u <= lastUpdateId`` of the snapshot (or of the last applied message) is stale and skipped;
* spot (no ``pu``): the first applied message must bridge the snapshot, ``U <= lastUpdateId + 1 <= u``; every later
  one must continue the chain, ``U == previous u + 1``;
* USD-M (``pu`` given): update ids are shared across symbols, so ``U`` jumps; the chain is ``pu == previous u`` and
  the first applied message must have ``pu <= lastUpdateId`` (nothing of this symbol happened between the snapshot
  and the message; the recorded ETHUSDT USD-M capture starts exactly like that, with ``U > lastUpdateId + 1``).

Levels carry the absolute quantity; 0 removes the level. Each side is a blocked sorted array
(``data.orderbook.side``: bids keyed by price, asks by -price, best level last); the per-message work runs in one
numba call.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from pivotal.core.errors import PivotalError
from pivotal.data.orderbook.side import Side, blocks_for, grow_side, new_side, side_best, side_levels, side_set_many

__all__ = ["NO_PU", "OrderBook", "SequenceGap", "as_levels", "sequence_status"]

_INITIAL_BLOCKS = 64
NO_PU = -1  # prev_final_update_id of a spot message (no pu)

# sequence_status codes
APPLY = 0
STALE = 1
GAP_BRIDGE = 2
GAP_U = 3
GAP_PU = 4
GAP_RULES = {GAP_BRIDGE: "bridge", GAP_U: "U", GAP_PU: "pu"}


class SequenceGap(PivotalError):
    """A diff message does not continue the update-id chain: one or more messages were lost; resync from a snapshot.

    ``expected`` / ``received`` are the ids the rule compared (``rule`` says which: ``'U'`` for spot, ``'pu'`` for
    USD-M, ``'bridge'`` for the first message after a snapshot, ``'snapshot'`` when no snapshot was applied)."""

    def __init__(self, rule: str, expected: int, received: int, first_update_id: int, final_update_id: int) -> None:
        self.rule = rule
        self.expected = expected
        self.received = received
        self.first_update_id = first_update_id
        self.final_update_id = final_update_id
        self.message_index: int | None = None  # position of the message in a batch replay, when known
        super().__init__(self._describe())

    def _describe(self) -> str:
        span = f"message U={self.first_update_id} u={self.final_update_id}"
        if self.rule == "snapshot":
            return f"depth diff before any snapshot ({span}); apply a REST depth snapshot first"
        if self.rule == "bridge":
            return (
                f"depth sequence gap: first message after the snapshot must bridge lastUpdateId+1={self.expected}, "
                f"got {span} (received {self.received}); fetch a newer snapshot"
            )
        return (
            f"depth sequence gap: expected {self.rule}={self.expected}, received {self.rule}={self.received} ({span}); "
            "messages were lost, resync from a new snapshot"
        )


@njit(cache=True)
def sequence_status(last: int, bridged: bool, first_id: int, final_id: int, prev_id: int) -> tuple[int, int, int]:
    """The update-id rule (module doc) for one message: (code, expected id, received id); ``prev_id`` = ``NO_PU`` for
    spot. Codes: ``APPLY``, ``STALE``, ``GAP_BRIDGE``, ``GAP_U``, ``GAP_PU``. Shared by ``OrderBook`` and the batch
    kernels so the rule exists once."""
    if final_id <= last:
        return STALE, 0, 0
    if not bridged:
        if first_id <= last + 1 or (prev_id != NO_PU and prev_id <= last):
            return APPLY, 0, 0
        return GAP_BRIDGE, last + 1, first_id
    if prev_id != NO_PU:
        if prev_id != last:
            return GAP_PU, last, prev_id
        return APPLY, 0, 0
    if first_id != last + 1:
        return GAP_U, last + 1, first_id
    return APPLY, 0, 0


def as_levels(levels: Sequence[Sequence[float]] | np.ndarray, name: str) -> np.ndarray:
    """(price, qty) pairs as a float64 (N, 2) array; strings (raw exchange JSON) are accepted."""
    array = np.asarray(levels, dtype=np.float64)
    if array.size == 0:
        return np.empty((0, 2), dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 2:
        from pivotal.core.errors import UserInputError

        raise UserInputError(f"order book {name}: expected (price, qty) pairs, got shape {array.shape}")
    return array


class OrderBook:
    """Exact L2 book of one symbol. ``apply_snapshot`` then ``apply_diff`` per message; see the module doc for rules."""

    def __init__(self, blocks: int = _INITIAL_BLOCKS) -> None:
        self._blocks = max(1, blocks)  # initial blocks per side (``data.orderbook.side``); grows on demand
        self._bids: Side = new_side(blocks)
        self._asks: Side = new_side(blocks)
        self._last_update_id = -1
        self._synced = False
        self._bridged = False

    # -- state ---------------------------------------------------------------------------------------------------
    @property
    def last_update_id(self) -> int:
        """``u`` of the last applied message (the snapshot's lastUpdateId right after a snapshot); -1 before any."""
        return self._last_update_id

    @property
    def synced(self) -> bool:
        """True after a snapshot until a sequence gap; diffs are refused while False."""
        return self._synced

    @property
    def bridged(self) -> bool:
        """True once a diff was applied after the snapshot (the chain rule replaces the bridge rule)."""
        return self._bridged

    def __len__(self) -> int:
        return int(self._bids[5][2] + self._asks[5][2])

    def __repr__(self) -> str:
        return (
            f"OrderBook(levels={len(self)}, last_update_id={self._last_update_id}, "
            f"best_bid={self.best_bid()}, best_ask={self.best_ask()})"
        )

    # -- updates -------------------------------------------------------------------------------------------------
    def apply_snapshot(
        self,
        last_update_id: int,
        bids: Sequence[Sequence[float]] | np.ndarray,
        asks: Sequence[Sequence[float]] | np.ndarray,
    ) -> None:
        """Replace the whole book with a REST depth snapshot (any level order; qty 0 rows are ignored)."""
        b = as_levels(bids, "snapshot bids")
        a = as_levels(asks, "snapshot asks")
        self._bids = new_side(max(self._blocks, blocks_for(len(b))))
        self._asks = new_side(max(self._blocks, blocks_for(len(a))))
        self._apply(b, a)
        self._last_update_id = int(last_update_id)
        self._synced = True
        self._bridged = False

    def apply_diff(
        self,
        first_update_id: int,
        final_update_id: int,
        prev_final_update_id: int | None,
        bids: Sequence[Sequence[float]] | np.ndarray,
        asks: Sequence[Sequence[float]] | np.ndarray,
    ) -> bool:
        """Apply one diff message (``U``, ``u``, ``pu`` or None for spot); False when stale (skipped).

        Raises ``SequenceGap`` on a break of the chain; the book then stays unsynced until the next snapshot."""
        self.check_sequence(first_update_id, final_update_id, prev_final_update_id)
        if final_update_id <= self._last_update_id:
            return False
        self._apply(as_levels(bids, "diff bids"), as_levels(asks, "diff asks"))
        self._last_update_id = int(final_update_id)
        self._bridged = True
        return True

    def apply_levels(
        self,
        update_id: int,
        bids: Sequence[Sequence[float]] | np.ndarray,
        asks: Sequence[Sequence[float]] | np.ndarray,
    ) -> None:
        """Apply one update of a venue whose sequence rule is checked by its own adapter (Coinbase, Bybit, OKX:
        ``data.orderbook.venues``); ``update_id`` becomes ``last_update_id``. Refused while unsynced."""
        if not self._synced:
            raise SequenceGap("snapshot", -1, -1, update_id, update_id)
        self._apply(as_levels(bids, "update bids"), as_levels(asks, "update asks"))
        self._last_update_id = int(update_id)
        self._bridged = True

    def mark_unsynced(self) -> None:
        """A venue adapter saw a gap or a checksum failure: refuse updates until the next snapshot."""
        self._synced = False

    def _apply(self, bids: np.ndarray, asks: np.ndarray) -> None:
        for levels, sign in ((bids, 1.0), (asks, -1.0)):
            start = 0
            while True:
                side = self._bids if sign > 0 else self._asks
                stuck = side_set_many(*side, levels, sign, start)
                if stuck < 0:
                    break
                start = stuck
                if sign > 0:
                    self._bids = grow_side(self._bids)
                else:
                    self._asks = grow_side(self._asks)

    def check_sequence(self, first_update_id: int, final_update_id: int, prev_final_update_id: int | None) -> None:
        """Raise ``SequenceGap`` unless the message is stale or continues the chain (no state change but the
        unsynced flag on a gap)."""
        if not self._synced:
            raise SequenceGap("snapshot", -1, -1, first_update_id, final_update_id)
        pu = NO_PU if prev_final_update_id is None else prev_final_update_id
        code, expected, received = sequence_status(self._last_update_id, self._bridged, first_update_id, final_update_id, pu)
        if code >= GAP_BRIDGE:
            self._synced = False
            raise SequenceGap(GAP_RULES[code], expected, received, first_update_id, final_update_id)

    # -- queries -------------------------------------------------------------------------------------------------
    def best_bid(self) -> tuple[float, float] | None:
        """(price, qty) of the highest bid, None when the side is empty."""
        keys, qtys, cnt, order, _, meta, _ = self._bids
        if meta[0] == 0:
            return None
        key, qty = side_best(keys, qtys, cnt, order, meta)
        return float(key), float(qty)

    def best_ask(self) -> tuple[float, float] | None:
        """(price, qty) of the lowest ask, None when the side is empty."""
        keys, qtys, cnt, order, _, meta, _ = self._asks
        if meta[0] == 0:
            return None
        key, qty = side_best(keys, qtys, cnt, order, meta)
        return float(-key), float(qty)

    def mid(self) -> float | None:
        """(best bid + best ask) / 2, None when a side is empty."""
        bid, ask = self.best_bid(), self.best_ask()
        return None if bid is None or ask is None else (bid[0] + ask[0]) / 2.0

    def top(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Best ``n`` levels per side as (k, 2) arrays of (price, qty): bids descending, asks ascending (copies)."""
        out = []
        for (keys, qtys, cnt, order, _, meta, _), sign in ((self._bids, 1.0), (self._asks, -1.0)):
            rows = np.empty((min(n, int(meta[2])), 2), np.float64)
            k = side_levels(keys, qtys, cnt, order, meta, len(rows), rows)
            rows[:k, 0] *= sign
            out.append(rows[:k])
        return out[0], out[1]

    def sides(self) -> tuple[Side, Side]:
        """The (bids, asks) arrays of ``data.orderbook.side`` for numba kernels; valid until the next update."""
        return self._bids, self._asks
