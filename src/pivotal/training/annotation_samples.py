"""Chart annotations as training samples, in the realtime sample format, and metrics of a model against them.

A manual annotation (``data.state.annotations``) marks a trade on a chart: the entry bar and the exit bar of one
timeframe, a direction (LONG / SHORT). It becomes two samples, each with the full market state the model sees:

- **entry**: input as of the entry bar's close (``entry_ts + timeframe``), action ``BUY`` for LONG, ``SELL`` for SHORT;
- **exit**: input as of the exit bar's close, action ``HOLD``.

Actions are position targets (``core.vocabulary.Action``: BUY = be long, HOLD = be flat), so the same reading gives the
truth of *every* bar of a replay: a decision at time t should be the annotation's direction while its trade is open
(entry close <= t < exit close) and HOLD otherwise (``target_actions``). A sample's label is known when its trade is
complete: ``known_at`` = the exit bar's close, for both samples; a sample is never emitted with a label from after it.

The input of a sample is cut by ``features.assemble.build_input_from_series`` at ``as_of`` from series prepared once
over their whole history, exactly as ``pivotal predict`` and the walk-forward samples build theirs: it holds only
candles closed by ``as_of`` and pivots confirmed by then, so bars appended later never change it (tested).

``AnnotationSample.to_dict`` is the realtime sample structure of ``training.live_samples.LivePivotSample.to_dict``
(same keys: test_case_id, symbol, timestamp, as_of, known_at, action, expected_outcome, training_config,
annotation_metadata) plus ``market_state`` (the reference's test-case field): per window the candles, the indicators'
last values and the confirmed pivots, the order-book vector and microstructure when the input has them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from pivotal.core.timeframes import timeframe_ms
from pivotal.core.vocabulary import ACTION_BUY, ACTION_HOLD, ACTION_SELL, ACTIONS
from pivotal.data.state.annotations import Annotation
from pivotal.features.assemble import PreparedSeries, build_input_from_series
from pivotal.features.completeness import check_completeness
from pivotal.features.encoding import context_size, encode, windows_shape
from pivotal.features.input_spec import InputSpec
from pivotal.features.model_io import BaseDataInput, WindowKey
from pivotal.training.dataset import SampleSet, next_open_of

ENTRY, EXIT = "entry", "exit"
SOURCE = "manual_annotation"


@dataclass(frozen=True)
class AnnotationSample:
    """One training sample of one annotation: its entry or its exit (module doc)."""

    annotation_id: str
    symbol: str
    timeframe: str  # the annotation's timeframe (the bars clicked on)
    point: str  # entry | exit
    bar_ts: int  # open time of the bar the sample is taken at
    as_of: int  # that bar's close: the input's as-of time
    known_at: int  # close of the exit bar: when the label exists
    action: str  # BUY | SELL | HOLD (a position target)
    direction: str  # LONG | SHORT (the annotated trade)
    entry_price: float
    exit_price: float
    holding_period_s: int
    notes: str = ""
    tags: tuple[str, ...] = ()

    @property
    def action_code(self) -> int:
        return ACTIONS.index(self.action)

    @property
    def test_case_id(self) -> str:
        return f"annotation_{self.annotation_id}_{self.point}"

    @property
    def profit_loss_pct(self) -> float:
        sign = 1.0 if self.direction == "LONG" else -1.0
        return sign * (self.exit_price / self.entry_price - 1.0) * 100.0

    def to_dict(self, market_state: Mapping[str, Any] | None = None, timeframes: Sequence[str] = (),
                candles_per_timeframe: int = 0) -> dict[str, Any]:  # fmt: skip
        """The realtime sample structure (``LivePivotSample.to_dict``'s keys) plus ``market_state``."""
        iso = datetime.fromtimestamp(self.bar_ts / 1000, UTC).isoformat()
        return {
            "test_case_id": self.test_case_id,
            "symbol": self.symbol,
            "timestamp": iso,
            "as_of": self.as_of,
            "known_at": self.known_at,
            "action": self.action,
            "expected_outcome": {
                "direction": self.direction,
                "entry_price": self.entry_price,
                "exit_price": self.exit_price,
                "profit_loss_pct": self.profit_loss_pct,
                "holding_period_seconds": self.holding_period_s,
            },
            "training_config": {"timeframes": list(timeframes), "candles_per_timeframe": candles_per_timeframe},
            "annotation_metadata": {
                "source": SOURCE,
                "annotator": "manual",
                "annotation_id": self.annotation_id,
                "timeframe": self.timeframe,
                "point": self.point,
                "confidence": 1.0,  # a trader's own mark
                "notes": self.notes,
                "tags": list(self.tags),
            },
            "market_state": None if market_state is None else dict(market_state),
        }


def unusable(a: Annotation) -> str | None:
    """Why ``a`` cannot become samples (None when it can): it needs a direction and an exit."""
    if a.direction not in ("LONG", "SHORT"):
        return "no direction (LONG or SHORT)"
    if a.exit_ts is None or a.exit_price is None:
        return "no exit"
    if a.exit_ts <= a.entry_ts:
        return "exit on the entry bar"
    return None


def samples_of(a: Annotation) -> tuple[AnnotationSample, AnnotationSample]:
    """The entry and exit samples of one annotation; ``ValueError`` naming it when ``unusable``."""
    why = unusable(a)
    if why is not None:
        raise ValueError(f"annotation {a.id}: {why}; give it a direction and an exit bar after its entry")
    assert a.exit_ts is not None and a.exit_price is not None and a.direction is not None
    tf = timeframe_ms(a.timeframe)
    known_at = a.exit_ts + tf
    action = ACTIONS[ACTION_BUY] if a.direction == "LONG" else ACTIONS[ACTION_SELL]
    entry = AnnotationSample(
        a.id, a.symbol, a.timeframe, ENTRY, a.entry_ts, a.entry_ts + tf, known_at, action, a.direction,
        float(a.entry_price), float(a.exit_price), (a.exit_ts - a.entry_ts) // 1000, a.notes, tuple(a.tags),
    )  # fmt: skip
    exit_ = replace(entry, point=EXIT, bar_ts=a.exit_ts, as_of=known_at, action=ACTIONS[ACTION_HOLD])
    return entry, exit_


def annotation_samples(annotations: Iterable[Annotation]) -> tuple[list[AnnotationSample], list[tuple[str, str]]]:
    """Samples of every usable annotation ordered by as-of time, and (id, reason) of those left out."""
    samples: list[AnnotationSample] = []
    skipped: list[tuple[str, str]] = []
    for a in annotations:
        why = unusable(a)
        if why is not None:
            skipped.append((a.id, why))
            continue
        samples.extend(samples_of(a))
    samples.sort(key=lambda s: (s.as_of, s.annotation_id, s.point))
    return samples, skipped


# ------------------------------------------------------------------------------------------- market state


def _num(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def market_state(inp: BaseDataInput) -> dict[str, Any]:
    """The JSON-able market state of one input: per window ``ohlcv_<tf>`` (columns, bar open times), and per
    ``"<symbol> <tf>"`` the indicators' last values and the pivots confirmed by the input's time (bar open time of
    the pivot, price, confirmation time), the order-book vector and the microstructure fields."""
    out: dict[str, Any] = {"as_of": int(inp.timestamp), "technical_indicators": {}, "pivot_points": {}}
    for (sym, tf), candles in inp.ohlcv.items():
        key = f"ohlcv_{tf}" if sym == inp.symbol else f"ohlcv_{sym}_{tf}"
        out[key] = {
            "ts": [int(x) for x in candles.ts],
            **{c: [float(x) for x in getattr(candles, c)] for c in ("open", "high", "low", "close", "volume")},
        }
        name = f"{sym} {tf}"
        out["technical_indicators"][name] = {
            k: (_num(float(v[-1])) if len(v) else None) for k, v in sorted(inp.indicators.get((sym, tf), {}).items())
        }
        pivots = inp.pivots.get((sym, tf))
        rows: list[dict[str, Any]] = []
        if pivots is not None and len(candles):
            ts = np.asarray(candles.ts)
            for level in range(1, len(pivots.highs) + 1):
                for kind in ("H", "L"):
                    arr = pivots.get(level, kind)
                    for i, p, c in arr.as_tuples():
                        if 0 <= i < len(ts) and 0 <= c < len(ts):
                            rows.append({"level": level, "kind": kind, "ts": int(ts[i]), "price": p,
                                         "confirmed_ts": int(ts[c]) + timeframe_ms(tf)})  # fmt: skip
        rows.sort(key=lambda r: (r["confirmed_ts"], r["level"], r["kind"]))
        out["pivot_points"][name] = rows
    out["cob_data"] = None if inp.order_book is None else [float(x) for x in inp.order_book]
    out["microstructure"] = None if inp.microstructure is None else {k: _num(v) for k, v in inp.microstructure.items()}
    return out


def sample_input(series: Mapping[WindowKey, PreparedSeries], sample: AnnotationSample, spec: InputSpec) -> BaseDataInput:
    """The input of ``sample``: cut at its as-of time (module doc)."""
    return build_input_from_series(series, sample.symbol, sample.as_of, spec)


def to_test_case(series: Mapping[WindowKey, PreparedSeries], sample: AnnotationSample, spec: InputSpec) -> dict[str, Any]:
    """``sample`` in the realtime format with its market state (a JSON test fixture)."""
    inp = sample_input(series, sample, spec)
    timeframes = [tf for _, tf in spec.keys(sample.symbol)]
    return sample.to_dict(market_state(inp), timeframes, spec.window_len)


# ------------------------------------------------------------------------------------------- sample sets


def sample_set(
    series: Mapping[WindowKey, PreparedSeries], samples: Sequence[AnnotationSample], spec: InputSpec, levels: int
) -> tuple[SampleSet, list[AnnotationSample], list[tuple[AnnotationSample, str]]]:
    """The ``SampleSet`` the trainer takes: one row per sample whose input is complete (the rule ``pivotal predict``
    applies), labelled with its action only (pivot targets unknown: masked by the loss). Returns the set, the samples
    kept (row order) and (sample, reason) of those left out. ``index``: the base window's last bar closed at as-of;
    ``action_known_at``: the base bar closed at ``known_at``."""
    kept: list[AnnotationSample] = []
    dropped: list[tuple[AnnotationSample, str]] = []
    windows: list[np.ndarray] = []
    contexts: list[np.ndarray] = []
    for s in samples:
        inp = sample_input(series, s, spec)
        ready = check_completeness(inp, spec)
        if not ready.ready:
            dropped.append((s, ready.reason))
            continue
        encoded = encode(inp, spec)
        kept.append(s)
        windows.append(encoded.windows)
        contexts.append(encoded.context)
    n = len(kept)
    index = np.zeros(n, np.int64)
    known = np.zeros(n, np.int64)
    close = np.full(n, np.nan)
    next_open = np.full(n, np.nan)
    for row, s in enumerate(kept):
        base = series[spec.keys(s.symbol)[0]]
        index[row] = base.closed_count(s.as_of) - 1
        known[row] = base.closed_count(s.known_at) - 1
        close[row] = base.candles.close[index[row]]
        next_open[row] = next_open_of(base.candles.open, index[row : row + 1])[0]
    out = SampleSet(
        index=index,
        time=np.array([s.as_of for s in kept], np.int64),
        close=close,
        next_open=next_open,
        windows=np.stack(windows).astype(np.float16) if n else np.zeros((0, *windows_shape(spec)), np.float16),
        context=np.stack(contexts).astype(np.float32) if n else np.zeros((0, context_size(spec)), np.float32),
        kind=np.full((n, levels), -1, np.int64),
        price=np.full((n, levels), np.nan, np.float32),
        bars=np.full((n, levels), np.nan, np.float32),
        action=np.array([s.action_code for s in kept], np.int64),
        known_at=np.full((n, levels), -1, np.int64),
        action_known_at=known,
        last_kind=np.full((n, levels), -1, np.int64),
    )
    return out, kept, dropped


def concat(sets: Sequence[SampleSet]) -> SampleSet:
    """Sample sets (e.g. of several symbols) as one, ordered by as-of time (stable)."""
    if len(sets) == 1:
        return sets[0]
    merged = SampleSet(**{f.name: np.concatenate([getattr(s, f.name) for s in sets]) for f in fields(SampleSet)})
    return merged.take(np.argsort(merged.time, kind="stable"))


# ------------------------------------------------------------------------------------------- truth and metrics


def target_actions(annotations: Iterable[Annotation], as_of: np.ndarray) -> np.ndarray:
    """The annotated position target (action code) of a decision at each ``as_of`` time: the direction of the trade
    open then (entry close <= t < exit close; where trades overlap, the one entered last), else HOLD."""
    as_of = np.asarray(as_of, np.int64)
    truth = np.full(len(as_of), ACTION_HOLD, np.int64)
    entered = np.full(len(as_of), -1, np.int64)
    for a in annotations:
        if unusable(a) is not None:
            continue
        assert a.exit_ts is not None
        tf = timeframe_ms(a.timeframe)
        inside = (as_of >= a.entry_ts + tf) & (as_of < a.exit_ts + tf) & (a.entry_ts >= entered)
        truth[inside] = ACTION_BUY if a.direction == "LONG" else ACTION_SELL
        entered[inside] = a.entry_ts
    return truth


__all__ = [
    "ENTRY",
    "EXIT",
    "AnnotationSample",
    "annotation_samples",
    "concat",
    "market_state",
    "sample_input",
    "sample_set",
    "samples_of",
    "target_actions",
    "to_test_case",
    "unusable",
]
