"""A small study on a local Ray instance gives the same result as the in-process runner."""

from __future__ import annotations

import os
from collections.abc import Iterator

import optuna
import pytest

from pivotal.optimize.grid import GridSearch
from pivotal.optimize.objective import Scorer, Window
from pivotal.optimize.optimizer import RunContext
from pivotal.optimize.parallel import LocalRunner, RayRunner
from pivotal.optimize.random_search import RandomSearch
from pivotal.optimize.study import TrialLog
from tests.conftest import REPO
from tests.optimize.objectives import QuadraticObjective

ray = pytest.importorskip("ray", reason="the optional extra pivotal[cluster] is not installed")
pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def ray_runner() -> Iterator[RayRunner]:
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), old]))  # workers import the test objective
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        yield RayRunner("auto")
    finally:
        ray.shutdown()
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def test_ray_runner_matches_local(ray_runner: RayRunner) -> None:
    window, scorer = Window(0, 1000), Scorer(min_trades=30)
    for optimizer in (GridSearch(chunk_size=200), RandomSearch(samples=64, seed=5, chunk_size=16)):
        local = optimizer.optimize(
            QuadraticObjective(), window, scorer, RunContext(TrialLog(optuna.storages.InMemoryStorage(), "l"), LocalRunner(1))
        )
        remote = optimizer.optimize(
            QuadraticObjective(), window, scorer, RunContext(TrialLog(optuna.storages.InMemoryStorage(), "r"), ray_runner)
        )
        assert (remote.best_index, remote.best_score, remote.n_trials, remote.sharpe_n) == (
            local.best_index,
            local.best_score,
            local.n_trials,
            local.sharpe_n,
        )
    assert ray_runner.workers == 1
