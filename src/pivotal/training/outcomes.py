"""Outcomes of stored predictions, resolved when they become known; each outcome is a training sample.

Two kinds of target, both scored from closed bars of the prediction's symbol and timeframe:

- **Horizon returns** (``HORIZONS_MS``: 1, 5, 15, 60 min). A prediction at ``as_of`` enters at the close of the last bar
  with ``close_ts <= as_of`` (the last price known at as-of) and exits at the close of the first bar with
  ``close_ts >= as_of + horizon``; the label is ``r = ln(exit / entry)``, its direction +1 / -1 / 0 (``|r| <=
  hold_band``), and ``known_at`` is that exit bar's close time, so ``known_at >= as_of + horizon`` always and no price
  from before as-of + horizon is used as the outcome. The predicted direction per horizon is
  ``output.metadata["horizons"][name]`` when the model gives one (names ``1m``, ``5m``, ``15m``, ``60m``), else its
  ``direction_vector``; ``hit`` when the signs agree.
- **Pivots** (``ModelOutput.pivots``, one per level). With ``t`` the prediction's bar (as above), the truth is the one
  ``training.labels`` defines: the first level-l pivot, highs and lows merged, whose pivot bar is after t. It is
  known once that pivot is confirmed *and* no opposite-kind pivot of the level can still appear before it
  (``labels.settled``) — only then is the prediction confirmed (same kind: ``hit``) or refuted. The label carries the
  realised kind, ``ln(price / close[t])``, bars until, and ``known_at`` (close time of the bar where both hold).

Each form has a batch function (``resolve_horizons``, ``resolve_pivots``: numpy over a whole series) and an
incremental resolver fed bar by bar as candles close (``HorizonResolver``, ``PivotResolver``, the latter on the
incremental Williams detector); they give the same outcomes (tested on real data). Predictions are added to a
resolver as they are made, before any later bar; a resolver is one symbol and one timeframe.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pivotal.core.timeframes import timeframe_ms
from pivotal.data.candles import Candles
from pivotal.data.state.predictions import OutcomeRow, PredictionFilter, PredictionRepository
from pivotal.models.io import ModelOutput
from pivotal.models.output_store import InferenceHistory, InputRef, Prediction, PredictionContext
from pivotal.structure.incremental import WilliamsMarketStructure
from pivotal.structure.types import PivotParams
from pivotal.training.labels import build_labels

HORIZONS_MS: tuple[int, ...] = (60_000, 300_000, 900_000, 3_600_000)


def horizon_name(horizon_ms: int) -> str:
    """``60_000`` -> ``1m``; ``3_600_000`` -> ``60m`` (the multi-horizon names, all in minutes)."""
    return f"{horizon_ms // 60_000}m" if horizon_ms % 60_000 == 0 else f"{horizon_ms}ms"


@dataclass(frozen=True)
class Label:
    """What happened: ``target`` (``return_5m``, ``pivot_L2``), ``value`` (realised log return / pivot offset),
    ``direction`` (+1 up / high, -1 down / low, 0 flat), ``known_at`` (epoch ms when it became final)."""

    target: str
    value: float
    direction: int
    known_at: int
    extra: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainingSample:
    """A training sample from an outcome: the input (rebuilt from its reference) and the label; usable by a trainer
    whose clock is at or after ``label.known_at``."""

    input: InputRef
    label: Label
    model_name: str
    symbol: str
    timeframe: str


@dataclass(frozen=True)
class Outcome:
    """One scored prediction target."""

    model_name: str
    model_version: str
    symbol: str
    timeframe: str
    as_of: int
    input: InputRef
    predicted: float  # predicted direction value (returns) or price offset (pivots)
    predicted_direction: int
    label: Label
    hit: bool

    @property
    def known_at(self) -> int:
        return self.label.known_at

    def sample(self) -> TrainingSample:
        return TrainingSample(self.input, self.label, self.model_name, self.symbol, self.timeframe)

    def sort_key(self) -> tuple[int, int, str, str, str]:
        return (self.known_at, self.as_of, self.label.target, self.model_name, self.model_version)


def _sign(x: float, band: float = 0.0) -> int:
    return 1 if x > band else -1 if x < -band else 0


def forecasts(prediction: Prediction, horizons: Sequence[int]) -> dict[int, float]:
    """The predicted direction in [-1, 1] per horizon (see module doc)."""
    given = prediction.output.metadata.get("horizons")
    base = float(prediction.output.direction_vector)
    if not isinstance(given, Mapping):
        return {h: base for h in horizons}
    return {h: float(given.get(horizon_name(h), base)) for h in horizons}


def _horizon_outcome(p: Prediction, h: int, value: float, entry: float, exit_close: float, exit_ts: int, band: float) -> Outcome:
    r = math.log(exit_close / entry)
    direction = _sign(r, band)
    predicted = _sign(value)
    label = Label(f"return_{horizon_name(h)}", r, direction, int(exit_ts), {"entry": entry, "exit": exit_close})
    return Outcome(
        p.model_name, p.model_version, p.symbol, p.timeframe, p.as_of, p.input, value, predicted, label, predicted == direction
    )


def _check_horizons(horizons: Sequence[int]) -> tuple[int, ...]:
    if not horizons or any(int(h) <= 0 for h in horizons):
        raise ValueError(f"horizons must be positive milliseconds (got {tuple(horizons)})")
    return tuple(int(h) for h in horizons)


def resolve_horizons(
    predictions: Iterable[Prediction],
    close_ts: np.ndarray,
    close: np.ndarray,
    horizons: Sequence[int] = HORIZONS_MS,
    hold_band: float = 0.0,
) -> list[Outcome]:
    """Batch: every horizon outcome known within the bars (``close_ts`` increasing); unknown ones are left out."""
    hs = _check_horizons(horizons)
    ts = np.asarray(close_ts, np.int64)
    px = np.asarray(close, np.float64)
    out: list[Outcome] = []
    for p in predictions:
        i = int(np.searchsorted(ts, p.as_of, side="right")) - 1
        if i < 0:
            continue  # no price known at as-of: nothing to score against
        values = forecasts(p, hs)
        for h in hs:
            j = int(np.searchsorted(ts, p.as_of + h, side="left"))
            if j < len(ts):
                out.append(_horizon_outcome(p, h, values[h], float(px[i]), float(px[j]), int(ts[j]), hold_band))
    out.sort(key=Outcome.sort_key)
    return out


@dataclass
class _Opening:
    prediction: Prediction
    entry: float | None
    bar: int  # index of the entry bar (-1: none yet)


class HorizonResolver:
    """Incremental: ``add`` predictions as they are made, ``on_bar`` each closed bar; returns the outcomes it settles."""

    def __init__(self, symbol: str, horizons: Sequence[int] = HORIZONS_MS, hold_band: float = 0.0) -> None:
        self.symbol = symbol
        self.horizons = _check_horizons(horizons)
        self.hold_band = hold_band
        self._last: tuple[int, float] | None = None
        self._opening: list[_Opening] = []
        self._due: list[tuple[int, int, int, Prediction, float, float]] = []  # (due, seq, h, p, value, entry)
        self._seq = itertools.count()
        self.unscorable = 0  # predictions made before the first bar: no entry price

    @property
    def pending(self) -> int:
        return len(self._opening) + len(self._due)

    def add(self, prediction: Prediction) -> None:
        if prediction.symbol != self.symbol:
            raise ValueError(f"this resolver scores {self.symbol}; got a prediction for {prediction.symbol}")
        last = self._last
        if last is not None and prediction.as_of < last[0]:
            raise ValueError(
                f"prediction at {prediction.as_of} added after the bar closing at {last[0]}; add predictions as they "
                "are made, or score past ones with resolve_horizons"
            )
        self._opening.append(_Opening(prediction, None if last is None else last[1], -1))

    def on_bar(self, close_ts: int, close: float) -> list[Outcome]:
        close_ts = int(close_ts)
        if self._last is not None and close_ts <= self._last[0]:
            raise ValueError(f"bar closing at {close_ts} is not after the previous one ({self._last[0]}); feed bars in order")
        still: list[_Opening] = []
        for o in self._opening:
            if close_ts <= o.prediction.as_of:
                o.entry = float(close)
                still.append(o)
            elif o.entry is None:
                self.unscorable += 1
            else:
                values = forecasts(o.prediction, self.horizons)
                for h in self.horizons:
                    item = (o.prediction.as_of + h, next(self._seq), h, o.prediction, values[h], o.entry)
                    heapq.heappush(self._due, item)
        self._opening = still
        self._last = (close_ts, float(close))
        out: list[Outcome] = []
        while self._due and self._due[0][0] <= close_ts:
            _, _, h, p, value, entry = heapq.heappop(self._due)
            out.append(_horizon_outcome(p, h, value, entry, float(close), close_ts, self.hold_band))
        out.sort(key=Outcome.sort_key)
        return out


# ---------------------------------------------------------------------------------------------------------- pivots


def _pivot_outcome(
    p: Prediction, level: int, kind_pred: str, offset_pred: float, bars_pred: float,
    kind: int, offset: float, bars_until: int, known_at: int,
) -> Outcome:  # fmt: skip
    predicted = 1 if kind_pred == "H" else -1
    extra = {"bars_until": float(bars_until), "predicted_bars_until": float(bars_pred), "offset_error": offset_pred - offset}
    label = Label(f"pivot_L{level}", float(offset), int(kind), int(known_at), extra)
    return Outcome(
        p.model_name, p.model_version, p.symbol, p.timeframe, p.as_of, p.input, offset_pred, predicted, label, predicted == kind
    )


def resolve_pivots(predictions: Iterable[Prediction], candles: Candles, params: PivotParams = PivotParams()) -> list[Outcome]:
    """Batch: the pivot outcomes known within ``candles`` (from ``training.labels``), confirmed or refuted."""
    tf = timeframe_ms(candles.timeframe)
    labels = build_labels(candles, params, action_level=1, timeframe_ms=tf)
    close_ts = candles.ts + tf
    out: list[Outcome] = []
    for p in predictions:
        t = int(np.searchsorted(close_ts, p.as_of, side="right")) - 1
        if t < 0:
            continue
        for pp in p.output.pivots:
            if not 1 <= pp.level <= labels.levels:
                continue
            col = pp.level - 1
            if labels.known_at[t, col] < 0:
                continue  # not known within these bars
            kind, bars = int(labels.kind[t, col]), int(labels.bars_until[t, col])
            price = float((candles.high if kind == 1 else candles.low)[t + bars])  # a pivot's price: its bar's extreme
            offset = math.log(price / float(candles.close[t]))  # math.log as the resolver: equal to the last bit
            known = int(labels.known_ts[t, col])
            out.append(_pivot_outcome(p, pp.level, pp.kind, pp.price_offset, pp.bars_until, kind, offset, bars, known))
    out.sort(key=Outcome.sort_key)
    return out


@dataclass
class _PivotWait:
    prediction: Prediction
    t: int
    close_t: float
    levels: list[int]  # indices into prediction.output.pivots still waiting


class PivotResolver:
    """Incremental pivot scoring on the incremental Williams detector: ``add`` predictions as they are made, ``on_bar``
    each closed bar (one symbol and timeframe, bars in order). Keeps the bars' close, direction and close time (a few
    bytes per bar) so that a prediction's base bar and an outside bar's order can be looked up."""

    def __init__(self, symbol: str, params: PivotParams = PivotParams()) -> None:
        self.symbol = symbol
        self.params = params
        self._detector = WilliamsMarketStructure(params, history=1)
        self._close: list[float] = []
        self._close_ts: list[int] = []
        self._bullish: list[bool] = []
        self._effective: list[int] = []
        self._mother: tuple[float, float] | None = None
        # confirmed pivots per (level, kind): parallel lists of pivot bar index, price, confirming bar index
        self._index: dict[tuple[int, str], list[int]] = {(lv, k): [] for lv in range(1, params.levels + 1) for k in "HL"}
        self._price: dict[tuple[int, str], list[float]] = {key: [] for key in self._index}
        self._conf: dict[tuple[int, str], list[int]] = {key: [] for key in self._index}
        self._opening: list[Prediction] = []
        self._waiting: list[_PivotWait] = []
        self.unscorable = 0

    @property
    def pending(self) -> int:
        return len(self._opening) + len(self._waiting)

    def add(self, prediction: Prediction) -> None:
        if prediction.symbol != self.symbol:
            raise ValueError(f"this resolver scores {self.symbol}; got a prediction for {prediction.symbol}")
        if self._close_ts and prediction.as_of < self._close_ts[-1]:
            raise ValueError(
                f"prediction at {prediction.as_of} added after the bar closing at {self._close_ts[-1]}; add predictions "
                "as they are made, or score past ones with resolve_pivots"
            )
        if prediction.output.pivots:
            self._opening.append(prediction)

    def on_bar(self, open: float, high: float, low: float, close: float, close_ts: int) -> list[Outcome]:
        n = len(self._close)
        close_ts = int(close_ts)
        if self._close_ts and close_ts <= self._close_ts[-1]:
            raise ValueError(
                f"bar closing at {close_ts} is not after the previous one ({self._close_ts[-1]}); feed bars in order"
            )
        for e in self._detector.on_bar(n, open, high, low, close):
            key = (e.level, e.kind)
            self._index[key].append(e.index)
            self._price[key].append(e.price)
            self._conf[key].append(e.confirmed_at)
        if self.params.skip_inside:
            mother = self._mother
            if mother is None or not (high < mother[0] and low > mother[1]):
                self._effective.append(n)
                self._mother = (high, low)
        self._close.append(float(close))
        self._close_ts.append(close_ts)
        self._bullish.append(close >= open)
        still: list[Prediction] = []
        for p in self._opening:
            if close_ts <= p.as_of:
                still.append(p)
            elif n == 0:
                self.unscorable += 1
            else:  # this bar closes after as-of: the prediction's bar is the one before
                self._waiting.append(_PivotWait(p, n - 1, self._close[n - 1], list(range(len(p.output.pivots)))))
        self._opening = still
        return self._check(n)

    def _check(self, now: int) -> list[Outcome]:
        out: list[Outcome] = []
        keep: list[_PivotWait] = []
        for w in self._waiting:
            left: list[int] = []
            for slot in w.levels:
                pp = w.prediction.output.pivots[slot]
                if not 1 <= pp.level <= self.params.levels:
                    continue
                found = self._target(w.t, pp.level, now)
                if found is None:
                    left.append(slot)
                    continue
                kind, index, price, known = found
                offset = math.log(price / w.close_t)
                out.append(
                    _pivot_outcome(
                        w.prediction,
                        pp.level,
                        pp.kind,
                        pp.price_offset,
                        pp.bars_until,
                        kind,
                        offset,
                        index - w.t,
                        self._close_ts[known],
                    )
                )
            if left:
                w.levels = left
                keep.append(w)
        self._waiting = keep
        out.sort(key=Outcome.sort_key)
        return out

    def _target(self, t: int, level: int, now: int) -> tuple[int, int, float, int] | None:
        """(kind, index, price, known bar) of the first level pivot after bar t once it is final at ``now``."""
        best: tuple[int, bool, str, int] | None = None  # (index, second, kind, position)
        for kind in "HL":
            idx = self._index[(level, kind)]
            pos = bisect.bisect_right(idx, t)
            if pos < len(idx):
                index = idx[pos]
                bull = self._bullish[index]
                second = bull if kind == "H" else not bull  # outside bar: bullish prints its low first
                cand = (index, second, kind, pos)
                if best is None or cand[:2] < best[:2]:
                    best = cand
        if best is None:
            return None
        index, _, kind, pos = best
        settled = self._settled(level, "L" if kind == "H" else "H", index)
        if settled is None or settled > now:
            return None
        key = (level, kind)
        known = max(self._conf[key][pos], settled)
        return (1 if kind == "H" else -1), index, self._price[key][pos], known

    def _settled(self, level: int, kind: str, x: int) -> int | None:
        """``labels.settled`` as far as the bars seen so far tell (None: not yet)."""
        k, m = self.params.k, self.params.m
        if level == 1:
            if not self.params.skip_inside:
                return x + k if x + k < len(self._close) else None
            pos = bisect.bisect_right(self._effective, x) + k - 1
            return self._effective[pos] if pos < len(self._effective) else None
        below_index = self._index[(level - 1, kind)]
        pos = bisect.bisect_right(below_index, x) + m - 1
        return self._conf[(level - 1, kind)][pos] if pos < len(below_index) else None


def resolve_all(
    predictions: Sequence[Prediction],
    candles: Candles,
    horizons: Sequence[int] = HORIZONS_MS,
    params: PivotParams = PivotParams(),
    hold_band: float = 0.0,
) -> list[Outcome]:
    """Batch: horizon and pivot outcomes of ``predictions`` (one symbol and timeframe) known within ``candles``."""
    close_ts = candles.ts + timeframe_ms(candles.timeframe)
    out = resolve_horizons(predictions, close_ts, candles.close, horizons, hold_band) + resolve_pivots(
        predictions, candles, params
    )
    out.sort(key=Outcome.sort_key)
    return out


def summary(outcomes: Iterable[Outcome]) -> dict[str, dict[str, Any]]:
    """Hit rate and count per target (``return_5m``, ``pivot_L2``, ...)."""
    by: dict[str, list[bool]] = {}
    for o in outcomes:
        by.setdefault(o.label.target, []).append(o.hit)
    return {t: {"count": len(h), "hit_rate": sum(h) / len(h)} for t, h in sorted(by.items())}


# ------------------------------------------------------------------------------------------------------ persistence


def outcome_row(o: Outcome) -> OutcomeRow:
    """An outcome as stored in ``prediction_outcomes``."""
    return OutcomeRow(
        o.model_name, o.model_version, o.symbol, o.timeframe, int(o.as_of), o.label.target, o.input.spec,
        int(o.input.as_of), o.input.digest, float(o.predicted), int(o.predicted_direction), float(o.label.value),
        int(o.label.direction), int(o.label.known_at), int(o.hit), json.dumps(dict(o.label.extra), sort_keys=True),
    )  # fmt: skip


def store_outcomes(repository: PredictionRepository, outcomes: Sequence[Outcome]) -> int:
    """Persist outcomes (validated; an outcome already stored is kept as it was); the number newly stored."""
    return repository.add_outcomes([outcome_row(o) for o in outcomes])


def stored_samples(
    repository: PredictionRepository, now_ms: int, where: PredictionFilter = PredictionFilter(), target: str | None = None
) -> list[TrainingSample]:
    """The training samples a trainer whose clock is at ``now_ms`` may use: stored outcomes with ``known_at <= now``."""
    return [
        TrainingSample(
            InputRef(r.input_spec, r.input_as_of, r.input_hash),
            Label(r.target, r.value, r.direction, r.known_at, json.loads(r.extra)),
            r.model_name,
            r.symbol,
            r.timeframe,
        )
        for r in repository.outcomes(where, known_by=now_ms, target=target)
    ]


class OutcomeRecorder:
    """The live loop of one symbol and timeframe in one object: each prediction goes to the inference history and to
    both resolvers; each closed bar resolves what it makes known, stores those outcomes (training samples) and returns
    them. What a runtime calls; the result equals ``resolve_all`` over the same bars (tested on real data)."""

    def __init__(
        self,
        history: InferenceHistory,
        symbol: str,
        timeframe: str,
        horizons: Sequence[int] = HORIZONS_MS,
        params: PivotParams = PivotParams(),
        hold_band: float = 0.0,
    ) -> None:
        self.history = history
        self.symbol, self.timeframe = symbol, timeframe
        self._tf = timeframe_ms(timeframe)
        self.horizons = HorizonResolver(symbol, horizons, hold_band)
        self.pivots = PivotResolver(symbol, params)
        self.stored = 0

    def on_prediction(self, output: ModelOutput, context: PredictionContext) -> Prediction:
        """Record a prediction just made (before any bar closing after its as-of time) and start tracking it."""
        if context.timeframe != self.timeframe:
            raise ValueError(f"this recorder tracks {self.timeframe} predictions; got one for {context.timeframe}")
        self.history.record(output, context)
        p = Prediction(output, context.model_version, context.timeframe, context.input, self.history.clock.now_ms())
        self.horizons.add(p)
        self.pivots.add(p)
        return p

    def on_bar(self, ts: int, open: float, high: float, low: float, close: float) -> list[Outcome]:
        """One closed bar (open time ``ts``): the outcomes it makes known, stored and returned (by ``known_at``)."""
        close_ts = int(ts) + self._tf
        out = self.horizons.on_bar(close_ts, close) + self.pivots.on_bar(open, high, low, close, close_ts)
        out.sort(key=Outcome.sort_key)
        if out:
            self.history.flush()  # an outcome's prediction is stored before the outcome
            self.stored += store_outcomes(self.history.rows, out)
        return out
