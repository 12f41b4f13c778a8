"""A finite parameter grid addressed by one flat integer index (mixed radix, last dimension fastest).

Every optimiser works on flat indices so that grid, random and Bayesian search share one objective call
(``evaluate_indices``) and one way of recording what was evaluated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class GridSpace:
    """Named dimensions, each a tuple of allowed values; ``size`` is the product of their lengths."""

    dimensions: tuple[tuple[str, tuple[Any, ...]], ...]

    def __post_init__(self) -> None:
        names = [name for name, _ in self.dimensions]
        if len(set(names)) != len(names):
            raise ValueError(f"GridSpace: duplicate dimension names in {names}")
        for name, values in self.dimensions:
            if len(values) == 0:
                raise ValueError(f"GridSpace: dimension {name!r} has no values")

    @classmethod
    def from_mapping(cls, grid: Mapping[str, Sequence[Any]]) -> GridSpace:
        return cls(tuple((name, tuple(values)) for name, values in grid.items()))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.dimensions)

    @property
    def radices(self) -> tuple[int, ...]:
        return tuple(len(values) for _, values in self.dimensions)

    @property
    def size(self) -> int:
        return int(np.prod(self.radices, dtype=np.int64))

    def choices_of(self, index: int) -> tuple[int, ...]:
        """Per-dimension value positions of a flat index."""
        if not 0 <= index < self.size:
            raise IndexError(f"grid index {index} outside 0..{self.size - 1}")
        positions = []
        for radix in reversed(self.radices):
            index, position = divmod(index, radix)
            positions.append(position)
        return tuple(reversed(positions))

    def index_of(self, choices: Sequence[int]) -> int:
        """Flat index of per-dimension value positions (inverse of :meth:`choices_of`)."""
        if len(choices) != len(self.dimensions):
            raise ValueError(f"expected {len(self.dimensions)} positions, got {len(choices)}")
        index = 0
        for position, radix, name in zip(choices, self.radices, self.names, strict=True):
            if not 0 <= position < radix:
                raise IndexError(f"position {position} outside 0..{radix - 1} for dimension {name!r}")
            index = index * radix + int(position)
        return index

    def params_of(self, index: int) -> dict[str, Any]:
        """The parameter values of a flat index."""
        return {name: values[pos] for (name, values), pos in zip(self.dimensions, self.choices_of(index), strict=True)}

    def index_of_params(self, params: Mapping[str, Any]) -> int:
        """Flat index of a parameter mapping; every value must be one of the grid values."""
        choices = []
        for name, values in self.dimensions:
            if name not in params:
                raise KeyError(f"parameter {name!r} missing; expected {list(self.names)}")
            try:
                choices.append(values.index(params[name]))
            except ValueError:
                raise ValueError(f"{name}={params[name]!r} is not a grid value; allowed: {list(values)}") from None
        return self.index_of(choices)
