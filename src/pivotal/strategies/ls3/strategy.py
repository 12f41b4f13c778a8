"""LIQUIDITY SWEEP V3 as an event-driven strategy (spec B.2, exact semantics; the reference for the sweep fast path).

Causal by construction: at the close of bar t it uses ATR[t-1] (frozen as ``atr_ref`` at the pierce), the volume
mean of the 20 bars before each tested bar, and only key levels whose WMS L1 pivot was confirmed at or before t-1.
Key levels come from the incremental detector :class:`pivotal.structure.incremental.WilliamsMarketStructure` (level 1,
``k = pivot_k``, tie ``first``, inside bars not skipped: the rule ``wms_batch`` applies in the sweep), fed one bar at
a time; an L1 pivot is known at the close of bar index+k (spec A.5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from pivotal.core.orders import Fill, Order
from pivotal.features.volatility import TrailingMeanState, WilderATRState
from pivotal.strategies.base import BarContext
from pivotal.strategies.ls3.params import LS3Constants, LS3Params
from pivotal.structure.incremental import WilliamsMarketStructure
from pivotal.structure.types import PivotEvent, PivotParams

ACTIVE, ARMED, CONSUMED = 0, 1, 2


@dataclass(slots=True)
class KeyLevel:
    side: int  # +1 support (from an L1 low), -1 resistance (from an L1 high)
    price: float
    index: int
    confirmed_at: int
    state: int = ACTIVE
    pierce_bar: int = -1
    atr_ref: float = float("nan")
    volume_hit: bool = False
    expiry: int = 0  # last bar at which it can be pierced (index + key_level_lookback)
    thr: float = float("nan")  # pierce threshold: price * (1 -/+ pierce_depth)


@dataclass(frozen=True)
class Signal:
    bar: int
    side: int
    pierce_bar: int
    level: float
    atr_ref: float


def l1_detector(k: int) -> WilliamsMarketStructure:
    """The incremental detector of the L1 key levels: level 1, tie ``first``, inside bars not skipped (``wms_batch``'s
    rule in the sweep)."""
    return WilliamsMarketStructure(PivotParams(k=k, levels=1, tie="first", skip_inside=False), history=1)


def _key_levels(events: list[PivotEvent], t: int) -> list[KeyLevel]:
    """Pivots confirmed at bar t as key levels: supports (from lows) first, then resistances."""
    found = [KeyLevel(+1, e.price, e.index, t) for e in events if e.kind == "L"]
    return found + [KeyLevel(-1, e.price, e.index, t) for e in events if e.kind == "H"]


class LiquiditySweepV3:
    """The Strategy: ``on_bar`` returns at most one entry order with an ATR bracket and the 50-bar time stop."""

    def __init__(self, params: LS3Params, constants: LS3Constants = LS3Constants()) -> None:
        self.params = params
        self.constants = constants
        self._atr = WilderATRState(constants.atr_period)
        self._vma = TrailingMeanState(constants.vma_period)
        self._detector = l1_detector(constants.pivot_k)
        self._supports: list[KeyLevel] = []  # ACTIVE levels by side
        self._resistances: list[KeyLevel] = []
        self._armed: list[KeyLevel] = []
        self._warmup = constants.warmup
        self._sup_max, self._res_min = -math.inf, math.inf
        self.signals: list[Signal] = []  # every resolved signal, traded or not (for inspection)
        self._bulk: dict[int, Signal] | None = None  # signals by bar once ``wake_bars`` ran

    def wake_bars(self, candles: Any) -> np.ndarray:
        """Sparse driving (see ``execution.engine``): the resolved signals in bulk from the sweep's episode tables
        (the same decisions, tested bit for bit); only signal bars are events. Switches this instance to them."""
        from pivotal.strategies.ls3.sweep import prepare_market, signals

        c = candles
        market = prepare_market(c.open, c.high, c.low, c.close, c.volume, c.ts, self.constants)
        table = signals(market, self.params)
        self._bulk = {
            int(r): Signal(int(r), int(d), int(s), float(lv), float(a))
            for r, d, s, lv, a in zip(
                table["bar"], table["direction"], table["pierce_bar"], table["level"], table["atr_ref"], strict=True
            )
        }
        return np.fromiter(self._bulk, dtype=np.int64, count=len(self._bulk))

    def on_bar(self, ctx: BarContext) -> list[Order]:
        if self._bulk is not None:
            signal = self._bulk.get(ctx.bar.index)
            return [] if signal is None else self._order(ctx, signal)
        t, _, o, h, lo, c, v = ctx.bar[:7]
        sup, res = self._supports, self._resistances
        signal = None
        if self._armed or (  # most bars: nothing armed, nothing expires or is pierced
            t >= self._warmup
            and ((sup and (t > sup[0].expiry or lo <= self._sup_max)) or (res and (t > res[0].expiry or h >= self._res_min)))
        ):
            fired = self._step_levels(t, o, h, lo, c, v)
            signal = _resolve(fired, t) if fired else None
        self._atr.update(h, lo, c)
        self._vma.push(v)
        events = self._detector.on_bar(t, o, h, lo, c)
        if events:
            self._add_levels(_key_levels(events, t))
        if signal is None:
            return []
        return self._order(ctx, signal)

    def _order(self, ctx: BarContext, signal: Signal) -> list[Order]:
        self.signals.append(signal)
        if ctx.position is not None or ctx.last_exit_bar >= ctx.bar.index:
            return []  # B.2: signals while a position is (or was, during this bar) open are dropped
        p = self.params
        stop = p.stop_distance * signal.atr_ref
        return [Order.enter(signal.side, stop, p.target_multiple * stop, self.constants.max_hold_bars, signal.level)]

    def on_fill(self, fill: Fill) -> None:
        """LS3 keeps no fill-dependent state: the bracket is attached to the order."""

    def _step_levels(self, t: int, o: float, h: float, lo: float, c: float, v: float) -> list[KeyLevel]:
        """Spec B.2 level states at bar t: active levels expire or are pierced (then armed), armed levels reclaim
        (fire or not) or expire. Active supports and resistances are kept apart with precomputed thresholds, the
        per-bar hot path; the decisions are those of the rules as written (parity tests)."""
        p, atr_prev = self.params, self._atr.value
        if t >= self._warmup:
            sup, res = self._supports, self._resistances
            if sup and (t > sup[0].expiry or lo <= self._sup_max):
                self._supports, self._sup_max = self._scan(sup, t, lo, 1, atr_prev)
            if res and (t > res[0].expiry or h >= self._res_min):
                self._resistances, self._res_min = self._scan(res, t, h, -1, atr_prev)
        if not self._armed:
            return []
        vma = self._vma.value  # a 20-value sum: only when a level is armed
        volume_ok = vma > 0 and v >= p.volume_spike_threshold * vma
        fired: list[KeyLevel] = []
        kept: list[KeyLevel] = []
        for lv in self._armed:
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
        self._armed = kept
        return fired

    def _scan(self, active: list[KeyLevel], t: int, extreme: float, side: int, atr_prev: float) -> tuple[list[KeyLevel], float]:
        """Drop expired levels (a prefix: levels arrive in pivot-index order), arm the pierced ones; returns the
        remaining levels and their most easily pierced threshold (max for supports, min for resistances)."""
        keep: list[KeyLevel] = []
        for lv in active:
            if t > lv.expiry:
                continue  # too old: can never take part again
            if (extreme <= lv.thr) if side > 0 else (extreme >= lv.thr):
                lv.state, lv.pierce_bar, lv.atr_ref = ARMED, t, atr_prev
                self._armed.append(lv)
            else:
                keep.append(lv)
        return keep, _bound(keep, side)

    def _add_levels(self, levels: list[KeyLevel]) -> None:
        p = self.params
        for lv in levels:
            lv.expiry = lv.index + p.key_level_lookback
            if lv.side > 0:
                lv.thr = lv.price * (1 - p.pierce_depth)  # exactly the B.2 threshold expressions
                self._supports.append(lv)
                if lv.thr > self._sup_max:
                    self._sup_max = lv.thr
            else:
                lv.thr = lv.price * (1 + p.pierce_depth)
                self._resistances.append(lv)
                if lv.thr < self._res_min:
                    self._res_min = lv.thr


def _bound(levels: list[KeyLevel], side: int) -> float:
    """The threshold a bar must reach to pierce any of ``levels``: the highest support / lowest resistance one."""
    if not levels:
        return -math.inf if side > 0 else math.inf
    return max(lv.thr for lv in levels) if side > 0 else min(lv.thr for lv in levels)


def _direction_ok(side: int, open_: float, close: float) -> bool:
    return close > open_ if side > 0 else close < open_


def _resolve(fired: list[KeyLevel], t: int) -> Signal | None:
    """Conflicting directions: no trade; else earliest pierce, then lowest support / highest resistance."""
    if not fired or len({f.side for f in fired}) > 1:
        return None
    best = min(fired, key=lambda f: (f.pierce_bar, f.price if f.side > 0 else -f.price))
    return Signal(t, best.side, best.pierce_bar, best.price, best.atr_ref)
