"""Run one study to its target (used by test_resume in a subprocess): ``python -m tests.optimize.resume_worker``.

Arguments: STORAGE_URL STUDY METHOD TARGET DELAY OUT_JSON. Writes the indices this process evaluated to OUT_JSON.
"""

from __future__ import annotations

import json
import sys

from optuna.storages import RDBStorage

from pivotal.optimize.bayesian import BayesianSearch
from pivotal.optimize.objective import Scorer, Window
from pivotal.optimize.optimizer import Optimizer, RunContext
from pivotal.optimize.parallel import LocalRunner
from pivotal.optimize.random_search import RandomSearch
from pivotal.optimize.study import TrialLog
from tests.optimize.objectives import QuadraticObjective


def main(argv: list[str]) -> None:
    url, study, method, target, delay, out = argv
    objective = QuadraticObjective(delay=float(delay))
    optimizer: Optimizer = (
        RandomSearch(samples=int(target), seed=11, chunk_size=4)
        if method == "random"
        else BayesianSearch(trials=int(target), seed=11, batch_size=2)
    )
    log = TrialLog(RDBStorage(url), study)
    result = optimizer.optimize(objective, Window(0, 1000), Scorer(min_trades=30), RunContext(log, LocalRunner(1)))
    with open(out, "w") as fh:
        json.dump({"evaluated": objective.evaluated, "best": result.best_index, "n_trials": result.n_trials}, fh)


if __name__ == "__main__":
    main(sys.argv[1:])
