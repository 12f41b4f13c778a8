"""Bayesian search with Optuna: TPE by default, any of Optuna's other samplers by name.

Each configuration is one Optuna trial. Trials are asked in batches of the runner's size, evaluated together (one
``evaluate_indices`` call per batch), then told. Samplers that model categorical choices (tpe, random, nsga2) see
each dimension as a categorical over its grid values; samplers that need an ordered numeric space (cmaes, qmc, gp)
see the position of the value in its (sorted) grid instead.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution

from pivotal.optimize.objective import Objective, Scorer, Window
from pivotal.optimize.optimizer import OptimizationResult, RunContext
from pivotal.optimize.space import GridSpace

ORDINAL_SAMPLERS = frozenset({"cmaes", "qmc", "gp"})


def _cmaes(seed: int | None) -> optuna.samplers.BaseSampler:
    try:
        import cmaes  # noqa: F401  # CmaEsSampler needs it; fail with a clear message instead of deep inside Optuna
    except ImportError:
        raise ValueError("sampler 'cmaes' needs the 'cmaes' package (pip install cmaes); choose tpe, gp, qmc, ...") from None
    return optuna.samplers.CmaEsSampler(seed=seed)


SAMPLERS: dict[str, Callable[[int | None], optuna.samplers.BaseSampler]] = {
    "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True),
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
    "cmaes": _cmaes,
    "qmc": lambda seed: optuna.samplers.QMCSampler(seed=seed),
    "nsga2": lambda seed: optuna.samplers.NSGAIISampler(seed=seed),
    "gp": lambda seed: optuna.samplers.GPSampler(seed=seed),
}


def make_sampler(name: str, seed: int | None) -> optuna.samplers.BaseSampler:
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of {sorted(SAMPLERS)}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # qmc/gp are stable enough for us
        return SAMPLERS[name](seed)


def distributions(space: GridSpace, ordinal: bool) -> dict[str, BaseDistribution]:
    if ordinal:
        return {name: IntDistribution(0, len(values) - 1) for name, values in space.dimensions}
    return {name: CategoricalDistribution(values) for name, values in space.dimensions}


def index_of_trial(space: GridSpace, params: dict[str, object], ordinal: bool) -> int:
    if ordinal:
        return space.index_of([int(params[name]) for name in space.names])  # type: ignore[call-overload]
    return space.index_of_params(params)


@dataclass(frozen=True)
class BayesianSearch:
    trials: int = 200
    sampler: str = "tpe"
    seed: int = 0
    batch_size: int | None = None  # None: one batch per runner worker
    name: str = "bayesian"

    def planned_trials(self, objective: Objective) -> int:
        return self.trials

    def optimize(self, objective: Objective, window: Window, scorer: Scorer, context: RunContext) -> OptimizationResult:
        """The sampler works on an in-memory copy of the study (fast ask/tell); each finished trial is then written to
        the persistent study in one insert, so a killed run loses at most the batch in flight."""
        space = objective.space
        ordinal = self.sampler in ORDINAL_SAMPLERS
        context.log.require_setup({"method": self.name, "sampler": self.sampler, "seed": self.seed, "size": space.size})
        context.log.fail_stale_trials()  # left RUNNING by older versions that asked on the persistent study
        stored = context.log.completed_trials()
        working = optuna.create_study(direction="maximize", sampler=make_sampler(self.sampler, self.seed))
        working.add_trials(stored)
        dists = distributions(space, ordinal)
        known = {int(t.user_attrs["eval"]["index"]): _known_values(t) for t in stored}
        done = len(stored)
        context.advance(done)
        batch = max(1, self.batch_size or context.runner.workers)
        while done < self.trials:
            asked = [working.ask(dists) for _ in range(min(batch, self.trials - done))]
            indices = [index_of_trial(space, t.params, ordinal) for t in asked]
            known.update(self._evaluate(objective, sorted(set(indices) - set(known)), window, scorer, context))
            finished = []
            for trial, index in zip(asked, indices, strict=True):
                score, sharpe, trades = known[index]
                trial.set_user_attr(
                    "eval", {"index": index, "sharpe": sharpe if math.isfinite(sharpe) else None, "trades": trades}
                )
                finished.append(working.tell(trial, score))
            context.log.study.add_trials(finished)
            done += len(asked)
            context.advance(len(asked))
        return _result(context.log.completed_trials())

    @staticmethod
    def _evaluate(
        objective: Objective, fresh: list[int], window: Window, scorer: Scorer, context: RunContext
    ) -> dict[int, tuple[float, float, int]]:
        """Configurations not seen before, evaluated in one call; a repeat is told from the stored values."""
        results: dict[int, tuple[float, float, int]] = {}
        if fresh:
            parts = np.array_split(np.array(fresh, dtype=np.int64), min(len(fresh), context.runner.workers))  # one per worker
            for chunk in context.runner.map(objective, parts, window, scorer):
                for i, score, sharpe, trades in zip(chunk.indices, chunk.scores, chunk.sharpe, chunk.trades, strict=True):
                    results[int(i)] = (float(score), float(sharpe), int(trades))
        return results


def _known_values(trial: optuna.trial.FrozenTrial) -> tuple[float, float, int]:
    sharpe = trial.user_attrs["eval"]["sharpe"]
    return (
        float(trial.value) if trial.value is not None else -math.inf,
        math.nan if sharpe is None else float(sharpe),
        int(trial.user_attrs["eval"]["trades"]),
    )


def _result(trials: list[optuna.trial.FrozenTrial]) -> OptimizationResult:
    """One entry per trial (a repeated configuration counts again: it was a trial of the search)."""
    ordered = sorted(trials, key=lambda t: t.number)
    indices = np.array([int(t.user_attrs["eval"]["index"]) for t in ordered], dtype=np.int64)
    scores = np.array([t.value if t.value is not None else -math.inf for t in ordered], dtype=np.float64)
    sharpe = np.array([_known_values(t)[1] for t in ordered], dtype=np.float64)
    best = int(np.argmax(scores)) if len(scores) else -1
    valid = np.isfinite(scores) & np.isfinite(sharpe)
    n = int(valid.sum())
    found = best >= 0 and math.isfinite(scores[best])
    return OptimizationResult(
        best_index=int(indices[best]) if found else -1,
        best_score=float(scores[best]) if best >= 0 else -math.inf,
        evaluated=indices,
        sharpe_n=n,
        sharpe_mean=float(sharpe[valid].mean()) if n else math.nan,
        sharpe_var=float(sharpe[valid].var(ddof=1)) if n > 1 else math.nan,
    )
