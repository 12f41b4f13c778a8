"""Value types of the pivot engine (spec A.3/A.6). Pure data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

TieMode = Literal["first", "last", "strict"]
Kind = Literal["H", "L"]


@dataclass(frozen=True)
class PivotParams:
    """Detector parameters (spec A.3). ``k``: bars per side at L1; ``m``: same-type neighbours at L>=2."""

    k: int = 2
    m: int = 1
    levels: int = 5
    tie: TieMode = "first"
    skip_inside: bool = False

    def __post_init__(self) -> None:
        if self.k < 1 or self.m < 1:
            raise ValueError(f"k and m must be >= 1 (got k={self.k}, m={self.m})")
        if not 1 <= self.levels <= 10:
            raise ValueError(f"levels must be in 1..10 (got {self.levels})")
        if self.tie not in ("first", "last", "strict"):
            raise ValueError(f"tie must be first, last or strict (got {self.tie!r})")


@dataclass(frozen=True)
class PivotArray:
    """All pivots of one level and kind, sorted by index; ``confirmed_at`` is strictly increasing.

    index/confirmed_at are bar positions in the input series; price is the high (H) or low (L).
    """

    index: np.ndarray  # int64
    price: np.ndarray  # float64
    confirmed_at: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.index)

    @classmethod
    def empty(cls) -> PivotArray:
        return cls(np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.int64))

    def known_at(self, t: int) -> PivotArray:
        """The pivots confirmed at or before bar t (a prefix, by the no-repaint theorem)."""
        n = int(np.searchsorted(self.confirmed_at, t, side="right"))
        return PivotArray(self.index[:n], self.price[:n], self.confirmed_at[:n])

    def as_tuples(self) -> list[tuple[int, float, int]]:
        return [(int(i), float(p), int(c)) for i, p, c in zip(self.index, self.price, self.confirmed_at, strict=True)]


@dataclass(frozen=True)
class PivotSet:
    """Pivots of every level: ``highs[l-1]`` / ``lows[l-1]`` hold level l."""

    params: PivotParams
    highs: list[PivotArray] = field(default_factory=list)
    lows: list[PivotArray] = field(default_factory=list)

    def get(self, level: int, kind: Kind) -> PivotArray:
        if not 1 <= level <= len(self.highs):
            raise ValueError(f"level {level} not computed (levels 1..{len(self.highs)})")
        return (self.highs if kind == "H" else self.lows)[level - 1]

    def known_at(self, t: int) -> PivotSet:
        return PivotSet(self.params, [a.known_at(t) for a in self.highs], [a.known_at(t) for a in self.lows])


@dataclass(frozen=True)
class PivotEvent:
    """A pivot announced at the close of bar ``confirmed_at``; label like ``"L2H"``."""

    level: int
    kind: Kind
    index: int
    price: float
    confirmed_at: int
    ts: int | None = None  # open time of the pivot bar (epoch ms), when known
    confirmed_ts: int | None = None  # close time of the confirming bar (epoch ms), when known

    @property
    def label(self) -> str:
        return f"L{self.level}{self.kind}"
