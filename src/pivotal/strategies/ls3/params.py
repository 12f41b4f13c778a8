"""LIQUIDITY SWEEP V3 parameters: the 7 grid parameters, the fixed constants and the 201,600-point grid (spec B.2/B.3).

Grid points are addressed by one flat index in mixed radix over ``LS3_GRID`` in table order, the **last** dimension
(``target_multiple``) varying fastest, the same convention as ``pivotal.optimize.space.GridSpace``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from pivotal.core.errors import UserInputError

LS3_GRID: dict[str, tuple[float | int, ...]] = {
    "pierce_depth": (0.0005, 0.001, 0.002, 0.003, 0.004, 0.005),
    "rejection_candles": (1, 2, 3, 4, 5),
    "volume_spike_threshold": (1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0),
    "reversal_candle_size": (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0),
    "key_level_lookback": (20, 50, 100, 150, 200),
    "stop_distance": (0.5, 1.0, 1.5, 2.0),
    "target_multiple": (1.5, 2.0, 2.5, 3.0, 3.5, 4.0),
}
GRID_RADICES = np.array([len(v) for v in LS3_GRID.values()], dtype=np.int64)
_INT_PARAMS = ("rejection_candles", "key_level_lookback")


@dataclass(frozen=True)
class LS3Params:
    """One configuration. Defaults are a mid-grid point, not a recommendation."""

    pierce_depth: float = 0.002
    rejection_candles: int = 3
    volume_spike_threshold: float = 2.0
    reversal_candle_size: float = 1.0
    key_level_lookback: int = 100
    stop_distance: float = 1.0
    target_multiple: float = 2.0

    def __post_init__(self) -> None:
        checks = {
            "pierce_depth": 0 <= self.pierce_depth < 1,
            "rejection_candles": self.rejection_candles >= 1,
            "volume_spike_threshold": self.volume_spike_threshold >= 0,
            "reversal_candle_size": self.reversal_candle_size >= 0,
            "key_level_lookback": self.key_level_lookback >= 1,
            "stop_distance": self.stop_distance > 0,
            "target_multiple": self.target_multiple > 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise UserInputError(f"LS3Params: invalid {', '.join(f'{b}={getattr(self, b)!r}' for b in bad)}")

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "parameters") -> LS3Params:
        """Build from a mapping; unknown keys are an error naming the valid ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserInputError(f"{source}: unknown LS3 parameter(s) {unknown}; valid: {sorted(known)}")
        typed: dict[str, float | int] = {}
        for name, value in values.items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise UserInputError(f"{source}: {name}={value!r} is not a number") from None
            if name in _INT_PARAMS and not number.is_integer():
                raise UserInputError(f"{source}: {name}={value!r} must be a whole number of bars")
            typed[name] = int(number) if name in _INT_PARAMS else number
        return cls(**typed)  # type: ignore[arg-type]  # each value typed above

    @classmethod
    def from_json_file(cls, path: Path) -> LS3Params:
        try:
            values = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UserInputError(f"{path}: cannot read LS3 parameters ({exc}); expected a JSON object") from None
        if not isinstance(values, dict):
            raise UserInputError(f"{path}: expected a JSON object of LS3 parameters, got {type(values).__name__}")
        return cls.from_dict(values, str(path))


@dataclass(frozen=True)
class LS3Constants:
    """Rule constants outside the grid (spec B.2); tests override them for the hand-worked vectors (B.7)."""

    atr_period: int = 14
    vma_period: int = 20
    pivot_k: int = 2
    max_hold_bars: int = 50
    fee_rate: float = 0.001
    slippage: float = 0.0005

    @property
    def warmup(self) -> int:
        """First bar at which a level can be pierced: ``t >= max(vma_period, atr_period)``."""
        return max(self.vma_period, self.atr_period)


def grid_size() -> int:
    """Number of grid points: 201,600."""
    return int(np.prod(GRID_RADICES))


def grid_choices(indices: np.ndarray) -> np.ndarray:
    """Per-dimension value positions of flat indices: an ``(len(indices), 7)`` int64 array."""
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= grid_size()):
        raise IndexError(f"grid index outside 0..{grid_size() - 1}")
    out = np.empty((idx.size, GRID_RADICES.size), dtype=np.int64)
    rest: np.ndarray = idx.copy()
    for d in range(GRID_RADICES.size - 1, -1, -1):
        rest, out[:, d] = np.divmod(rest, GRID_RADICES[d])
    return out


def grid_point(index: int) -> LS3Params:
    """The configuration at a flat grid index (mixed-radix decode, last dimension fastest)."""
    choice = grid_choices(np.array([index]))[0]
    values = {name: vals[int(c)] for (name, vals), c in zip(LS3_GRID.items(), choice, strict=True)}
    return LS3Params(**values)  # type: ignore[arg-type]  # grid values have the field types


def grid_index(params: LS3Params) -> int:
    """Flat index of a configuration whose every value lies on the grid; ValueError otherwise."""
    index = 0
    for (name, vals), radix in zip(LS3_GRID.items(), GRID_RADICES, strict=True):
        value = getattr(params, name)
        if value not in vals:
            raise ValueError(f"{name}={value!r} is not a grid value; grid values: {vals}")
        index = index * int(radix) + vals.index(value)
    return index
