"""LIQUIDITY SWEEP V3 as an event-driven strategy (spec B.2, exact semantics; the reference for the sweep fast path).

Causal by construction: at the close of bar t it uses ATR[t-1] (frozen as ``atr_ref`` at the pierce), the volume
mean of the 20 bars before each tested bar, and only key levels whose WMS L1 pivot was confirmed at or before t-1.
Key levels come from :func:`pivotal.structure.pivots.wms_batch` run on the trailing ``2k+1`` bars each bar, which is
exactly the L1 rule (spec A.5: an L1 pivot is known at the close of bar index+k, from that window alone).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from pivotal.backtest.strategy import BarContext, Fill, Order
from pivotal.features.volatility import TrailingMeanState, WilderATRState
from pivotal.strategies.ls3_params import LS3Constants, LS3Params
from pivotal.structure.pivots import wms_batch
from pivotal.structure.types import PivotParams

ACTIVE, ARMED, CONSUMED = 0, 1, 2


@dataclass
class KeyLevel:
    side: int  # +1 support (from an L1 low), -1 resistance (from an L1 high)
    price: float
    index: int
    confirmed_at: int
    state: int = ACTIVE
    pierce_bar: int = -1
    atr_ref: float = float("nan")
    volume_hit: bool = False


@dataclass(frozen=True)
class Signal:
    bar: int
    side: int
    pierce_bar: int
    level: float
    atr_ref: float


class TrailingL1Pivots:
    """Level-1 WMS pivots confirmed at each new bar, found by ``wms_batch`` on the trailing 2k+1 bars."""

    def __init__(self, k: int) -> None:
        self.k = k
        self._params = PivotParams(k=k, levels=1, tie="first", skip_inside=False)
        self._bars: deque[tuple[float, float, float, float]] = deque(maxlen=2 * k + 1)

    def push(self, index: int, open_: float, high: float, low: float, close: float) -> list[KeyLevel]:
        self._bars.append((open_, high, low, close))
        if len(self._bars) < 2 * self.k + 1:
            return []
        o, h, lo, c = (np.array(col) for col in zip(*self._bars, strict=True))
        pivots = wms_batch(h, lo, o, c, self._params)
        first = index - 2 * self.k  # global index of window position 0
        found = [
            KeyLevel(+1, float(p), first + int(i), index) for i, p in zip(pivots.lows[0].index, pivots.lows[0].price, strict=True)
        ]
        found += [
            KeyLevel(-1, float(p), first + int(i), index)
            for i, p in zip(pivots.highs[0].index, pivots.highs[0].price, strict=True)
        ]
        return found


class LiquiditySweepV3:
    """The Strategy: ``on_bar`` returns at most one entry order with an ATR bracket and the 50-bar time stop."""

    def __init__(self, params: LS3Params, constants: LS3Constants = LS3Constants()) -> None:
        self.params = params
        self.constants = constants
        self._atr = WilderATRState(constants.atr_period)
        self._vma = TrailingMeanState(constants.vma_period)
        self._pivots = TrailingL1Pivots(constants.pivot_k)
        self._levels: list[KeyLevel] = []
        self.signals: list[Signal] = []  # every resolved signal, traded or not (for inspection)

    def on_bar(self, ctx: BarContext) -> list[Order]:
        bar = ctx.bar
        fired = self._step_levels(bar.index, bar.open, bar.high, bar.low, bar.close, bar.volume)
        signal = _resolve(fired, bar.index)
        self._atr.update(bar.high, bar.low, bar.close)
        self._vma.push(bar.volume)
        self._levels.extend(self._pivots.push(bar.index, bar.open, bar.high, bar.low, bar.close))
        if signal is None:
            return []
        self.signals.append(signal)
        if ctx.position is not None or ctx.last_exit_bar >= bar.index:
            return []  # B.2: signals while a position is (or was, during this bar) open are dropped
        p = self.params
        stop = p.stop_distance * signal.atr_ref
        return [Order.enter(signal.side, stop, p.target_multiple * stop, self.constants.max_hold_bars, signal.level)]

    def on_fill(self, fill: Fill) -> None:
        """LS3 keeps no fill-dependent state: the bracket is attached to the order."""

    def _step_levels(self, t: int, o: float, h: float, lo: float, c: float, v: float) -> list[KeyLevel]:
        p, atr_prev, vma = self.params, self._atr.value, self._vma.value
        volume_ok = vma > 0 and v >= p.volume_spike_threshold * vma
        fired: list[KeyLevel] = []
        kept: list[KeyLevel] = []
        for lv in self._levels:
            if lv.state == ACTIVE:
                if t - lv.index > p.key_level_lookback:
                    continue  # too old: can never take part again
                if t < self.constants.warmup or not _pierced(lv, h, lo, p.pierce_depth):
                    kept.append(lv)
                    continue
                lv.state, lv.pierce_bar, lv.atr_ref = ARMED, t, atr_prev
            lv.volume_hit = lv.volume_hit or volume_ok
            if (c > lv.price) if lv.side > 0 else (c < lv.price):
                lv.state = CONSUMED
                if (
                    lv.volume_hit
                    and _direction_ok(lv.side, o, c)
                    and lv.atr_ref > 0
                    and (h - lo >= p.reversal_candle_size * lv.atr_ref)
                ):
                    fired.append(lv)
            elif t - lv.pierce_bar + 1 >= p.rejection_candles:
                lv.state = CONSUMED  # no reclaim in time: a real breakout
            else:
                kept.append(lv)
        self._levels = kept
        return fired


def _pierced(lv: KeyLevel, high: float, low: float, depth: float) -> bool:
    return low <= lv.price * (1 - depth) if lv.side > 0 else high >= lv.price * (1 + depth)


def _direction_ok(side: int, open_: float, close: float) -> bool:
    return close > open_ if side > 0 else close < open_


def _resolve(fired: list[KeyLevel], t: int) -> Signal | None:
    """Conflicting directions: no trade; else earliest pierce, then lowest support / highest resistance."""
    if not fired or len({f.side for f in fired}) > 1:
        return None
    best = min(fired, key=lambda f: (f.pierce_bar, f.price if f.side > 0 else -f.price))
    return Signal(t, best.side, best.pierce_bar, best.price, best.atr_ref)
