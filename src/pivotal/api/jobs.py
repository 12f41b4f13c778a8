"""Backtest jobs: started by a POST, run by ``services.backtest`` in a worker thread of the server process, polled by
id. A job belongs to the server, not to a browser tab: closing the tab loses nothing, the client polls
``GET /api/jobs/{id}`` (or listens on the WebSocket) when it comes back. Jobs live as long as the server process.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pivotal.config import Settings
from pivotal.core.errors import DataNotFound, PivotalError
from pivotal.services.backtest import CandleSource, load_source, run_backtest

Publish = Callable[[str, Any], Any]


@dataclass
class Job:
    id: str
    kind: str
    request: dict[str, Any]
    status: str = "queued"  # queued → running → done | failed
    created_ms: int = field(default_factory=lambda: time.time_ns() // 1_000_000)
    finished_ms: int | None = None
    error: str | None = None
    result: dict[str, Any] | None = None

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "status": self.status, "request": self.request,
                "created_ms": self.created_ms, "finished_ms": self.finished_ms, "error": self.error}  # fmt: skip


class JobRunner:
    """A small pool of workers and the jobs it ran; progress and results go to ``publish`` (the hub)."""

    def __init__(self, settings: Settings, publish: Publish, workers: int = 2) -> None:
        self.settings, self.publish = settings, publish
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None  # made on the first job (and again after a shutdown)
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def start_backtest(self, request: dict[str, Any]) -> dict[str, Any]:
        """Queue a backtest; its view as queued (the worker may already be running it)."""
        job = Job("bt-" + uuid.uuid4().hex[:12], "backtest", request)
        with self._lock:
            self._jobs[job.id] = job
        queued = job.view()
        self.publish("job", queued)
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="pivotal-job")
            self._pool.submit(self._run_backtest, job)
        return queued

    def _run_backtest(self, job: Job) -> None:
        job.status = "running"
        self.publish("job", job.view())
        r = job.request
        try:
            source = CandleSource(
                exchange=r["exchange"], symbol=r["symbol"], timeframe=r["timeframe"], start=r.get("start"), end=r.get("end")
            )
            candles = load_source(source, self.settings)
            run = run_backtest(
                candles, r["strategy"], r.get("params") or {}, fee_rate=r["fee_rate"], slippage=r["slippage"],
                source=source.describe(), capital=r["capital"],
            )  # fmt: skip
            job.result = run.report()
            job.status = "done"
        except PivotalError as exc:
            job.error, job.status = str(exc), "failed"
        except Exception as exc:  # a bug: the job says so, the server goes on; no exception text (it may hold paths)
            job.error, job.status = f"internal error ({type(exc).__name__}); see the server log", "failed"
        job.finished_ms = time.time_ns() // 1_000_000
        self.publish("job", {**job.view(), "result": job.result})

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise DataNotFound(f"no job {job_id!r}; list them with GET /api/jobs")
        return job

    def list(self) -> list[Job]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.created_ms)

    def shutdown(self) -> None:
        """Stop taking jobs: queued ones are cancelled, running ones finish in their thread."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
