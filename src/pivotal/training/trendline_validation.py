"""Trend-line validation (reference ``trend-line-training.txt``): when two level-l pivots of one kind confirm, the line
through them judges the predictions made before it was known; each verdict is an annotation and a training sample.

**Which line judges a prediction.** The reference: "when 2 L2 pivots of same type form after a prediction". With ``t``
the prediction's bar (the last bar closed at its as-of time, as in ``training.outcomes``), the line of kind K (H: two
highs, L: two lows) that judges it is the first level-l K line whose *both* pivot bars lie after ``t`` (``i1 > t``);
its first pivot is therefore the next K pivot after the prediction. The line is known at the close of the bar that
confirmed its second pivot (``TrendLine.valid_from``); that close time is every verdict's ``known_at``, so a verdict
never exists before its line is known, and ``known_at > as_of`` always (``i1 > t`` puts the confirming bar after
``t``). A prediction gets at most one line per kind; predictions made after a line's first pivot wait for the next.

**Rules** (per judged prediction and line kind K; targets ``trend_L2H_direction`` etc.):

- *direction*: the predicted sign of ``direction_vector`` (0 inside ``hold_band``) against the line's direction
  (``up`` +1 / ``down`` -1 / ``flat`` 0, flat when ``|v2 - v1| <= flat_tolerance * v1``): validated when equal.
- *price*: for the ``PivotPrediction`` of this level whose kind is K: the predicted pivot price
  ``close[t] * exp(price_offset)`` against the line's value at the predicted bar ``t + bars_until`` (clamped to the
  bars between the prediction and the line's confirmation, so the line is never extrapolated past what was seen):
  validated when ``|price_offset - ln(line / close[t])| <= price_tolerance``. A pivot predicted on the trend line
  counts even if its timing is off; timing has its own verdict.
- *time*: the same ``PivotPrediction``'s ``bars_until`` against ``i1 - t`` (bars from the prediction to the line's
  first pivot, the next K pivot): validated when the error is at most ``max(time_tolerance_bars,
  time_tolerance_fraction * (i1 - t))``.

The reference gives no tolerance: the defaults (flat 0.1 %, price 0.2 % in log terms, time max(3 bars, 25 %)) are
this module's choice, sized for 1m BTC/USDT L2 swings (typically 0.3-1 % apart); all are ``TrendValidationConfig``
fields. The reference's priority ("high" when incorrect, "normal" otherwise) is a sample weight:
``refuted_weight`` (2.0) / ``validated_weight`` (1.0), in ``label.extra["weight"]``.

**Samples: one format.** Each verdict is a ``training.outcomes.Outcome`` (label with ``known_at``; ``hit`` =
validated) so ``verdict.sample()`` is the same ``TrainingSample`` the deferred outcomes give, and verdicts can be
stored with ``store_outcomes`` next to them. ``training_samples`` orders refuted ones first.

Batch (``validate_trendlines``: ``wms_batch`` + ``structure.trendlines``) and incremental (``TrendLineValidator``: the
incremental Williams detector, fed closed bars) give equal verdicts (tested on real data); a verdict once emitted is
final. ``accuracy`` gives validated / refuted / accuracy per model, by timeframe, level, kind and aspect.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from pivotal.core.timeframes import timeframe_ms
from pivotal.data.candles import Candles
from pivotal.data.state.annotations import Annotation, AnnotationRepository
from pivotal.models.io import PivotPrediction
from pivotal.models.output_store import Prediction
from pivotal.structure.incremental import WilliamsMarketStructure
from pivotal.structure.pivots import wms_batch
from pivotal.structure.trendlines import TrendLine, trend_lines
from pivotal.structure.types import Kind, PivotParams
from pivotal.training.outcomes import Label, Outcome, TrainingSample

ASPECTS = ("direction", "price", "time")
_KINDS: tuple[Kind, Kind] = ("H", "L")


@dataclass(frozen=True)
class TrendValidationConfig:
    """Which pivots form the lines and how strictly predictions are judged (see the module doc for each rule)."""

    level: int = 2
    flat_tolerance: float = 0.001
    hold_band: float = 0.0
    price_tolerance: float = 0.002
    time_tolerance_bars: float = 3.0
    time_tolerance_fraction: float = 0.25
    validated_weight: float = 1.0
    refuted_weight: float = 2.0

    def __post_init__(self) -> None:
        if self.level < 1:
            raise ValueError(f"trend validation: level must be >= 1 (got {self.level})")
        for name in ("flat_tolerance", "hold_band", "price_tolerance", "time_tolerance_bars", "time_tolerance_fraction"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"trend validation: {name} must be a finite number >= 0 (got {value})")
        if not (self.validated_weight > 0 and self.refuted_weight > 0):
            raise ValueError("trend validation: validated_weight and refuted_weight must be > 0")


@dataclass(frozen=True)
class TrendVerdict:
    """One judged aspect of one prediction against one trend line; ``outcome.hit`` is the verdict."""

    outcome: Outcome
    line: TrendLine
    aspect: str  # direction | price | time
    weight: float

    @property
    def known_at(self) -> int:
        return self.outcome.known_at

    @property
    def validated(self) -> bool:
        return self.outcome.hit

    @property
    def verdict(self) -> str:
        return "validated" if self.outcome.hit else "refuted"

    @property
    def priority(self) -> str:
        """The reference's training priority: ``high`` for a wrong prediction."""
        return "normal" if self.outcome.hit else "high"

    def sample(self) -> TrainingSample:
        """The training sample (``label.extra["weight"]`` carries the priority)."""
        return self.outcome.sample()

    @property
    def annotation_id(self) -> str:
        o = self.outcome
        key = f"{o.model_name}|{o.model_version}|{o.symbol}|{o.timeframe}|{o.as_of}|{o.label.target}"
        return "tl-" + hashlib.sha256(key.encode()).hexdigest()[:20]

    def annotation(self) -> Annotation:
        """The verdict as a chart annotation: the line from its first to its second pivot, LONG for a rising line,
        SHORT for a falling one (none for flat), the prediction and what the line showed in ``details``."""
        o, line = self.outcome, self.line
        assert line.start_ts is not None and line.end_ts is not None  # both builders fill them
        direction = {"up": "LONG", "down": "SHORT"}.get(line.direction)
        extra = dict(o.label.extra)
        details: dict[str, Any] = {
            "target": o.label.target,
            "aspect": self.aspect,
            "prediction_as_of": o.as_of,
            "input_spec": o.input.spec,
            "input_as_of": o.input.as_of,
            "input_hash": o.input.digest,
            "predicted": o.predicted,
            "predicted_direction": o.predicted_direction,
            "actual": o.label.value,
            "actual_direction": o.label.direction,
            "weight": self.weight,
            "priority": self.priority,
            "tolerance": extra.get("tolerance"),
            "slope_per_bar": line.slope,
        }
        return Annotation(
            id=self.annotation_id,
            source="trendline",
            symbol=o.symbol,
            timeframe=o.timeframe,
            entry_ts=int(line.start_ts),
            entry_price=float(line.v1),
            exit_ts=int(line.end_ts),
            exit_price=float(line.v2),
            direction=direction,
            verdict=self.verdict,
            model_name=o.model_name,
            model_version=o.model_version,
            known_at=o.known_at,
            notes=f"{o.label.target}: {self.verdict} by the L{line.level}{line.kind} line ({line.direction})",
            tags=(f"L{line.level}{line.kind}", self.aspect, self.verdict),
            details=details,
        )


def _sign(x: float, band: float) -> int:
    return 1 if x > band else -1 if x < -band else 0


def _pivot_prediction(p: Prediction, level: int, kind: str) -> PivotPrediction | None:
    for pp in p.output.pivots:
        if pp.level == level and pp.kind == kind:
            return pp
    return None


def _verdicts(
    p: Prediction, t: int, close_t: float, line: TrendLine, known_at: int, cfg: TrendValidationConfig
) -> list[TrendVerdict]:
    """The verdicts of prediction ``p`` (bar ``t``, close ``close_t``) against ``line`` known at ``known_at``."""
    assert line.i1 > t and line.start_ts is not None and line.end_ts is not None
    name = f"trend_L{line.level}{line.kind}"
    base = {
        "line_start_ts": float(line.start_ts),
        "line_end_ts": float(line.end_ts),
        "line_v1": line.v1,
        "line_v2": line.v2,
        "line_confirmed_bar_offset": float(line.valid_from - t),
    }

    def verdict(
        aspect: str, predicted: float, pred_dir: int, value: float, direction: int, hit: bool, extra: dict[str, float]
    ) -> TrendVerdict:
        weight = cfg.validated_weight if hit else cfg.refuted_weight
        label = Label(f"{name}_{aspect}", float(value), int(direction), int(known_at), {**base, **extra, "weight": weight})
        outcome = Outcome(
            p.model_name, p.model_version, p.symbol, p.timeframe, p.as_of, p.input, float(predicted), int(pred_dir), label, hit
        )
        return TrendVerdict(outcome, line, aspect, weight)

    out: list[TrendVerdict] = []
    dv = float(p.output.direction_vector)
    predicted_dir = _sign(dv, cfg.hold_band)
    actual_dir = {"up": 1, "down": -1, "flat": 0}[line.direction]
    change = math.log(line.v2 / line.v1)
    out.append(
        verdict(
            "direction", dv, predicted_dir, change, actual_dir, predicted_dir == actual_dir, {"tolerance": cfg.flat_tolerance}
        )
    )
    pp = _pivot_prediction(p, line.level, line.kind)
    if pp is None:
        return out
    kind_sign = 1 if line.kind == "H" else -1
    at = min(max(t + pp.bars_until, t + 1.0), float(line.valid_from))  # clamp: prediction .. line known
    line_price = float(line.value_at(at))
    if line_price > 0:
        value = math.log(line_price / close_t)
        hit = abs(pp.price_offset - value) <= cfg.price_tolerance
        extra = {"tolerance": cfg.price_tolerance, "at_bar_offset": at - t, "line_price": line_price}
        out.append(verdict("price", pp.price_offset, kind_sign, value, kind_sign, hit, extra))
    bars = line.i1 - t
    tolerance = max(cfg.time_tolerance_bars, cfg.time_tolerance_fraction * bars)
    hit = abs(pp.bars_until - bars) <= tolerance
    out.append(verdict("time", pp.bars_until, kind_sign, float(bars), kind_sign, hit, {"tolerance": tolerance}))
    return out


def _sort_key(v: TrendVerdict) -> tuple[int, int, str, str, str]:
    return v.outcome.sort_key()


# ------------------------------------------------------------------------------------------------------------ batch


def validate_trendlines(
    predictions: Iterable[Prediction],
    candles: Candles,
    params: PivotParams = PivotParams(),
    config: TrendValidationConfig = TrendValidationConfig(),
) -> list[TrendVerdict]:
    """Batch: every verdict known within ``candles`` (one symbol and timeframe), ordered by ``known_at``."""
    if config.level > params.levels:
        raise ValueError(f"trend validation level {config.level} is above the detector's levels ({params.levels})")
    tf = timeframe_ms(candles.timeframe)
    close_ts = candles.ts + tf
    pivots = wms_batch(open=candles.open, high=candles.high, low=candles.low, close=candles.close, params=params)
    lines: dict[str, list[TrendLine]] = {}
    index: dict[str, np.ndarray] = {}
    for kind in _KINDS:
        found = trend_lines(pivots, config.level, kind, ts=candles.ts, flat_tolerance=config.flat_tolerance)
        lines[kind] = [replace(line, valid_until=None) for line in found]  # unknown when the verdict is emitted
        index[kind] = pivots.get(config.level, kind).index
    out: list[TrendVerdict] = []
    for p in predictions:
        if p.timeframe != candles.timeframe or p.symbol != candles.symbol:
            raise ValueError(f"prediction for {p.symbol} {p.timeframe} scored on {candles.symbol} {candles.timeframe} bars")
        t = int(np.searchsorted(close_ts, p.as_of, side="right")) - 1
        if t < 0:
            continue
        for kind in _KINDS:
            first = int(np.searchsorted(index[kind], t, side="right"))  # first pivot of this kind after t
            if first < len(lines[kind]):  # line (first, first + 1) exists
                line = lines[kind][first]
                out += _verdicts(p, t, float(candles.close[t]), line, int(close_ts[line.valid_from]), config)
    out.sort(key=_sort_key)
    return out


# ------------------------------------------------------------------------------------------------------ incremental


@dataclass
class _Waiting:
    prediction: Prediction
    t: int
    close_t: float
    kinds: list[str]  # line kinds still to come


class TrendLineValidator:
    """Incremental: ``add`` predictions as they are made, ``on_bar`` each closed bar (one symbol and timeframe, in
    order); returns the verdicts that bar makes known. Keeps the last pivot per kind and the bars' closes."""

    def __init__(
        self,
        symbol: str,
        timeframe: str,
        params: PivotParams = PivotParams(),
        config: TrendValidationConfig = TrendValidationConfig(),
    ) -> None:
        if config.level > params.levels:
            raise ValueError(f"trend validation level {config.level} is above the detector's levels ({params.levels})")
        self.symbol, self.timeframe = symbol, timeframe
        self.config = config
        self._tf = timeframe_ms(timeframe)
        self._detector = WilliamsMarketStructure(params, history=1)
        self._close: list[float] = []
        self._last_close_ts: int | None = None
        self._last_pivot: dict[str, tuple[int, float, int]] = {}  # kind -> (index, price, ts)
        self._opening: list[Prediction] = []
        self._waiting: list[_Waiting] = []
        self.unscorable = 0
        self.lines = 0
        self.verdicts = 0  # emitted so far (counters, not a list: a live run emits millions)
        self.validated = 0
        self._judged: set[tuple[str, str, int]] = set()

    @property
    def pending(self) -> int:
        return len(self._opening) + len(self._waiting)

    def add(self, prediction: Prediction) -> None:
        if prediction.symbol != self.symbol or prediction.timeframe != self.timeframe:
            raise ValueError(
                f"this validator judges {self.symbol} {self.timeframe}; got a prediction for "
                f"{prediction.symbol} {prediction.timeframe}"
            )
        if self._last_close_ts is not None and prediction.as_of < self._last_close_ts:
            raise ValueError(
                f"prediction at {prediction.as_of} added after the bar closing at {self._last_close_ts}; add "
                "predictions as they are made, or judge past ones with validate_trendlines"
            )
        self._opening.append(prediction)

    def on_bar(self, ts: int, open: float, high: float, low: float, close: float) -> list[TrendVerdict]:
        """One closed bar (open time ``ts``): the verdicts it makes known, ordered like ``validate_trendlines``."""
        n = len(self._close)
        close_ts = int(ts) + self._tf
        if self._last_close_ts is not None and close_ts <= self._last_close_ts:
            raise ValueError(
                f"bar closing at {close_ts} is not after the previous one ({self._last_close_ts}); feed bars in order"
            )
        events = self._detector.on_bar(n, open, high, low, close, ts=int(ts), close_ts=close_ts)
        self._close.append(float(close))
        self._last_close_ts = close_ts
        still: list[Prediction] = []
        for p in self._opening:
            if close_ts <= p.as_of:
                still.append(p)
            elif n == 0:
                self.unscorable += 1
            else:  # this bar closes after as-of: the prediction's bar is the one before
                self._waiting.append(_Waiting(p, n - 1, self._close[n - 1], list(_KINDS)))
        self._opening = still
        out: list[TrendVerdict] = []
        level = self.config.level
        for e in events:
            if e.level != level:
                continue
            previous = self._last_pivot.get(e.kind)
            assert e.ts is not None
            self._last_pivot[e.kind] = (e.index, e.price, e.ts)
            if previous is None:
                continue
            i1, v1, ts1 = previous
            line = TrendLine(e.kind, level, i1, v1, e.index, e.price, n, None, ts1, e.ts, self.config.flat_tolerance)
            self.lines += 1
            out += self._judge(line, close_ts)
        out.sort(key=_sort_key)
        self.verdicts += len(out)
        self.validated += sum(v.validated for v in out)
        self._judged.update((v.outcome.model_name, v.outcome.model_version, v.outcome.as_of) for v in out)
        return out

    def _judge(self, line: TrendLine, known_at: int) -> list[TrendVerdict]:
        out: list[TrendVerdict] = []
        keep: list[_Waiting] = []
        for w in self._waiting:
            if line.kind in w.kinds and line.i1 > w.t:
                out += _verdicts(w.prediction, w.t, w.close_t, line, known_at, self.config)
                w.kinds.remove(line.kind)
            if w.kinds:
                keep.append(w)
        self._waiting = keep
        return out

    def stats(self) -> dict[str, Any]:
        """The reference's statistics (``get_trend_training_stats``) over the verdicts emitted so far."""
        return {
            "lines": self.lines,
            "judged_predictions": len(self._judged),
            "verdicts": self.verdicts,
            "validated": self.validated,
            "refuted": self.verdicts - self.validated,
            "accuracy": self.validated / self.verdicts if self.verdicts else None,
            "pending_validations": self.pending,
            "unscorable": self.unscorable,
        }


# ------------------------------------------------------------------------------------------------ samples and stats


def training_samples(verdicts: Iterable[TrendVerdict], now_ms: int) -> list[TrainingSample]:
    """The samples a trainer whose clock is at ``now_ms`` may use, refuted (high priority) first, then by known_at."""
    known = [v for v in verdicts if v.known_at <= now_ms]
    known.sort(key=lambda v: (v.validated, *_sort_key(v)))
    return [v.sample() for v in known]


def _tally(verdicts: Sequence[TrendVerdict]) -> dict[str, Any]:
    validated = sum(v.validated for v in verdicts)
    return {"validated": validated, "refuted": len(verdicts) - validated, "accuracy": validated / len(verdicts)}


def accuracy(verdicts: Iterable[TrendVerdict]) -> dict[str, dict[str, Any]]:
    """Per model name: validated, refuted, accuracy, and the same ``by`` ``"<timeframe> L<level><kind> <aspect>"``."""
    per_model: dict[str, list[TrendVerdict]] = {}
    for v in verdicts:
        per_model.setdefault(v.outcome.model_name, []).append(v)
    out: dict[str, dict[str, Any]] = {}
    for model, items in sorted(per_model.items()):
        groups: dict[str, list[TrendVerdict]] = {}
        for v in items:
            groups.setdefault(f"{v.outcome.timeframe} L{v.line.level}{v.line.kind} {v.aspect}", []).append(v)
        out[model] = {**_tally(items), "by": {key: _tally(g) for key, g in sorted(groups.items())}}
    return out


def store_verdicts(repository: AnnotationRepository, verdicts: Sequence[TrendVerdict]) -> int:
    """Store the verdicts as ``trendline`` annotations; the number newly stored (a verdict is stored once)."""
    return len(repository.create_many([v.annotation() for v in verdicts]))
