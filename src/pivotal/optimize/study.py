"""Resumable studies on Optuna's RDB storage: a killed job restarted with the same id continues.

Storage is a SQLite file in ``settings.data_dir`` by default, the configured PostgreSQL database (in
``settings.postgres_schema``) when ``settings.store == 'postgres'``. The study name is ``<job id>/<market>/w<k>``.

Bayesian search keeps one Optuna trial per configuration. Grid and random search evaluate thousands of points per
second, so they record one trial per *chunk* of indices (its number, size, best point and Sharpe moments); a restart
skips the chunks already stored.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.storages import RDBStorage
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from pivotal.config import Settings

optuna.logging.set_verbosity(optuna.logging.WARNING)

STUDY_SQLITE_FILE = "optuna.sqlite3"


def storage_url(settings: Settings) -> str:
    if settings.store == "postgres":
        dsn = settings.postgres_dsn.get_secret_value()
        return dsn.replace("postgresql://", "postgresql+psycopg://", 1) if dsn.startswith("postgresql://") else dsn
    settings.ensure_dirs()
    return f"sqlite:///{settings.data_dir / STUDY_SQLITE_FILE}"


def open_storage(settings: Settings) -> RDBStorage:
    """The Optuna storage for these settings (PostgreSQL tables live in ``settings.postgres_schema``)."""
    url = storage_url(settings)
    if settings.store != "postgres":
        path = settings.data_dir / STUDY_SQLITE_FILE
        return _rdb_storage(url, {"creator": lambda: _sqlite_connect(path)}, lock_file=path.with_suffix(".lock"))
    import psycopg

    schema = settings.postgres_schema
    with psycopg.connect(settings.postgres_dsn.get_secret_value(), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    return _rdb_storage(url, {"connect_args": {"options": f"-csearch_path={schema}"}})


def _rdb_storage(url: str, engine_kwargs: dict[str, Any], lock_file: Path | None = None) -> RDBStorage:
    """Two processes opening a fresh storage at once both try to create Optuna's tables, and the loser fails ("table
    already exists", or a duplicate version row). For SQLite a file lock serialises the first open; for a server the
    open is retried, since by then the tables are complete."""
    import sqlalchemy.exc

    if lock_file is not None:
        import fcntl

        with open(lock_file, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                return RDBStorage(url, engine_kwargs=engine_kwargs)
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    for attempt in range(3):
        try:
            return RDBStorage(url, engine_kwargs=engine_kwargs)
        except sqlalchemy.exc.DBAPIError:
            if attempt == 2:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _sqlite_connect(path: Path) -> sqlite3.Connection:
    """WAL with synchronous=NORMAL: a commit no longer waits for fsync (Optuna commits several times per trial),
    and committed trials still survive the process being killed; only an OS crash may lose the last commits."""
    conn = sqlite3.connect(path, timeout=60, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


@dataclass(frozen=True)
class ChunkSummary:
    """What a restart needs from one evaluated chunk of grid/random search."""

    chunk: int
    count: int
    best_index: int
    best_score: float
    sharpe_n: int
    sharpe_sum: float
    sharpe_sumsq: float


class TrialLog:
    """One Optuna study (direction: maximise) plus the chunk records of grid/random search."""

    def __init__(self, storage: optuna.storages.BaseStorage | str, name: str, sampler: optuna.samplers.BaseSampler | None = None):
        self.name = name
        self.study = optuna.create_study(
            study_name=name, storage=storage, direction="maximize", sampler=sampler, load_if_exists=True
        )

    def require_setup(self, setup: dict[str, Any]) -> None:
        """Store how the study was set up; a restart with a different setup is refused, not silently mixed."""
        stored = self.study.user_attrs.get("setup")
        if stored is None:
            self.study.set_user_attr("setup", setup)
        elif stored != setup:
            raise ValueError(
                f"study {self.name!r} was started with {stored}, not {setup}; use a new --job-id or the original options"
            )

    def completed_chunks(self) -> dict[int, ChunkSummary]:
        chunks: dict[int, ChunkSummary] = {}
        for trial in self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            record = trial.user_attrs.get("chunk")
            if record is not None:
                value = float(trial.value) if trial.value is not None else -math.inf
                chunks[int(record["chunk"])] = ChunkSummary(**{**record, "best_score": value})
        return chunks

    def record_chunk(self, summary: ChunkSummary) -> None:
        record = asdict(summary)
        del record["best_score"]  # the trial's value (may be -inf, which JSON attributes cannot hold)
        # one attribute: each attribute is a separate row write in Optuna's RDB storage
        self.study.add_trial(optuna.trial.create_trial(value=summary.best_score, user_attrs={"chunk": record}))

    def fail_stale_trials(self) -> int:
        """Trials left RUNNING by a killed process are marked FAIL so they are neither counted nor re-told."""
        stale = self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        for trial in stale:
            self.study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        return len(stale)

    def completed_trials(self) -> list[optuna.trial.FrozenTrial]:
        return self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def summarize_chunk(chunk: int, indices: np.ndarray, scores: np.ndarray, sharpe: np.ndarray) -> ChunkSummary:
    """Best point and Sharpe moments of the configurations that passed the score filter (finite scores)."""
    best = int(np.argmax(scores)) if len(scores) else 0
    valid = np.isfinite(scores) & np.isfinite(sharpe)
    valid_sharpe = sharpe[valid]
    return ChunkSummary(
        chunk=chunk,
        count=len(indices),
        best_index=int(indices[best]) if len(indices) else -1,
        best_score=float(scores[best]) if len(scores) else -math.inf,
        sharpe_n=int(valid.sum()),
        sharpe_sum=float(valid_sharpe.sum()),
        sharpe_sumsq=float(np.square(valid_sharpe).sum()),
    )


class ProgressSink:
    """A rich progress bar with ETA (or nothing when ``enabled`` is False)."""

    def __init__(self, enabled: bool = True) -> None:
        self._progress = (
            Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
            )
            if enabled
            else None
        )

    @contextmanager
    def task(self, description: str, total: int, completed: int = 0) -> Iterator[Any]:
        """Yields ``advance(n)``; the bar starts at ``completed`` (trials restored from storage)."""
        if self._progress is None:
            yield lambda n: None
            return
        with self._progress:
            task_id = self._progress.add_task(description, total=total, completed=completed)
            yield lambda n: self._progress.advance(task_id, n)
