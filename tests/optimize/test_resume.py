"""A study killed mid-way (SIGKILL) continues from its stored trials when restarted with the same id."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy.exc
from optuna.storages import RDBStorage

from pivotal.optimize.random_search import sample_indices
from tests.conftest import REPO

TARGET = 40


def completed(url: str, study: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name=study, storage=RDBStorage(url)).get_trials(
            deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)
        )
    except KeyError:  # the subprocess has not created the study yet
        return []
    except sqlalchemy.exc.DBAPIError:  # both processes created the storage's tables at once; the worker's attempt wins
        return []


def run_worker(url: str, study: str, method: str, delay: float, out: Path) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "tests.optimize.resume_worker", url, study, method, str(TARGET), str(delay), str(out)]
    return subprocess.Popen(args, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})


def kill_after(proc: subprocess.Popen[bytes], url: str, study: str, at_least: int, count) -> None:
    deadline = time.monotonic() + 60
    while count(completed(url, study)) < at_least:
        assert proc.poll() is None, "the study finished before it could be killed; raise its delay"
        assert time.monotonic() < deadline, "no trials were stored within 60 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.mark.parametrize("method", ["random", "bayesian"])
def test_killed_study_resumes_to_the_target(method: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.sqlite3'}"
    study = f"job-{method}/market/w0"
    # random records one trial per chunk of 4 points; bayesian one trial per configuration
    count = (lambda trials: 4 * len(trials)) if method == "random" else len
    kill_after(run_worker(url, study, method, 0.15, tmp_path / "first.json"), url, study, 12, count)
    stored_before = count(completed(url, study))
    assert 12 <= stored_before < TARGET

    second = run_worker(url, study, method, 0.0, tmp_path / "second.json")
    assert second.wait(timeout=120) == 0
    out = json.loads((tmp_path / "second.json").read_text())
    assert out["n_trials"] == TARGET
    if method == "random":
        assert len(out["evaluated"]) == TARGET - stored_before  # only the missing chunks were evaluated
        order = sorted(sample_indices(800, TARGET, seed=11).tolist())  # evaluated in index order
        assert sorted(out["evaluated"]) == sorted(order[stored_before:])  # exactly the chunks not yet stored
        assert count(completed(url, study)) == TARGET
    else:
        trials = optuna.load_study(study_name=study, storage=RDBStorage(url)).get_trials(deepcopy=False)
        states = [t.state for t in trials]
        # a repeated configuration is told from the stored value, so at most the missing trials are evaluated
        assert len(out["evaluated"]) <= TARGET - stored_before
        assert states.count(optuna.trial.TrialState.COMPLETE) == TARGET
        assert set(states) <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL}  # stale RUNNING -> FAIL


@pytest.mark.postgres
def test_postgres_storage_keeps_chunks_across_reopen() -> None:
    """With ``store = 'postgres'`` the studies live in the configured schema and survive a reopen."""
    import uuid

    import psycopg

    from pivotal.config import Settings
    from pivotal.optimize.study import ChunkSummary, TrialLog, open_storage

    schema = f"h6_optuna_{uuid.uuid4().hex[:10]}"
    settings = Settings(store="postgres", postgres_schema=schema)
    try:
        TrialLog(open_storage(settings), "job/m/w0").record_chunk(ChunkSummary(0, 4, 17, 2.5, 3, 1.5, 0.9))
        reopened = TrialLog(open_storage(settings), "job/m/w0")
        assert reopened.completed_chunks() == {0: ChunkSummary(0, 4, 17, 2.5, 3, 1.5, 0.9)}
        with psycopg.connect(settings.postgres_dsn.get_secret_value()) as conn:
            tables = conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", (schema,)).fetchone()
        assert tables is not None and tables[0] > 0  # Optuna's tables were created in our schema, not in public
    finally:
        with psycopg.connect(settings.postgres_dsn.get_secret_value(), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
