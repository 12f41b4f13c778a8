"""Optimisation jobs over HTTP: start, status, results, list, and resume / reattach — thin over
``services.optimize`` (``build_spec``, ``start_optimization``, ``run_optimization``, the leaderboard).

A job's record, progress and stored configurations live in the store (``optimize.jobs``), not in the server: a browser
that closes loses nothing (poll ``GET /api/optimize/{id}``), and after a server restart ``POST
/api/optimize/{id}/resume`` continues the job from its stored trials. The server runs each job in a worker thread
(one at a time per job id); progress goes to the WebSocket as ``job`` messages of kind ``optimize``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

from fastapi import FastAPI, HTTPException

from pivotal.api.hub import Hub
from pivotal.api.schemas_dashboard import OptimizeIn
from pivotal.config import Settings
from pivotal.core.errors import PivotalError
from pivotal.optimize.pipeline import OptimizeSpec
from pivotal.optimize.study import ProgressSink
from pivotal.services import configs as config_service
from pivotal.services import optimize as service


class HubProgress(ProgressSink):
    """Progress of a running job as ``job`` messages on the hub (at most one per ``every_s`` per study)."""

    def __init__(self, job_id: str, publish: Callable[[str, Any], Any], every_s: float = 0.5) -> None:
        super().__init__(enabled=False)
        self.job_id, self.publish, self.every_s = job_id, publish, every_s

    @contextmanager
    def task(self, description: str, total: int, completed: int = 0) -> Iterator[Any]:
        done, last = [completed], [0.0]

        def advance(n: int) -> None:
            done[0] += n
            now = time.monotonic()
            if now - last[0] >= self.every_s or done[0] >= total:
                last[0] = now
                self.publish("job", {"id": self.job_id, "kind": "optimize", "status": "running", "study": description,
                                     "completed": done[0], "total": total})  # fmt: skip

        yield advance


def _view(job: Any, running: bool) -> dict[str, Any]:
    return {**asdict(job), "status": str(job.status), "running_here": running}


def mount_optimize(app: FastAPI, hub: Hub, settings: Settings) -> None:
    """Add the optimisation job routes."""
    threads: dict[str, threading.Thread] = {}
    errors: dict[str, str] = {}
    lock = threading.Lock()

    def running(job_id: str) -> bool:
        with lock:
            t = threads.get(job_id)
        return t is not None and t.is_alive()

    def launch(job_id: str) -> None:
        with lock:
            if job_id in threads and threads[job_id].is_alive():
                raise HTTPException(409, f"optimization job {job_id!r} is already running in this server")

            def work() -> None:
                try:
                    service.run_optimization(settings, job_id, progress=HubProgress(job_id, hub.publish))
                except PivotalError as exc:
                    errors[job_id] = str(exc)
                except Exception as exc:  # a bug: recorded on the job by the service; no exception text here
                    errors[job_id] = f"internal error ({type(exc).__name__}); see the server log"
                job = service.optimization_status(settings, job_id)
                hub.publish("job", {**_view(job, False), "kind": "optimize", "error": job.error or errors.get(job_id)})

            thread = threading.Thread(target=work, name=f"pivotal-optimize-{job_id}", daemon=True)
            threads[job_id] = thread
            thread.start()

    @app.post("/api/optimize", status_code=202)
    def optimize_start(body: OptimizeIn) -> dict[str, Any]:
        """Check the options, create (or, with the same spec, resume) the job and run it in the server."""
        values = body.model_dump(exclude={"job_id"})
        spec = service.build_spec(**values)
        job = service.start_optimization(settings, spec, body.job_id)
        launch(job.id)
        hub.publish("job", {**_view(job, True), "kind": "optimize"})
        return _view(job, True)

    @app.get("/api/optimize")
    def optimize_list() -> list[dict[str, Any]]:
        """Every optimisation job in the store, oldest first."""
        return [_view(j, running(j.id)) for j in service.list_optimizations(settings)]

    @app.get("/api/optimize/{job_id}")
    def optimize_status(job_id: str) -> dict[str, Any]:
        """Status and progress (0..1) from the store; ``running_here``: a thread of this server runs it now."""
        return _view(service.optimization_status(settings, job_id), running(job_id))

    @app.post("/api/optimize/{job_id}/resume", status_code=202)
    def optimize_resume(job_id: str) -> dict[str, Any]:
        """Reattach: run the job again in this server; its studies continue from their stored trials (a completed
        job only re-reads its results)."""
        job = service.optimization_status(settings, job_id)
        launch(job_id)
        return _view(job, True)

    @app.get("/api/optimize/{job_id}/results")
    def optimize_results(job_id: str) -> dict[str, Any]:
        """The leaderboard (best out-of-sample net profit first) and the configurations stored so far."""
        job = service.optimization_status(settings, job_id)
        found = config_service.list_configurations(settings, job_id)
        rows = service.leaderboard(job_id, OptimizeSpec.from_dict(job.spec), found)
        return {
            **_view(job, running(job_id)),
            "leaderboard": [{"market": m.label, "configuration": None if c is None else asdict(c)} for m, c in rows],
        }
