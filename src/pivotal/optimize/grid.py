"""Exhaustive grid search: every index of the objective's space, in index order."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pivotal.optimize.objective import Objective, Scorer, Window
from pivotal.optimize.optimizer import OptimizationResult, RunContext, search_in_chunks


@dataclass(frozen=True)
class GridSearch:
    chunk_size: int = 4096
    name: str = "grid"

    def planned_trials(self, objective: Objective) -> int:
        return objective.space.size

    def optimize(self, objective: Objective, window: Window, scorer: Scorer, context: RunContext) -> OptimizationResult:
        context.log.require_setup({"method": self.name, "chunk_size": self.chunk_size, "size": objective.space.size})
        order = np.arange(objective.space.size, dtype=np.int64)
        return search_in_chunks(order, self.chunk_size, objective, window, scorer, context)
