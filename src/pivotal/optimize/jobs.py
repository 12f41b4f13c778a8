"""Training jobs: the ``training_jobs`` table and the ``JobService`` a REST API will expose (start/status/results).

A job is a JSON spec plus a status machine PENDING -> RUNNING -> COMPLETED | FAILED. Running a job that was left
RUNNING (process killed) or FAILED runs it again under the same id; its studies resume from their stored trials.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pivotal.optimize.configs import ConfigurationRepository, SqlStore, TrainedConfiguration, now_ms, to_json


class JobStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class TrainingJob:
    id: str
    spec: dict[str, Any]
    status: JobStatus
    progress: float  # 0..1
    created_at: int
    updated_at: int
    started_at: int | None
    finished_at: int | None
    error: str | None


JOB_COLUMNS = "id, spec, status, progress, created_at, updated_at, started_at, finished_at, error"

JOB_DDL = """CREATE TABLE IF NOT EXISTS training_jobs (
    id TEXT PRIMARY KEY, spec TEXT NOT NULL, status TEXT NOT NULL, progress DOUBLE PRECISION NOT NULL,
    created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, started_at BIGINT, finished_at BIGINT, error TEXT)"""


class JobRepository:
    def __init__(self, store: SqlStore) -> None:
        self.store = store
        store.execute(JOB_DDL)

    def create(self, job_id: str, spec: dict[str, Any]) -> TrainingJob:
        now = now_ms()
        self.store.execute(
            f"INSERT INTO training_jobs ({JOB_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (job_id, to_json(spec), JobStatus.PENDING.value, 0.0, now, now, None, None, None),
        )
        job = self.get(job_id)
        assert job is not None
        return job

    def get(self, job_id: str) -> TrainingJob | None:
        rows = self.store.query(f"SELECT {JOB_COLUMNS} FROM training_jobs WHERE id = ?", (job_id,))
        if not rows:
            return None
        jid, spec, status, progress, created, updated, started, finished, error = rows[0]
        return TrainingJob(jid, json.loads(spec), JobStatus(status), float(progress), int(created), int(updated),
                           started, finished, error)  # fmt: skip

    def list(self) -> list[TrainingJob]:
        ids = [r[0] for r in self.store.query("SELECT id FROM training_jobs ORDER BY created_at, id")]
        return [job for job in (self.get(i) for i in ids) if job is not None]

    def mark_running(self, job_id: str) -> None:
        now = now_ms()
        self.store.execute(
            "UPDATE training_jobs SET status = ?, started_at = ?, updated_at = ?, finished_at = NULL, error = NULL WHERE id = ?",
            (JobStatus.RUNNING.value, now, now, job_id),
        )

    def set_progress(self, job_id: str, progress: float) -> None:
        self.store.execute(
            "UPDATE training_jobs SET progress = ?, updated_at = ? WHERE id = ?", (min(max(progress, 0.0), 1.0), now_ms(), job_id)
        )

    def finish(self, job_id: str, error: str | None = None) -> None:
        now = now_ms()
        status = JobStatus.FAILED if error else JobStatus.COMPLETED
        if error is None:
            self.set_progress(job_id, 1.0)
        self.store.execute(
            "UPDATE training_jobs SET status = ?, finished_at = ?, updated_at = ?, error = ? WHERE id = ?",
            (status.value, now, now, error, job_id),
        )


JobRunner = Callable[[str, dict[str, Any], Callable[[float], None]], list[TrainedConfiguration]]
"""(job id, spec, report progress 0..1) -> the configurations the job trained."""


class JobService:
    """Start, run, inspect training jobs; what the job runner does (e.g. an optimisation) is injected."""

    def __init__(self, store: SqlStore, runner: JobRunner) -> None:
        self.jobs = JobRepository(store)
        self.configs = ConfigurationRepository(store)
        self.runner = runner

    def start(self, spec: dict[str, Any], job_id: str | None = None) -> TrainingJob:
        """Register a job; an existing id with the same spec is returned as it is (resume), a different spec refused."""
        job_id = job_id or uuid.uuid4().hex[:12]
        existing = self.jobs.get(job_id)
        if existing is None:
            return self.jobs.create(job_id, spec)
        if existing.spec != json.loads(to_json(spec)):
            raise ValueError(f"job {job_id!r} exists with a different spec {existing.spec}; choose another --job-id")
        return existing

    def run(self, job_id: str) -> list[TrainedConfiguration]:
        """Run (or resume) a job to the end, saving its configurations; a failure is recorded, then re-raised."""
        job = self.status(job_id)
        if job.status is JobStatus.COMPLETED:
            return self.results(job_id)
        self.jobs.mark_running(job_id)
        try:
            configs = self.runner(job_id, job.spec, lambda p: self.jobs.set_progress(job_id, p))
            for config in configs:
                self.configs.save(config)
        except BaseException as exc:  # KeyboardInterrupt too: the job must not stay RUNNING silently
            self.jobs.finish(job_id, error=f"{type(exc).__name__}: {exc}")
            raise
        self.jobs.finish(job_id)
        return configs

    def status(self, job_id: str) -> TrainingJob:
        job = self.jobs.get(job_id)
        if job is None:
            raise KeyError(f"no training job {job_id!r}")
        return job

    def results(self, job_id: str) -> list[TrainedConfiguration]:
        self.status(job_id)
        return self.configs.list(job_id=job_id)
