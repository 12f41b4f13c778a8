"""Standard model input and output (multi-modal design, "Standardized Model Input/Output").

``BaseDataInput`` is everything a model may see at time ``t``: windows of candles closed by t, indicators
computed on those windows, pivots confirmed by t, the last outputs of every model, and order-book /
microstructure features when present. ``ModelOutput`` is what every model returns.

It lives in the feature layer (plain value types, no model code) so that features can build
``BaseDataInput`` without importing a later layer; ``pivotal.models.io`` re-exports it for model code.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pivotal.core.vocabulary import ACTIONS, PIVOT_KINDS, Action, ActionName, PivotKindName
from pivotal.data.candles import Candles
from pivotal.structure.types import PivotSet

WindowKey = tuple[str, str]  # (symbol, timeframe)
__all__ = [
    "ACTIONS",
    "Action",
    "BaseDataInput",
    "ModelOutput",
    "PivotPrediction",
    "ShapeError",
    "WindowKey",
    "check_shape",
]


class ShapeError(ValueError):
    """An array does not have the shape the configuration requires; the message states expected vs actual."""


def check_shape(name: str, array: np.ndarray, expected: tuple[int, ...]) -> None:
    """Raise ``ShapeError`` naming ``name`` with the expected and actual shapes when they differ."""
    if tuple(array.shape) != tuple(expected):
        raise ShapeError(f"{name}: expected shape {tuple(expected)}, got {tuple(array.shape)}")


# --------------------------------------------------------------------------------------------- input


@dataclass(frozen=True)
class BaseDataInput:
    """Everything known at time ``timestamp`` (epoch ms) about ``symbol``; built by ``features.assemble``.

    - ``ohlcv[(symbol, timeframe)]``: the last ``length`` candles (per ``InputSpec``) with close time
      ``ts + timeframe_ms <= timestamp``; may be shorter when the store lacks bars (see completeness).
    - ``indicators[(symbol, timeframe)][name]``: float64 arrays aligned 1:1 with that window's bars
      (NaN during an indicator's warm-up); names are listed in ``features.indicators.INDICATORS``.
    - ``pivots[(symbol, timeframe)]``: a ``PivotSet`` whose ``index``/``confirmed_at`` are positions in
      that window (0 = its first bar; pivots formed before the window have negative indices), holding only
      pivots with ``confirmed_at`` <= the window's last bar.
    - ``last_predictions[model_name]``: the newest ``ModelOutput`` of each model with timestamp <= t.
    - ``order_book``: the COB feature vector (float32, ``features.cob.order_book_vector``) of the newest 1 s COB row
      known by t, or None where no stored depth covers t (no row known yet, or the newest row ended more than 5 s
      before t); with ``InputSpec.require_order_book`` a None lowers completeness (see ``features.completeness``).
    - ``microstructure``: named scalar features (``features.order_flow``: trade flow before t) or None without trades.
    """

    symbol: str
    timestamp: int
    ohlcv: dict[WindowKey, Candles]
    indicators: dict[WindowKey, dict[str, np.ndarray]] = field(default_factory=dict)
    pivots: dict[WindowKey, PivotSet] = field(default_factory=dict)
    last_predictions: dict[str, ModelOutput] = field(default_factory=dict)
    order_book: np.ndarray | None = None
    microstructure: dict[str, float] | None = None

    def window(self, timeframe: str, symbol: str | None = None) -> Candles:
        """The candle window of ``symbol`` (default: the primary symbol) at ``timeframe``."""
        key = (symbol or self.symbol, timeframe)
        if key not in self.ohlcv:
            raise KeyError(f"no {key[1]} window for {key[0]} in this input (have {sorted(self.ohlcv)})")
        return self.ohlcv[key]


# -------------------------------------------------------------------------------------------- output


@dataclass(frozen=True)
class PivotPrediction:
    """The predicted next pivot of one level: ``kind`` H or L, ``price_offset`` = ln(price / close at t),
    ``bars_until`` = bars after t at which the pivot bar forms (in the base timeframe), ``confidence`` in [0, 1]."""

    level: int
    kind: PivotKindName
    price_offset: float
    bars_until: float
    confidence: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in PIVOT_KINDS:
            raise ValueError(f"PivotPrediction.kind must be one of {PIVOT_KINDS} (got {self.kind!r})")
        if not math.isfinite(self.price_offset):
            raise ValueError(f"PivotPrediction.price_offset of level {self.level} must be finite (got {self.price_offset})")
        if not (math.isfinite(self.bars_until) and self.bars_until >= 0):
            raise ValueError(f"PivotPrediction.bars_until of level {self.level} must be finite and >= 0 (got {self.bars_until})")
        _check_unit("PivotPrediction.confidence", self.confidence)


@dataclass(frozen=True)
class ModelOutput:
    """One model's prediction for ``symbol`` at ``timestamp`` (epoch ms, the input's as-of time).

    Standard prediction fields (also available as the ``predictions`` dict): ``action`` BUY/SELL/HOLD,
    ``action_probabilities`` (keys BUY/SELL/HOLD, summing to 1), ``direction_vector`` in [-1, 1] (expected
    price direction), ``direction_confidence`` in [0, 1], ``pivots`` (one ``PivotPrediction`` per level).
    ``hidden_states`` are named float arrays for other models (e.g. the DQN reads the CNN's); they are
    dropped from JSON unless ``to_json(include_hidden=True)`` (then base64 float32/64 with shape).
    """

    model_type: str
    model_name: str
    symbol: str
    timestamp: int
    confidence: float
    action: ActionName
    action_probabilities: dict[str, float]
    direction_vector: float = 0.0
    direction_confidence: float = 0.0
    pivots: tuple[PivotPrediction, ...] = ()
    hidden_states: dict[str, np.ndarray] | None = field(default=None, compare=False)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"ModelOutput.action must be one of {ACTIONS} (got {self.action!r})")
        _check_unit("ModelOutput.confidence", self.confidence)
        _check_unit("ModelOutput.direction_confidence", self.direction_confidence)
        if not -1.0 <= self.direction_vector <= 1.0:
            raise ValueError(f"ModelOutput.direction_vector must be in [-1, 1] (got {self.direction_vector})")
        _check_probabilities(self.action_probabilities)
        object.__setattr__(self, "pivots", tuple(self.pivots))

    @property
    def predictions(self) -> dict[str, Any]:
        """The design document's flexible ``predictions`` dict, built from the typed fields."""
        return {
            "action": self.action,
            "action_confidence": float(self.action_probabilities[self.action]),
            "probabilities": dict(self.action_probabilities),
            "direction_vector": self.direction_vector,
            "direction_confidence": self.direction_confidence,
            "pivot_points": [vars(p).copy() for p in self.pivots],
        }

    # --- JSON ----------------------------------------------------------------------------------------
    def to_dict(self, include_hidden: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model_type": self.model_type,
            "model_name": self.model_name,
            "symbol": self.symbol,
            "timestamp": int(self.timestamp),
            "confidence": float(self.confidence),
            "action": self.action,
            "action_probabilities": {k: float(v) for k, v in self.action_probabilities.items()},
            "direction_vector": float(self.direction_vector),
            "direction_confidence": float(self.direction_confidence),
            "pivots": [vars(p).copy() for p in self.pivots],
            "metadata": self.metadata,
        }
        if include_hidden and self.hidden_states is not None:
            out["hidden_states"] = {k: _encode_array(v) for k, v in self.hidden_states.items()}
        return out

    def to_json(self, include_hidden: bool = False) -> str:
        return json.dumps(self.to_dict(include_hidden), sort_keys=True, allow_nan=False, default=_json_default)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelOutput:
        missing = [k for k in ("model_type", "model_name", "symbol", "timestamp", "confidence", "action") if k not in data]
        if missing:
            raise ValueError(f"ModelOutput JSON lacks field(s) {missing}")
        hidden = data.get("hidden_states")
        return cls(
            model_type=str(data["model_type"]),
            model_name=str(data["model_name"]),
            symbol=str(data["symbol"]),
            timestamp=int(data["timestamp"]),
            confidence=float(data["confidence"]),
            action=data["action"],
            action_probabilities={str(k): float(v) for k, v in data.get("action_probabilities", {}).items()},
            direction_vector=float(data.get("direction_vector", 0.0)),
            direction_confidence=float(data.get("direction_confidence", 0.0)),
            pivots=tuple(PivotPrediction(**p) for p in data.get("pivots", [])),
            hidden_states=None if hidden is None else {k: _decode_array(v) for k, v in hidden.items()},
            metadata=dict(data.get("metadata", {})),
        )

    @classmethod
    def from_json(cls, text: str) -> ModelOutput:
        return cls.from_dict(json.loads(text))


def _check_unit(name: str, value: float) -> None:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be in [0, 1] (got {value})")


def _check_probabilities(probs: Mapping[str, float]) -> None:
    if set(probs) != set(ACTIONS):
        raise ValueError(f"action_probabilities needs exactly the keys {list(ACTIONS)} (got {sorted(probs)})")
    total = float(sum(probs.values()))
    if any(not 0.0 <= v <= 1.0 for v in probs.values()) or abs(total - 1.0) > 1e-4:
        raise ValueError(f"action_probabilities must be in [0, 1] and sum to 1 (got {dict(probs)}, sum {total:.6f})")


def _json_default(value: object) -> object:
    """numpy scalars and arrays in metadata become plain JSON numbers and lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"ModelOutput metadata value of type {type(value).__name__} is not JSON serialisable")


def _encode_array(array: np.ndarray) -> dict[str, Any]:
    arr = np.ascontiguousarray(array)
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float32)
    return {"dtype": str(arr.dtype), "shape": list(arr.shape), "b64": base64.b64encode(arr.tobytes()).decode("ascii")}


def _decode_array(blob: Mapping[str, Any]) -> np.ndarray:
    raw = base64.b64decode(blob["b64"])
    return np.frombuffer(raw, dtype=np.dtype(blob["dtype"])).reshape(blob["shape"]).copy()
