"""Incremental Williams market structure (spec A.5): closed bars in, confirmed pivot events out, never retracted.

Independent of the batch engine on purpose: the property tests compare the two. State is a handful of short buffers
(the last 2k+1 effective bars, the last 2m+1 pivots per level and kind), so it persists as a small JSON dict and a
restored detector continues exactly like an uninterrupted one. Pure Python, tuned for the no-event path.
"""

from __future__ import annotations

import math
import operator
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pivotal.structure.pivots import bar_problem
from pivotal.structure.types import Kind, PivotArray, PivotEvent, PivotParams, PivotSet

STATE_VERSION = 1
_KINDS: tuple[Kind, Kind] = ("H", "L")
_price_of = operator.itemgetter(1)  # of a window entry (index, price, ts)


@dataclass(frozen=True)
class PendingPivot:
    """A candidate that passes its test against every neighbour seen so far but still lacks right neighbours.

    For display only: it may never be confirmed, so never feed it into features or labels (spec A.7 item 8).
    """

    level: int
    kind: Kind
    index: int
    price: float
    ts: int | None = None


class SimplePivotLevel:
    """Confirmed pivots of one level (gogo2 name, spec A.6), the most recent ``history`` of each kind."""

    __slots__ = ("highs", "level", "lows")

    def __init__(self, level: int, history: int) -> None:
        self.level = level
        self.highs: deque[PivotEvent] = deque(maxlen=history)
        self.lows: deque[PivotEvent] = deque(maxlen=history)

    def last_high(self) -> PivotEvent | None:
        return self.highs[-1] if self.highs else None

    def last_low(self) -> PivotEvent | None:
        return self.lows[-1] if self.lows else None


def _selected(values: list[float], centre: int, is_low: bool, left_strict: bool, right_strict: bool) -> bool:
    """The tie rule of spec A.3 for ``values[centre]`` against all of ``values`` (left part first, it fails most)."""
    v = values[centre]
    left = values[:centre]
    right = values[centre + 1 :]
    if is_low:
        if left and not (v < min(left) if left_strict else v <= min(left)):
            return False
        return not right or (v < min(right) if right_strict else v <= min(right))
    if left and not (v > max(left) if left_strict else v >= max(left)):
        return False
    return not right or (v > max(right) if right_strict else v >= max(right))


def _wins_tie(values: list[float], extreme: float, centre: int, tie: str) -> bool:
    """The tie rule of spec A.3 for ``values[centre] == extreme``, an extreme of ``values`` (no equal value to its
    left under ``first``, to its right under ``last``, on either side under ``strict``); C-level scans, no slicing."""
    if tie == "first":
        return values.index(extreme) == centre
    if tie == "strict":
        return values.count(extreme) == 1
    return extreme not in values[centre + 1 :]


class WilliamsMarketStructure:
    """The detector: ``on_bar`` per closed bar returns the pivots confirmed at that bar's close (spec A.5)."""

    __slots__ = (
        "_b_high",
        "_b_low",
        "_b_meta",
        "_k",
        "_last_index",
        "_left_strict",
        "_m",
        "_mother_high",
        "_mother_low",
        "_right_strict",
        "_skip_inside",
        "_span",
        "_tie",
        "_win",
        "_wspan",
        "history",
        "levels",
        "params",
    )

    def __init__(self, params: PivotParams = PivotParams(), history: int = 16) -> None:
        if history < 1:
            raise ValueError(f"history must be >= 1 (got {history})")
        self.params = params
        self.history = history
        self._skip_inside = params.skip_inside
        self._k = params.k
        self._span = 2 * params.k + 1
        self._m = params.m
        self._wspan = 2 * params.m + 1
        self._left_strict = params.tie != "last"
        self._right_strict = params.tie != "first"
        self._last_index: int | None = None
        # mother = last non-inside bar; (-inf, +inf) before the first bar so that bar 0 is never inside
        self._mother_high = -math.inf
        self._mother_low = math.inf
        # the last 2k+1 effective bars; plain lists (trimmed from the left) are the fastest to slice and max()
        self._b_high: list[float] = []
        self._b_low: list[float] = []
        self._b_meta: deque[tuple[int, bool, int | None]] = deque(maxlen=self._span)  # (index, close >= open, ts)
        self._tie = params.tie
        # _win[lvl-1][0 = H, 1 = L]: last 2m+1 level-lvl pivots as (index, price, ts), lvl = 1..levels-1
        self._win: list[tuple[deque, deque]] = [
            (deque(maxlen=self._wspan), deque(maxlen=self._wspan)) for _ in range(params.levels - 1)
        ]
        self.levels: list[SimplePivotLevel] = [SimplePivotLevel(lvl, history) for lvl in range(1, params.levels + 1)]

    # -- streaming ------------------------------------------------------------------------------------------------
    def on_bar(
        self,
        index: int,
        open: float,
        high: float,
        low: float,
        close: float,
        ts: int | None = None,
        close_ts: int | None = None,
    ) -> list[PivotEvent]:
        """Feed one **closed** bar; returns the events confirmed at its close, ordered by level then outside-bar rule."""
        if not (low <= open <= high and low <= close <= high):  # also false for NaN
            raise ValueError(bar_problem(index, open, high, low, close))
        last = self._last_index
        if last is not None and index <= last:
            raise ValueError(f"row {index}: bar index must increase (previous bar was {last}); feed bars in order")
        self._last_index = index
        if self._skip_inside:
            if high < self._mother_high and low > self._mother_low:
                return []  # inside bars confirm nothing (Williams' inside-day rule)
            self._mother_high = high
            self._mother_low = low
        highs = self._b_high
        lows = self._b_low
        highs.append(high)
        lows.append(low)
        self._b_meta.append((index, close >= open, ts))
        span = self._span
        if len(highs) > span:
            del highs[0]
            del lows[0]
        elif len(highs) < span:
            return []
        k = self._k
        # A pivot is an extreme of its whole window (every tie mode); most bars leave after one max() and one min()
        v = highs[k]
        is_high = v >= max(highs) and _wins_tie(highs, v, k, self._tie)
        w = lows[k]
        is_low = w <= min(lows) and _wins_tie(lows, w, k, self._tie)
        if not (is_high or is_low):
            return []
        return self._emit_level1(is_high, is_low, index, close_ts)

    def _emit_level1(self, is_high: bool, is_low: bool, t: int, close_ts: int | None) -> list[PivotEvent]:
        k = self._k
        c_index, c_bull, c_ts = self._b_meta[k]
        events: list[PivotEvent] = []
        if not (is_high and is_low):  # the common case: one kind, no ordering question
            if is_low:
                self._push(1, 1, c_index, self._b_low[k], c_ts, t, close_ts, events)
            else:
                self._push(1, 0, c_index, self._b_high[k], c_ts, t, close_ts, events)
            return events
        for low_kind in (1, 0) if c_bull else (0, 1):  # outside bar closing up printed its low first
            self._push(1, low_kind, c_index, (self._b_low if low_kind else self._b_high)[k], c_ts, t, close_ts, events)
        if len(events) > 1:
            events.sort(key=_level_of)  # stable: keeps the outside-bar order inside a level
        return events

    def _push(
        self, level: int, low_kind: int, index: int, price: float, ts: int | None, t: int, close_ts: int | None, events: list
    ) -> None:
        """Announce a pivot and promote it upwards while it completes a level-(l+1) window (iterative recursion)."""
        m = self._m
        top = self.params.levels
        while True:
            event = _new_event(level, _KINDS[low_kind], index, price, t, ts, close_ts)
            events.append(event)
            store = self.levels[level - 1]
            (store.lows if low_kind else store.highs).append(event)
            if level == top:
                return
            window = self._win[level - 1][low_kind]
            window.append((index, price, ts))
            if len(window) < self._wspan:
                return
            prices = list(map(_price_of, window))
            if not _selected(prices, m, bool(low_kind), self._left_strict, self._right_strict):
                return
            index, price, ts = window[m]
            level += 1

    # -- inspection -----------------------------------------------------------------------------------------------
    def pending(self) -> list[PendingPivot]:
        """Candidates not yet confirmed (the last bars / last pivots that still pass against everything seen)."""
        out: list[PendingPivot] = []
        n = len(self._b_high)
        for pos in range(max(self._k, n - self._k), n):
            index, _, ts = self._b_meta[pos]
            for low_kind, values in ((0, self._b_high), (1, self._b_low)):
                if _selected(values[pos - self._k :], self._k, bool(low_kind), self._left_strict, self._right_strict):
                    out.append(PendingPivot(1, _KINDS[low_kind], index, values[pos], ts))
        for lvl, pair in enumerate(self._win, start=1):
            for low_kind, window in enumerate(pair):
                prices = [p[1] for p in window]
                for pos in range(max(self._m, len(window) - self._m), len(window)):
                    if _selected(prices[pos - self._m :], self._m, bool(low_kind), self._left_strict, self._right_strict):
                        index, price, ts = window[pos]
                        out.append(PendingPivot(lvl + 1, _KINDS[low_kind], index, price, ts))
        return out

    # -- persistence ----------------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """JSON-serialisable snapshot: params, the bar buffer, the pivot windows and the bounded level history."""
        return {
            "version": STATE_VERSION,
            "params": asdict(self.params),
            "history": self.history,
            "last_index": _opt_int(self._last_index),
            "mother": None if self._mother_high == -math.inf else [float(self._mother_high), float(self._mother_low)],
            "buf": [
                [int(i), float(h), float(lo), bool(bull), _opt_int(ts)]
                for h, lo, (i, bull, ts) in zip(self._b_high, self._b_low, self._b_meta, strict=True)
            ],
            "win": [[[[int(i), float(p), _opt_int(ts)] for i, p, ts in window] for window in pair] for pair in self._win],
            "levels": [
                {"highs": [_event_row(e) for e in lvl.highs], "lows": [_event_row(e) for e in lvl.lows]} for lvl in self.levels
            ],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> WilliamsMarketStructure:
        """Rebuild a detector from ``state()``; it continues exactly like the one that was saved."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"pivot detector state version {state.get('version')!r} unsupported (expected {STATE_VERSION})")
        det = cls(PivotParams(**state["params"]), int(state["history"]))
        if len(state["win"]) != len(det._win) or len(state["levels"]) != len(det.levels):
            raise ValueError("pivot detector state: 'win'/'levels' do not match params.levels; the state is corrupt")
        det._last_index = state["last_index"]
        if state["mother"] is not None:
            det._mother_high, det._mother_low = float(state["mother"][0]), float(state["mother"][1])
        for index, high, low, bull, ts in state["buf"]:
            det._b_high.append(float(high))
            det._b_low.append(float(low))
            det._b_meta.append((int(index), bool(bull), ts))
        for pair, saved_pair in zip(det._win, state["win"], strict=True):
            for window, saved in zip(pair, saved_pair, strict=True):
                window.extend((int(i), float(p), ts) for i, p, ts in saved)
        for lvl, saved in zip(det.levels, state["levels"], strict=True):
            lvl.highs.extend(_row_event(lvl.level, "H", row) for row in saved["highs"])
            lvl.lows.extend(_row_event(lvl.level, "L", row) for row in saved["lows"])
        return det


def _new_event(
    level: int, kind: Kind, index: int, price: float, t: int, ts: int | None, close_ts: int | None, _new=object.__new__
) -> PivotEvent:
    """``PivotEvent(level, kind, index, price, t, ts, close_ts)`` at under half the cost of the frozen dataclass's
    ``__init__`` (one ``object.__setattr__`` per field), the largest per-event cost of ``on_bar``. PivotEvent has no
    ``__post_init__`` to skip (guarded by ``test_fast_events_equal_constructed_events``); the object is equal, hashes
    alike and stays frozen."""
    event = _new(PivotEvent)
    event.__dict__.update(level=level, kind=kind, index=index, price=price, confirmed_at=t, ts=ts, confirmed_ts=close_ts)
    return event


def _level_of(event: PivotEvent) -> int:
    return event.level


def _opt_int(value: int | None) -> int | None:
    """Plain int for JSON (callers may feed numpy scalars)."""
    return None if value is None else int(value)


def _event_row(e: PivotEvent) -> list:
    return [int(e.index), float(e.price), int(e.confirmed_at), _opt_int(e.ts), _opt_int(e.confirmed_ts)]


def _row_event(level: int, kind: Kind, row: list) -> PivotEvent:
    index, price, confirmed_at, ts, confirmed_ts = row
    return PivotEvent(level, kind, int(index), float(price), int(confirmed_at), ts, confirmed_ts)


def run_incremental(
    *, open: object | None = None, high: object, low: object, close: object | None = None, params: PivotParams = PivotParams()
) -> PivotSet:
    """Stream every bar through a fresh detector and collect the events as a PivotSet (equals ``wms_batch``)."""
    highs = np.asarray(high, dtype=np.float64).tolist()
    lows = np.asarray(low, dtype=np.float64).tolist()
    opens = highs if open is None else np.asarray(open, dtype=np.float64).tolist()
    closes = highs if close is None else np.asarray(close, dtype=np.float64).tolist()
    if not len(highs) == len(lows) == len(opens) == len(closes):
        raise ValueError("high, low, open and close must have the same length")
    detector = WilliamsMarketStructure(params, history=1)
    collected: dict[tuple[int, Kind], list[tuple[int, float, int]]] = {
        (lvl, kind): [] for lvl in range(1, params.levels + 1) for kind in _KINDS
    }
    on_bar = detector.on_bar
    for i, (o, h, lo, c) in enumerate(zip(opens, highs, lows, closes, strict=True)):
        for e in on_bar(i, o, h, lo, c):
            collected[(e.level, e.kind)].append((e.index, e.price, e.confirmed_at))

    def as_array(rows: list[tuple[int, float, int]]) -> PivotArray:
        if not rows:
            return PivotArray.empty()
        idx, price, conf = zip(*rows, strict=True)
        return PivotArray(np.array(idx, np.int64), np.array(price, np.float64), np.array(conf, np.int64))

    levels = range(1, params.levels + 1)
    return PivotSet(
        params, [as_array(collected[(lvl, "H")]) for lvl in levels], [as_array(collected[(lvl, "L")]) for lvl in levels]
    )
