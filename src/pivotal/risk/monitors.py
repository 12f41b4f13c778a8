"""The statistics behind the risk engine's breakers, one small causal object each (formulas: ``docs/risk.md``).

Each ``update`` takes only data known at that moment and returns the current value of the statistic (NaN while it
has too little data); the engine compares it with the threshold, trips and audits. Kept apart so each statistic is
tested on exact numbers.
"""

from __future__ import annotations

import math
from collections import deque
from statistics import median


def _mean_sd(xs: deque[float] | list[float]) -> tuple[float, float]:
    n = len(xs)
    mean = sum(xs) / n
    return mean, math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))


class _Moments:
    """Mean and sample sd of the last ``size`` values in O(1) per value (running sums, recomputed exactly every
    ``size`` updates so rounding cannot drift); returns are small numbers, so the sums do not cancel badly."""

    __slots__ = ("_n_updates", "s1", "s2", "size", "values")

    def __init__(self, size: int) -> None:
        self.size = size
        self.values: deque[float] = deque()
        self.s1 = self.s2 = 0.0
        self._n_updates = 0

    def push(self, x: float) -> float | None:
        """Add ``x``; returns the value that fell out (None while not full)."""
        out = None
        self.values.append(x)
        self.s1 += x
        self.s2 += x * x
        if len(self.values) > self.size:
            out = self.values.popleft()
            self.s1 -= out
            self.s2 -= out * out
        self._n_updates += 1
        if self._n_updates % self.size == 0:
            self.s1 = math.fsum(self.values)
            self.s2 = math.fsum(v * v for v in self.values)
        return out

    def __len__(self) -> int:
        return len(self.values)

    def mean_sd(self) -> tuple[float, float]:
        n = len(self.values)
        mean = self.s1 / n
        ss = self.s2 - self.s1 * mean
        return mean, 0.0 if ss <= 1e-10 * self.s2 else math.sqrt(ss / (n - 1))  # below: rounding noise of a constant


class SigmaMove:
    """|r − mean| / sd of the new simple close-to-close return against the previous ``lookback`` returns (sample
    sd); NaN until ``max(2, lookback // 2)`` returns are known or when sd is 0."""

    def __init__(self, lookback: int) -> None:
        self.lookback = lookback
        self._returns = _Moments(lookback)

    def update(self, ret: float) -> float:
        value = math.nan
        if len(self._returns) >= max(2, self.lookback // 2):
            mean, sd = self._returns.mean_sd()
            if sd > 0:
                value = abs(ret - mean) / sd
        self._returns.push(ret)
        return value


class RegimeBreak:
    """Volatility change point D = |σ_s − σ_l| / (σ_s + σ_l) ∈ [0, 1): σ_s the sd of the last ``short`` log returns,
    σ_l the sd of the ``long`` returns just before them (disjoint). D ≥ 0.3 ⇔ the ratio is ≥ 1.857 or ≤ 0.538."""

    def __init__(self, short: int, long: int) -> None:
        self.short, self.long = short, long
        self._recent = _Moments(short)
        self._before = _Moments(long)

    def update(self, log_ret: float) -> float:
        out = self._recent.push(log_ret)
        if out is not None:
            self._before.push(out)
        if len(self._before) < self.long:
            return math.nan
        s_s, s_l = self._recent.mean_sd()[1], self._before.mean_sd()[1]
        return math.nan if s_s + s_l == 0 else abs(s_s - s_l) / (s_s + s_l)


def pearson(xs: list[float], ys: list[float]) -> float:
    """Pearson correlation; NaN when either side is constant."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx, syy = sum((x - mx) ** 2 for x in xs), sum((y - my) ** 2 for y in ys)
    return math.nan if sxx == 0 or syy == 0 else sxy / math.sqrt(sxx * syy)


class Correlation:
    """Rolling Pearson correlation of each symbol's log returns with the reference symbol's, over the last
    ``window`` bars present in both (matched by bar open time)."""

    def __init__(self, reference: str, window: int) -> None:
        self.reference, self.window = reference, window
        self._returns: dict[str, dict[int, float]] = {}
        self._order: dict[str, deque[int]] = {}

    def update(self, symbol: str, ts: int, log_ret: float) -> dict[str, float]:
        """Record a return; the symbols whose correlation this return completed, with its value (NaN: too few)."""
        keep = 4 * self.window
        order = self._order.setdefault(symbol, deque())
        rets = self._returns.setdefault(symbol, {})
        rets[ts] = log_ret
        order.append(ts)
        while len(order) > keep:
            rets.pop(order.popleft(), None)
        others = [s for s in self._returns if s != self.reference] if symbol == self.reference else [symbol]
        ref = self._returns.get(self.reference, {})
        out: dict[str, float] = {}
        if symbol != self.reference and ts not in ref:
            return out
        for s in others:
            if s == self.reference or ts not in self._returns[s]:
                continue
            mine = self._returns[s]
            common = [t for t in self._order[s] if t in ref][-self.window :]
            out[s] = pearson([mine[t] for t in common], [ref[t] for t in common]) if len(common) >= self.window else math.nan
        return out


class LossStreak:
    """Closed trades in a row with net return ≤ 0 (a trade at exactly 0 counts as a loss: it paid nothing back)."""

    def __init__(self) -> None:
        self.count = 0

    def update(self, net_return: float) -> int:
        self.count = self.count + 1 if net_return <= 0 else 0
        return self.count


class LatencyMedian:
    """Median of the last ``k`` latency samples (ms); NaN until ``k`` samples."""

    def __init__(self, k: int) -> None:
        self._samples: deque[float] = deque(maxlen=k)

    def update(self, ms: float) -> float:
        self._samples.append(float(ms))
        return median(self._samples) if len(self._samples) == self._samples.maxlen else math.nan

    def clear(self) -> None:
        self._samples.clear()


class AdverseSelection:
    """Share of the last ``window`` judged fills followed by an adverse move: a fill of sign d (+1 buy, −1 sell) at
    price p is judged at the first mark m of its symbol at or after fill time + ``horizon_ms``; adverse when
    d × (m − p) < 0. NaN until ``window`` fills are judged."""

    def __init__(self, horizon_ms: int, window: int) -> None:
        self.horizon_ms, self.window = horizon_ms, window
        self._waiting: dict[str, list[tuple[int, int, float]]] = {}
        self._judged: deque[bool] = deque(maxlen=window)

    def on_fill(self, symbol: str, ts: int, direction: int, price: float) -> None:
        self._waiting.setdefault(symbol, []).append((ts + self.horizon_ms, direction, price))

    def on_mark(self, symbol: str, ts: int, price: float) -> float | None:
        """A mark at time ``ts``; returns the share when this mark judged at least one fill, else None."""
        waiting = self._waiting.get(symbol)
        if not waiting:
            return None
        due = [w for w in waiting if w[0] <= ts]
        if not due:
            return None
        self._waiting[symbol] = [w for w in waiting if w[0] > ts]
        for _, d, p in due:
            self._judged.append(d * (price - p) < 0)
        return sum(self._judged) / self.window if len(self._judged) == self.window else math.nan

    def clear(self) -> None:
        self._judged.clear()


class ErrorRate:
    """Exchange errors / requests among the requests of the last ``window_ms`` (times in (now − window, now]);
    NaN with fewer than ``min_requests`` requests."""

    def __init__(self, window_ms: int, min_requests: int) -> None:
        self.window_ms, self.min_requests = window_ms, min_requests
        self._events: deque[tuple[int, bool]] = deque()

    def update(self, now: int, ok: bool | None = None) -> float:
        if ok is not None:
            self._events.append((now, ok))
        while self._events and self._events[0][0] <= now - self.window_ms:
            self._events.popleft()
        n = len(self._events)
        if n < self.min_requests:
            return math.nan
        return sum(1 for _, good in self._events if not good) / n

    def clear(self) -> None:
        self._events.clear()
