"""Where chunks of grid points are evaluated: in-process, a local process pool, or Ray tasks.

Ray is the optional extra ``pivotal[cluster]``; it is imported only when a ``RayRunner`` is used.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from pivotal.optimize.objective import Objective, Scorer, Window


@dataclass(frozen=True)
class ChunkResult:
    """Scores and the metrics the significance tests need, for one chunk of grid indices."""

    indices: np.ndarray
    scores: np.ndarray
    sharpe: np.ndarray
    trades: np.ndarray


def evaluate_chunk(objective: Objective, indices: np.ndarray, window: Window, scorer: Scorer) -> ChunkResult:
    indices = np.asarray(indices, dtype=np.int64)
    metrics = objective.evaluate_indices(indices, window)
    sharpe = np.asarray(metrics.get("sharpe", np.full(len(indices), np.nan)), dtype=np.float64)
    trades = np.asarray(metrics["trades"], dtype=np.int64)
    return ChunkResult(indices, scorer.score(metrics), sharpe, trades)


class Runner(Protocol):
    """Evaluates chunks, yielding results in the order the chunks were given."""

    @property
    def workers(self) -> int: ...

    def map(
        self, objective: Objective, chunks: Iterable[np.ndarray], window: Window, scorer: Scorer
    ) -> Iterator[ChunkResult]: ...

    def close(self) -> None: ...


_INSTALLED: list[Objective] = []  # the objective a pool worker evaluates, sent once per worker


def _install(objective: Objective) -> None:
    _INSTALLED[:] = [objective]


def _evaluate_installed(indices: np.ndarray, window: Window, scorer: Scorer) -> ChunkResult:
    return evaluate_chunk(_INSTALLED[0], indices, window, scorer)


class LocalRunner:
    """``workers == 1`` evaluates in this process; more uses a process pool.

    The pool is started with the objective installed in every worker (market arrays cross the process boundary once,
    and per-market caches such as LS3's episode tables survive between chunks); it is reused while the objective is
    the same object, e.g. across the folds of one walk-forward, and replaced for the next market.
    """

    def __init__(self, workers: int | None = None) -> None:
        self._workers = max(1, workers if workers is not None else (os.cpu_count() or 1))
        self._pool: ProcessPoolExecutor | None = None
        self._pool_objective: int | None = None

    @property
    def workers(self) -> int:
        return self._workers

    def map(self, objective: Objective, chunks: Iterable[np.ndarray], window: Window, scorer: Scorer) -> Iterator[ChunkResult]:
        if self._workers == 1:
            for chunk in chunks:
                yield evaluate_chunk(objective, chunk, window, scorer)
            return
        if self._pool is None or self._pool_objective != id(objective):
            self.close()
            self._pool = ProcessPoolExecutor(max_workers=self._workers, initializer=_install, initargs=(objective,))
            self._pool_objective = id(objective)
        chunk_list = list(chunks)
        n = len(chunk_list)
        yield from self._pool.map(_evaluate_installed, chunk_list, [window] * n, [scorer] * n)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
            self._pool_objective = None


class RayRunner:
    """Chunks as Ray tasks on ``address`` ('auto', 'ray://host:port', or 'local' for a fresh local instance).

    The objective (market arrays) is put in the object store once per objective and shared by all tasks.
    """

    def __init__(self, address: str = "auto", num_cpus: int | None = None) -> None:
        try:
            import ray
        except ImportError:  # pragma: no cover - depends on the optional extra
            raise RuntimeError("--ray needs the optional extra: pip install 'pivotal[cluster]'") from None
        self._ray = ray
        if not ray.is_initialized():
            if address == "local":
                ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
        self._remote = ray.remote(evaluate_chunk)
        self._objective_refs: dict[int, Any] = {}

    @property
    def workers(self) -> int:
        return max(1, int(self._ray.cluster_resources().get("CPU", 1)))

    def map(self, objective: Objective, chunks: Iterable[np.ndarray], window: Window, scorer: Scorer) -> Iterator[ChunkResult]:
        key = id(objective)
        if key not in self._objective_refs:
            self._objective_refs = {key: self._ray.put(objective)}  # keep only the current market in the store
        ref = self._objective_refs[key]
        futures = [self._remote.remote(ref, chunk, window, scorer) for chunk in chunks]
        for future in futures:
            yield self._ray.get(future)

    def close(self) -> None:
        self._objective_refs.clear()


def make_runner(workers: int | None = None, ray_address: str | None = None) -> Runner:
    """The runner the options ask for: Ray when an address is given, else the local pool."""
    if ray_address:
        return RayRunner(ray_address, num_cpus=workers)
    return LocalRunner(workers)
