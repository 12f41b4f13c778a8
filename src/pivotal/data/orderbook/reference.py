"""Plain-Python dict book: the readable reference ``OrderBook`` is tested against and the benchmark's floor.

Same sequence rules and API subset as ``OrderBook`` (it reuses ``OrderBook.check_sequence`` semantics through the
shared ``SequenceGap``); best levels are found by scanning the dict, which is what a naive implementation does.
"""

from __future__ import annotations

from collections.abc import Sequence

from pivotal.data.orderbook.book import SequenceGap

__all__ = ["DictOrderBook"]


class DictOrderBook:
    """price -> qty dicts per side; O(levels) best bid/ask."""

    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.last_update_id = -1
        self.synced = False
        self._bridged = False

    def apply_snapshot(self, last_update_id: int, bids: Sequence[Sequence[float]], asks: Sequence[Sequence[float]]) -> None:
        self.bids = {float(p): float(q) for p, q in bids if float(q) != 0.0}
        self.asks = {float(p): float(q) for p, q in asks if float(q) != 0.0}
        self.last_update_id = int(last_update_id)
        self.synced = True
        self._bridged = False

    def apply_diff(
        self,
        first_update_id: int,
        final_update_id: int,
        prev_final_update_id: int | None,
        bids: Sequence[Sequence[float]],
        asks: Sequence[Sequence[float]],
    ) -> bool:
        last = self.last_update_id
        if not self.synced:
            raise SequenceGap("snapshot", -1, -1, first_update_id, final_update_id)
        if final_update_id <= last:
            return False
        if not self._bridged:
            bridged = first_update_id <= last + 1 or (prev_final_update_id is not None and prev_final_update_id <= last)
            if not bridged:
                self.synced = False
                raise SequenceGap("bridge", last + 1, first_update_id, first_update_id, final_update_id)
        elif prev_final_update_id is not None and prev_final_update_id != last:
            self.synced = False
            raise SequenceGap("pu", last, prev_final_update_id, first_update_id, final_update_id)
        elif prev_final_update_id is None and first_update_id != last + 1:
            self.synced = False
            raise SequenceGap("U", last + 1, first_update_id, first_update_id, final_update_id)
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for p, q in levels:
                if q == 0.0:
                    side.pop(p, None)
                else:
                    side[p] = q
        self.last_update_id = int(final_update_id)
        self._bridged = True
        return True

    def best_bid(self) -> tuple[float, float] | None:
        if not self.bids:
            return None
        p = max(self.bids)
        return p, self.bids[p]

    def best_ask(self) -> tuple[float, float] | None:
        if not self.asks:
            return None
        p = min(self.asks)
        return p, self.asks[p]
