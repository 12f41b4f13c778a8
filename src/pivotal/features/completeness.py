"""Validation before inference: is a ``BaseDataInput`` complete enough to predict on?

Score (in [0, 1]): the mean over the spec's parts of each part's fraction present.
- A window part is ``present / length``, where ``present`` counts the window's bars that sit in the ``length``
  grid slots ending with the last bar closed by t. Gaps *and* staleness (the newest bars missing) both lower it.
- With ``spec.require_order_book`` the order book is one more part, 1 when present, else 0. It is present wherever
  stored depth covers t (``features.cob.order_book_at``: a COB row known by t that ended at most 5 s before t);
  outside the captured intervals it is None, so an input that requires it is scored down there, never filled in.

The input is *ready* iff the score >= ``spec.completeness_threshold`` (design: 0.8) and every window has at least
``spec.min_bars`` bars (design: 100). Otherwise ``reason`` says why and ``missing`` lists each deficient part.
Structural faults (a bar closing after t, arrays of the wrong length) are not "incomplete" but wrong: they raise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pivotal.core.errors import PivotalError
from pivotal.core.timeframes import timeframe_ms
from pivotal.data.alignment import bucket_start
from pivotal.features.input_spec import InputSpec
from pivotal.features.model_io import BaseDataInput, ShapeError


class InputNotReady(PivotalError, RuntimeError):
    """Inference refused: the input is below the completeness threshold or a window is too short."""


@dataclass(frozen=True)
class Completeness:
    """Result of ``check_completeness``: ``parts`` maps "SYMBOL TF" (and "order_book") to its fraction."""

    score: float
    ready: bool
    parts: dict[str, float]
    missing: tuple[str, ...]
    reason: str

    def require_ready(self) -> None:
        """Raise ``InputNotReady`` with the reason unless ready."""
        if not self.ready:
            raise InputNotReady(self.reason)


def check_completeness(inp: BaseDataInput, spec: InputSpec) -> Completeness:
    """Score ``inp`` against ``spec``; raises ValueError/ShapeError for structurally wrong inputs (see module doc)."""
    validate_structure(inp, spec)
    parts: dict[str, float] = {}
    missing: list[str] = []
    too_short: list[str] = []
    for wspec, key in zip(spec.windows, spec.keys(inp.symbol), strict=True):
        name = f"{key[0]} {key[1]}"
        candles = inp.ohlcv.get(key)
        present = 0 if candles is None else _bars_in_slots(candles.ts, key[1], inp.timestamp, wspec.length)
        parts[name] = present / wspec.length
        if present < wspec.length:
            missing.append(f"{name}: {present}/{wspec.length} bars ({wspec.length - present} missing)")
        count = 0 if candles is None else len(candles)
        if count < spec.min_bars:
            too_short.append(f"{name}: {count} bars < minimum {spec.min_bars}")
    if spec.require_order_book:
        parts["order_book"] = 0.0 if inp.order_book is None else 1.0
        if inp.order_book is None:
            missing.append("order_book: absent")
    score = float(np.mean(list(parts.values())))
    ready = score >= spec.completeness_threshold and not too_short
    return Completeness(score, ready, parts, tuple(missing), _reason(score, spec, too_short, missing, ready))


def _reason(score: float, spec: InputSpec, too_short: list[str], missing: list[str], ready: bool) -> str:
    if ready:
        return f"ready: completeness {score:.3f} >= {spec.completeness_threshold:.3f}"
    problems = []
    if score < spec.completeness_threshold:
        problems.append(f"completeness {score:.3f} < threshold {spec.completeness_threshold:.3f}")
    problems.extend(too_short)
    problems.extend(m for m in missing if not any(m.split(":")[0] == s.split(":")[0] for s in too_short))
    return "not ready: " + "; ".join(problems)


def _bars_in_slots(ts: np.ndarray, timeframe: str, t: int, length: int) -> int:
    """How many bars open in the ``length`` grid slots ending with the last slot closed by t."""
    step = timeframe_ms(timeframe)
    last_open = int(bucket_start(np.array([t - step], np.int64), timeframe)[0])
    first_open = last_open - (length - 1) * step
    return int(np.count_nonzero((ts >= first_open) & (ts <= last_open)))


def validate_structure(inp: BaseDataInput, spec: InputSpec) -> None:
    """Raise for a malformed input: empty symbol, a bar closing after t, windows longer than the spec,
    unsorted bars, or indicator arrays not aligned with their window (ShapeError: expected vs actual)."""
    if not inp.symbol:
        raise ValueError("BaseDataInput.symbol is empty")
    lengths = dict(zip(spec.keys(inp.symbol), (w.length for w in spec.windows), strict=True))
    for key, candles in inp.ohlcv.items():
        if key not in lengths:
            raise ValueError(f"window {key} is not in the input spec (spec windows: {list(lengths)})")
        if len(candles) > lengths[key]:
            raise ShapeError(f"window {key}: expected at most {lengths[key]} bars, got {len(candles)}")
        if len(candles) and candles.timeframe != key[1]:
            raise ValueError(f"window {key} holds {candles.timeframe!r} candles")
        if len(candles) and np.any(np.diff(candles.ts) <= 0):
            raise ValueError(f"window {key}: bar open times are not strictly increasing")
        if len(candles) and int(candles.ts[-1]) + timeframe_ms(key[1]) > inp.timestamp:
            raise ValueError(f"window {key}: bar opening at {int(candles.ts[-1])} closes after t={inp.timestamp} (look-ahead)")
        for name, values in inp.indicators.get(key, {}).items():
            if len(values) != len(candles):
                raise ShapeError(f"indicator {name} of {key}: expected {len(candles)} values, got {len(values)}")
