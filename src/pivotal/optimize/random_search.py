"""Random search: ``samples`` distinct grid points drawn with a seeded generator (no replacement).

The draw depends only on (seed, grid size, samples), so a restart redraws the same set, evaluates it in the same
(index) order, and skips the chunks already stored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pivotal.optimize.objective import Objective, Scorer, Window
from pivotal.optimize.optimizer import OptimizationResult, RunContext, search_in_chunks


def sample_indices(size: int, samples: int, seed: int) -> np.ndarray:
    """``min(samples, size)`` distinct indices in draw order."""
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    rng = np.random.default_rng(seed)
    return rng.choice(size, size=min(samples, size), replace=False).astype(np.int64)


@dataclass(frozen=True)
class RandomSearch:
    samples: int = 1000
    seed: int = 0
    chunk_size: int = 250  # small enough that 1,000 samples keep several workers busy; part of the resume setup
    name: str = "random"

    def planned_trials(self, objective: Objective) -> int:
        return min(self.samples, objective.space.size)

    def optimize(self, objective: Objective, window: Window, scorer: Scorer, context: RunContext) -> OptimizationResult:
        size = objective.space.size
        setup = {"method": self.name, "samples": self.samples, "seed": self.seed, "chunk_size": self.chunk_size, "size": size}
        context.log.require_setup(setup)
        # evaluated in index order: neighbouring grid points share the strategy's per-combination tables (LS3 episodes
        # and outcomes), so sorted chunks compute each table about once and split cleanly between workers
        order = np.sort(sample_indices(size, self.samples, self.seed))
        return search_in_chunks(order, self.chunk_size, objective, window, scorer, context)
