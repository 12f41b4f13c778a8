"""Training labels from confirmed Williams pivots, for every bar t of a series at once.

For a sample at bar t (its features use bars <= t and pivots with ``confirmed_at <= t`` only):

- **Pivot target of level l**: the first level-l pivot, highs and lows merged, whose *pivot bar* index is > t.
  (If one bar is both an H and an L of the level, the outside-bar rule of spec A.3 orders them: L first when
  ``close >= open``, else H first.) Its fields:
  ``kind`` (+1 high, -1 low), ``offset = ln(price / close[t])``, ``bars_until = index - t`` (>= 1) and
  ``known_at`` (always > t): the bar at whose close the label is *final*, i.e. the later of
  (a) the target's ``confirmed_at`` and (b) ``settled``: the bar by which every opposite-kind pivot of the level with
  index <= the target's index is decided (level 1: k effective bars after it; level l >= 2: the m-th opposite-kind
  level-(l-1) pivot after it is confirmed). Without (b) a high confirmed late could precede a low confirmed early, and
  a trainer labelling from the past alone would see the low as "next pivot" and later have to change it.
  No such pivot, or (b) never happens inside the series: known_at -1 (never usable); kind 0 and offset NaN if none.
- **Action** (codes follow ``pivotal.core.vocabulary.ACTIONS``: BUY 0, SELL 1, HOLD 2), from the level-``action_level`` target
  with ``cost`` = round-trip fees + slippage as a log return (default 0.002 = 2 x 0.1 %):
  BUY if it is a high with ``offset > cost``; SELL if it is a low with ``offset < -cost``; HOLD otherwise (the next
  swing does not pay the costs in its own direction). ``action_known_at`` = that target's ``known_at``.

A trainer whose clock is at bar ``now`` may use sample t for level l only if ``known_at[t, l] <= now``
(``LabelSet.usable``). Pivots come from ``wms_batch`` on the whole series; by the no-repaint theorem (spec A.5) and (b),
the labels with ``known_at <= now`` are exactly those, with the same values, that ``build_labels(bars[0..now])`` marks
known at ``now`` (property-tested on real data).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from pivotal.core.timeframes import timeframe_ms as tf_length
from pivotal.core.vocabulary import ACTION_BUY, ACTION_HOLD, ACTION_SELL
from pivotal.data.candles import Candles
from pivotal.structure.pivots import wms_batch
from pivotal.structure.types import PivotParams, PivotSet

BUY, SELL, HOLD = ACTION_BUY, ACTION_SELL, ACTION_HOLD
DEFAULT_COST = 0.002


@dataclass(frozen=True)
class LabelSet:
    """Labels of an n-bar series; per-level arrays are ``[n, levels]`` (column l-1 = level l).

    - ``kind`` int8: +1 next pivot is a high, -1 a low, 0 none.
    - ``offset`` float64: ln(pivot price / close[t]); NaN when none.
    - ``bars_until`` int64: pivot index - t (>= 1); -1 when none.
    - ``known_at`` int64: bar index at whose close the target pivot is confirmed; -1 when none.
    - ``action`` int8 [n]: BUY 0 / SELL 1 / HOLD 2; ``action_known_at`` int64 [n] (-1: never known).
    - ``known_ts`` / ``action_known_ts``: the same as epoch ms (close time of the confirming bar); -1 when none.
    """

    kind: np.ndarray
    offset: np.ndarray
    bars_until: np.ndarray
    known_at: np.ndarray
    action: np.ndarray
    action_known_at: np.ndarray
    known_ts: np.ndarray
    action_known_ts: np.ndarray
    action_level: int
    cost: float

    def __len__(self) -> int:
        return len(self.action)

    @property
    def levels(self) -> int:
        return self.kind.shape[1]

    def usable(self, now: int, level: int | None = None) -> np.ndarray:
        """Boolean mask over samples whose label is known at bar ``now``: one level's target, or the action
        label when ``level`` is None."""
        known = self.action_known_at if level is None else self.known_at[:, level - 1]
        return (known >= 0) & (known <= now)

    def usable_ts(self, now_ms: int, level: int | None = None) -> np.ndarray:
        """As ``usable`` with the trainer's clock in epoch ms."""
        known = self.action_known_ts if level is None else self.known_ts[:, level - 1]
        return (known >= 0) & (known <= now_ms)


def build_labels(
    candles: Candles,
    params: PivotParams = PivotParams(),
    pivots: PivotSet | None = None,
    action_level: int = 2,
    cost: float = DEFAULT_COST,
    timeframe_ms: int | None = None,
) -> LabelSet:
    """Labels for every bar of ``candles`` (see module doc); ``pivots`` may be passed when already computed."""
    if cost < 0:
        raise ValueError(f"cost must be >= 0 (a log return such as 0.002), got {cost}")
    if pivots is None:
        pivots = wms_batch(high=candles.high, low=candles.low, open=candles.open, close=candles.close, params=params)
    levels = len(pivots.highs)
    if not 1 <= action_level <= levels:
        raise ValueError(f"action_level {action_level} outside computed pivot levels 1..{levels}")
    n = len(candles)
    kind = np.zeros((n, levels), np.int8)
    offset = np.full((n, levels), np.nan)
    bars_until = np.full((n, levels), -1, np.int64)
    known_at = np.full((n, levels), -1, np.int64)
    bullish = candles.close >= candles.open
    effective = (
        effective_bars(np.ascontiguousarray(candles.high), np.ascontiguousarray(candles.low))
        if pivots.params.skip_inside
        else None
    )
    for level in range(1, levels + 1):
        columns = _next_pivot(pivots, level, bullish, candles.close, effective)
        kind[:, level - 1], offset[:, level - 1], bars_until[:, level - 1], known_at[:, level - 1] = columns
    action = _actions(kind[:, action_level - 1], offset[:, action_level - 1], cost)
    action_known_at = known_at[:, action_level - 1].copy()
    tf = timeframe_ms if timeframe_ms is not None else _tf_ms(candles)
    return LabelSet(
        kind,
        offset,
        bars_until,
        known_at,
        action,
        action_known_at,
        _to_ts(known_at, candles.ts, tf),
        _to_ts(action_known_at, candles.ts, tf),
        action_level,
        cost,
    )


def _next_pivot(
    pivots: PivotSet, level: int, bullish: np.ndarray, close: np.ndarray, effective: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per bar t: (kind, offset, bars_until, known_at) of the first level pivot with index > t."""
    n = len(close)
    highs, lows = pivots.get(level, "H"), pivots.get(level, "L")
    if len(highs) + len(lows) == 0:
        return np.zeros(n, np.int8), np.full(n, np.nan), np.full(n, -1, np.int64), np.full(n, -1, np.int64)
    index = np.concatenate([highs.index, lows.index]).astype(np.int64)
    price = np.concatenate([highs.price, lows.price]).astype(np.float64)
    conf = np.concatenate([highs.confirmed_at, lows.confirmed_at]).astype(np.int64)
    sign = np.concatenate([np.ones(len(highs), np.int8), -np.ones(len(lows), np.int8)])
    # an outside bar carrying both kinds: a bullish bar prints its low first (spec A.3), a bearish one its high
    second = np.where(sign > 0, bullish[index], ~bullish[index])
    order = np.lexsort((second, index))
    index, price, conf, sign = index[order], price[order], conf[order], sign[order]
    n_bars = len(close)
    opposite = np.where(
        sign > 0, settled(pivots, level, "L", index, n_bars, effective), settled(pivots, level, "H", index, n_bars, effective)
    )
    # the target is final once it is confirmed and no opposite pivot can still appear before it; -1: never in the series
    final = np.where(opposite < 0, -1, np.maximum(conf, opposite))
    t = np.arange(n, dtype=np.int64)
    j = np.searchsorted(index, t, side="right")
    has = j < len(index)
    jj = np.where(has, j, 0)
    kind = np.where(has, sign[jj], 0).astype(np.int8)
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where(has, np.log(price[jj] / close), np.nan)
    bars_until = np.where(has, index[jj] - t, -1)
    known_at = np.where(has, final[jj], -1)
    return kind, offset, bars_until, known_at


def settled(pivots: PivotSet, level: int, kind: str, x: np.ndarray, n: int, effective: np.ndarray | None) -> np.ndarray:
    """Bar at whose close every level-``level`` pivot of ``kind`` with index <= x is decided (-1: not in the series).

    Level 1: the k-th (effective) bar after x has closed. Level l >= 2: the m-th level-(l-1) pivot of the kind after x
    is confirmed (a candidate needs m same-type neighbours on its right, and pivots of one kind confirm in index order).
    """
    params = pivots.params
    if level == 1:
        if effective is None:
            return np.where(x + params.k < n, x + params.k, -1)
        pos = np.searchsorted(effective, x, side="right") + params.k - 1
        return np.where(pos < len(effective), effective[np.minimum(pos, len(effective) - 1)], -1)
    below = pivots.get(level - 1, kind)  # type: ignore[arg-type]
    pos = np.searchsorted(below.index, x, side="right") + params.m - 1
    if len(below) == 0:
        return np.full(len(x), -1, np.int64)
    return np.where(pos < len(below), below.confirmed_at[np.minimum(pos, len(below) - 1)], -1)


@njit(cache=True)
def effective_bars(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Positions of the non-inside bars (spec A.3 inside-bar rule, strict inequalities against the last mother bar)."""
    n = high.shape[0]
    out = np.empty(n, np.int64)
    count = 0
    for t in range(n):
        if count > 0 and high[t] < high[out[count - 1]] and low[t] > low[out[count - 1]]:
            continue
        out[count] = t
        count += 1
    return out[:count]


def _actions(kind: np.ndarray, offset: np.ndarray, cost: float) -> np.ndarray:
    action = np.full(len(kind), HOLD, np.int8)
    with np.errstate(invalid="ignore"):
        action[(kind > 0) & (offset > cost)] = BUY
        action[(kind < 0) & (offset < -cost)] = SELL
    return action


def _tf_ms(candles: Candles) -> int:
    if not candles.timeframe:
        raise ValueError("Candles carry no timeframe; pass timeframe_ms= or set Candles.timeframe")
    return tf_length(candles.timeframe)


def _to_ts(bars: np.ndarray, ts: np.ndarray, tf: int) -> np.ndarray:
    """Close time (epoch ms) of each bar index; -1 stays -1."""
    if len(ts) == 0:
        return bars.copy()
    return np.where(bars >= 0, ts[np.clip(bars, 0, len(ts) - 1)] + tf, -1)
