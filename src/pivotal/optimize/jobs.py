"""Optimization jobs (parameter searches): the ``JobRepository`` and the ``JobService`` a REST API will expose
(start/status/results). Rows live in the ``optimization_jobs`` table behind
``pivotal.data.state.jobs.JobRecords``; "training" is reserved for model training.

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

from pivotal.core.clock import Clock, WallClock
from pivotal.data.state.jobs import JobRecords
from pivotal.data.state.migrations import SqlStore
from pivotal.optimize.configs import ConfigurationRepository, TrainedConfiguration, to_json


class JobStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class OptimizationJob:
    id: str
    spec: dict[str, Any]
    status: JobStatus
    progress: float  # 0..1
    created_at: int
    updated_at: int
    started_at: int | None
    finished_at: int | None
    error: str | None


class JobRepository:
    """Optimization jobs on a store, as :class:`OptimizationJob`; times come from ``clock``."""

    def __init__(self, store: SqlStore, clock: Clock | None = None) -> None:
        self.records = JobRecords(store)
        self.clock = clock or WallClock()

    def create(self, job_id: str, spec: dict[str, Any]) -> OptimizationJob:
        self.records.create(job_id, to_json(spec), self.clock.now_ms())
        job = self.get(job_id)
        assert job is not None
        return job

    def get(self, job_id: str) -> OptimizationJob | None:
        row = self.records.get(job_id)
        return _from_row(row) if row is not None else None

    def list(self) -> list[OptimizationJob]:
        """Oldest first."""
        return [_from_row(r) for r in self.records.list()]

    def mark_running(self, job_id: str) -> None:
        self.records.mark_running(job_id, self.clock.now_ms())

    def set_progress(self, job_id: str, progress: float) -> None:
        self.records.set_progress(job_id, progress, self.clock.now_ms())

    def finish(self, job_id: str, error: str | None = None) -> None:
        self.records.finish(job_id, self.clock.now_ms(), error)


def _from_row(row: dict[str, Any]) -> OptimizationJob:
    return OptimizationJob(
        id=row["id"],
        spec=json.loads(row["spec"]),
        status=JobStatus(row["status"]),
        progress=float(row["progress"]),
        created_at=int(row["created_at"]),
        updated_at=int(row["updated_at"]),
        started_at=None if row["started_at"] is None else int(row["started_at"]),
        finished_at=None if row["finished_at"] is None else int(row["finished_at"]),
        error=row["error"],
    )


JobRunner = Callable[[str, dict[str, Any], Callable[[float], None]], list[TrainedConfiguration]]
"""(job id, spec, report progress 0..1) -> the configurations the job trained."""


class JobService:
    """Start, run, inspect optimization jobs; what the job runner does (e.g. a parameter search) is injected."""

    def __init__(self, store: SqlStore, runner: JobRunner, clock: Clock | None = None) -> None:
        self.jobs = JobRepository(store, clock)
        self.configs = ConfigurationRepository(store, clock)
        self.runner = runner

    def start(self, spec: dict[str, Any], job_id: str | None = None) -> OptimizationJob:
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

    def status(self, job_id: str) -> OptimizationJob:
        job = self.jobs.get(job_id)
        if job is None:
            raise KeyError(f"no optimization job {job_id!r}; see the job ids printed by `pivotal optimize`")
        return job

    def results(self, job_id: str) -> list[TrainedConfiguration]:
        self.status(job_id)
        return self.configs.list(job_id=job_id)
