"""Tensor encoding of a ``BaseDataInput``: fixed shapes per ``InputSpec``, prices normalised by pivots.

Shapes (``W`` = number of windows in the spec, ``T`` = ``spec.window_len`` = longest window, ``C`` = ``N_CHANNELS``,
``L`` = ``spec.context_levels``):

- ``EncodedInput.windows``: float32 ``[W, T, C]``. Window w (spec order) fills the *last* ``len(window)`` rows; earlier
  rows are zero padding with channel ``present`` = 0. Channels (``CHANNELS``):

  ======  ==================================================================================================
  0-3     open, high, low, close normalised by the window's PivotBounds at its last bar (spec A.6, level
          ``spec.bounds_level``, window = the window's length): ``(p - lower) / (upper - lower)``; 0 and 1 are
          the last confirmed swing low / high, values outside [0, 1] are breakouts (clipped to [-10, 10]).
  4       log-volume z-score within the window: ``(ln(1+v) - mean) / std`` (0 when std is 0).
  5       close-to-close log return divided by ``ln(upper / lower)`` (the range width in log terms).
  6       RSI(14) / 100 - 0.5.
  7       MACD histogram (12, 26, 9) / (upper - lower).
  8       Bollinger %B (20, 2) - 0.5.
  9       ATR(14) / (upper - lower).
  10      present: 1 for a real bar, 0 for padding.
  ======  ==================================================================================================

  Indicator warm-up values (NaN) are encoded as 0.
- ``EncodedInput.context``: float32 ``[W * (6 * L + 2)]``, per window: for each level 1..L and kind H then L the last
  pivot confirmed by t as (normalised price, bars since its pivot bar / T, 1) or (0, 0, 0) when there is none; then
  the last close normalised and ``ln(upper / lower)``. With ``spec.order_book`` = K > 0 the context then ends with
  the order-book part (``order_book_size(spec)`` = K + 1 values): ``BaseDataInput.order_book`` unchanged (the
  ``features.cob.order_book_vector`` of the newest COB row known by t, float32, already scale-free) and a presence
  flag, 1. Where no depth covers t (``order_book`` is None) the part is K zeros and flag 0: the model sees "absent"
  rather than a made-up book, and the sample is kept unless ``spec.require_order_book`` makes completeness refuse it.

Everything is a function of the input alone (deterministic); nothing after t can enter because the input holds none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from pivotal.core.vocabulary import PIVOT_KINDS
from pivotal.data.candles import Candles
from pivotal.features.input_spec import InputSpec
from pivotal.features.model_io import BaseDataInput, ShapeError, check_shape
from pivotal.structure.bounds import pivot_bounds
from pivotal.structure.types import PivotArray, PivotSet

CHANNELS: tuple[str, ...] = (
    "open",
    "high",
    "low",
    "close",
    "log_volume_z",
    "log_return",
    "rsi",
    "macd_hist",
    "bb_pband",
    "atr",
    "present",
)
N_CHANNELS = len(CHANNELS)
CONTEXT_PER_LEVEL = 6  # (price, age, present) for H and L
CONTEXT_PER_WINDOW_EXTRA = 2  # last close normalised, ln(upper / lower)
CLIP = 10.0
STD_FLOOR = 1e-9


@dataclass(frozen=True)
class EncodedInput:
    """The model-ready tensors of one input; see the module docstring for the exact layout."""

    windows: np.ndarray  # float32 [W, T, C]
    context: np.ndarray  # float32 [W * (6 * L + 2)]

    def validate(self, spec: InputSpec) -> None:
        """Raise ``ShapeError`` (expected vs actual) unless the shapes match ``spec``."""
        check_shape("EncodedInput.windows", self.windows, windows_shape(spec))
        check_shape("EncodedInput.context", self.context, (context_size(spec),))


def windows_shape(spec: InputSpec) -> tuple[int, int, int]:
    """``(W, T, C)`` of ``EncodedInput.windows`` for ``spec``."""
    return (len(spec.windows), spec.window_len, N_CHANNELS)


def context_size(spec: InputSpec) -> int:
    """Length of ``EncodedInput.context`` for ``spec`` (the order-book part included)."""
    return len(spec.windows) * (CONTEXT_PER_LEVEL * spec.context_levels + CONTEXT_PER_WINDOW_EXTRA) + order_book_size(spec)


def order_book_size(spec: InputSpec) -> int:
    """Length of the order-book part at the end of the context: ``spec.order_book`` values + presence flag (0 = off);
    a model's ``InputShape.order_book`` must equal it to treat that part as the order book."""
    return spec.order_book + 1 if spec.order_book else 0


def order_book_part(context: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, bool]:
    """(order-book values, present) of an encoded context (or a [..., K] batch's last axis); ValueError when off."""
    if not spec.order_book:
        raise ValueError("this InputSpec has order_book = 0: the encoding carries no order book")
    part = np.asarray(context)[..., -order_book_size(spec) :]
    return part[..., :-1], bool(np.all(part[..., -1] == 1.0))


def encode(inp: BaseDataInput, spec: InputSpec) -> EncodedInput:
    """Encode one input. Raises ``ShapeError`` when a window is longer than the spec allows or an indicator array is
    not aligned with its window; absent indicators encode as 0."""
    n_windows, t_len, _ = windows_shape(spec)
    windows = np.zeros((n_windows, t_len, N_CHANNELS), np.float32)
    per_window = CONTEXT_PER_LEVEL * spec.context_levels + CONTEXT_PER_WINDOW_EXTRA
    context = np.zeros(context_size(spec), np.float32)
    for w, (wspec, key) in enumerate(zip(spec.windows, spec.keys(inp.symbol), strict=True)):
        candles = inp.ohlcv.get(key)
        if candles is None or len(candles) == 0:
            continue  # missing window: all zeros, present = 0 (completeness decides whether that is acceptable)
        if len(candles) > wspec.length:
            raise ShapeError(f"window {key}: expected at most {wspec.length} bars, got {len(candles)}")
        pivots = inp.pivots.get(key)
        pivots = _no_pivots(spec) if pivots is None else pivots
        indicators = inp.indicators.get(key, {})
        upper, lower = _bounds(candles, pivots, spec.bounds_level, wspec.length)
        _fill_window(windows[w, t_len - len(candles) :], candles, indicators, upper, lower)
        context[w * per_window : (w + 1) * per_window] = _context(candles, pivots, spec, upper, lower)
    if spec.order_book and inp.order_book is not None:
        book = np.asarray(inp.order_book)
        if book.shape != (spec.order_book,):
            raise ShapeError(
                f"order_book: expected {spec.order_book} values (InputSpec.order_book), got shape {book.shape}; "
                "build the COB rows with the CobConfig the spec was made for"
            )
        context[-spec.order_book - 1 : -1] = book
        context[-1] = 1.0
    return EncodedInput(windows, context)


def encode_batch(inputs: list[BaseDataInput], spec: InputSpec) -> tuple[np.ndarray, np.ndarray]:
    """Stack many inputs: ``([N, W, T, C], [N, context_size])`` float32."""
    encoded = [encode(i, spec) for i in inputs]
    if not encoded:
        return np.zeros((0, *windows_shape(spec)), np.float32), np.zeros((0, context_size(spec)), np.float32)
    return np.stack([e.windows for e in encoded]), np.stack([e.context for e in encoded])


# ------------------------------------------------------------------------------------------ internals


def _no_pivots(spec: InputSpec) -> PivotSet:
    levels = spec.pivot_params.levels
    return PivotSet(spec.pivot_params, [PivotArray.empty() for _ in range(levels)], [PivotArray.empty() for _ in range(levels)])


def _bounds(candles: Candles, pivots: PivotSet, level: int, window: int) -> tuple[float, float]:
    """PivotBounds (upper, lower) at the window's last bar; a flat window gets a unit-free ±0.5 % band."""
    b = pivot_bounds(candles.high, candles.low, candles.close, pivots, level=level, window=window)
    upper, lower = float(b.upper[-1]), float(b.lower[-1])
    if not upper > lower:
        mid = float(candles.close[-1])
        upper, lower = mid * 1.005, mid * 0.995
    return upper, lower


def _fill_window(out: np.ndarray, candles: Candles, indicators: dict[str, np.ndarray], upper: float, lower: float) -> None:
    n = len(candles)
    rsi, macd_hist = _indicator(indicators, "rsi_14", n), _indicator(indicators, "macd_diff", n)
    pband, atr = _indicator(indicators, "bb_pband", n), _indicator(indicators, "atr_14", n)
    _fill_kernel(
        out, candles.open, candles.high, candles.low, candles.close, candles.volume, rsi, macd_hist, pband, atr, upper, lower
    )


def _bounded(x: float) -> float:
    return min(max(x, -CLIP), CLIP)


@njit(cache=True)
def _clip(x: float) -> float:
    if x != x:  # NaN (indicator warm-up) encodes as 0
        return 0.0
    return min(max(x, -CLIP), CLIP)


@njit(cache=True)
def _fill_kernel(
    out: np.ndarray,
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    v: np.ndarray,
    rsi: np.ndarray,
    macd_hist: np.ndarray,
    pband: np.ndarray,
    atr: np.ndarray,
    upper: float,
    lower: float,
) -> None:
    """One pass over the bars writing every channel (layout in the module docstring)."""
    n = len(c)
    span = upper - lower
    log_span = np.log(upper / lower) if lower > 0 else 1.0
    logv = np.empty(n)
    for i in range(n):
        logv[i] = np.log1p(max(v[i], 0.0))
    mean = logv.mean()
    std = logv.std()
    for i in range(n):
        out[i, 0] = _clip((o[i] - lower) / span)
        out[i, 1] = _clip((h[i] - lower) / span)
        out[i, 2] = _clip((lo[i] - lower) / span)
        out[i, 3] = _clip((c[i] - lower) / span)
        # a constant volume series has std ~1e-17 rather than 0
        out[i, 4] = _clip((logv[i] - mean) / std) if std > STD_FLOOR else 0.0
        out[i, 5] = _clip(np.log(c[i] / c[i - 1]) / log_span) if i > 0 and c[i] > 0 and c[i - 1] > 0 else 0.0
        out[i, 6] = _clip(rsi[i] / 100.0 - 0.5)
        out[i, 7] = _clip(macd_hist[i] / span)
        out[i, 8] = _clip(pband[i] - 0.5)
        out[i, 9] = _clip(atr[i] / span)
        out[i, 10] = 1.0


def _indicator(indicators: dict[str, np.ndarray], name: str, n: int) -> np.ndarray:
    values = indicators.get(name)
    if values is None:
        return np.full(n, np.nan)
    if len(values) != n:
        raise ShapeError(f"indicator {name}: expected {n} values (one per bar), got {len(values)}")
    return values


def _context(candles: Candles, pivots: PivotSet, spec: InputSpec, upper: float, lower: float) -> np.ndarray:
    t = len(candles) - 1
    t_len = float(spec.window_len)
    out = np.zeros(CONTEXT_PER_LEVEL * spec.context_levels + CONTEXT_PER_WINDOW_EXTRA, np.float32)
    for level in range(1, spec.context_levels + 1):
        for j, kind in enumerate(PIVOT_KINDS):
            arr = pivots.get(level, kind) if level <= len(pivots.highs) else None
            if arr is None or len(arr) == 0:
                continue
            pos = (level - 1) * CONTEXT_PER_LEVEL + 3 * j
            out[pos] = _bounded((float(arr.price[-1]) - lower) / (upper - lower))
            out[pos + 1] = min((t - int(arr.index[-1])) / t_len, CLIP)
            out[pos + 2] = 1.0
    out[-2] = _bounded((float(candles.close[-1]) - lower) / (upper - lower))
    out[-1] = np.log(upper / lower) if lower > 0 else 0.0
    return out
