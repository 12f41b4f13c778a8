"""Routes that train models on chart annotations and replay them against the annotations, thin over
``services.annotation_training`` (which holds the logic):

- ``POST /api/training/jobs`` starts a training job (one at a time: 409 while one runs), ``GET /api/training/jobs``
  and ``/{id}`` read their progress (step, loss, samples), ``POST /api/training/jobs/{id}/stop`` stops one; progress
  goes to the WebSocket as ``training_progress`` messages.
- ``POST /api/annotations/replay`` starts a replay session (model, series, range, speed 1/2/5/10): its predictions go
  to the WebSocket one bar at a time as ``prediction`` messages, its state changes as ``replay``;
  ``POST .../{id}/pause|resume|step|stop|speed`` control it; ``GET /api/annotations/replay/{id}`` is its result (the
  predictions played so far, accuracy / precision / recall / F1 per class and the confusion matrix).
- ``GET /api/annotations/testcases``: the annotations as JSON test fixtures (realtime sample format, market state).

Jobs and sessions belong to the server (they run whether or not a browser is open) and live as long as its process.
The token middleware of ``create_app`` guards every POST.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, HTTPException, Query
from fastapi.routing import APIRoute

from pivotal.api.hub import Hub
from pivotal.api.schemas import TIMEFRAME_PATTERN
from pivotal.api.schemas_training import (
    ReplayIn,
    ReplayOut,
    ReplayResultOut,
    SpeedIn,
    TrainingJobIn,
    TrainingJobOut,
)  # fmt: skip
from pivotal.config import Settings
from pivotal.core.errors import DataNotFound
from pivotal.data.state.annotations import AnnotationFilter
from pivotal.services import annotation_training as service

KEEP_SESSIONS = 20  # finished replay sessions kept for their result (the oldest go first)
TESTCASES = "/api/annotations/testcases"


class TrainingManager:
    """The server's training jobs and replay sessions. ``bar_interval_s``: the pace of a replay at 1x (tests set it
    short)."""

    def __init__(self, settings: Settings, publish: Callable[[str, Any], Any]) -> None:
        self.settings, self.publish = settings, publish
        self.bar_interval_s = 1.0
        self._lock = threading.Lock()
        self.jobs: dict[str, service.TrainingJob] = {}
        self.sessions: dict[str, service.ReplaySession] = {}
        self._threads: list[threading.Thread] = []

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def start_job(self, body: TrainingJobIn) -> service.TrainingJob:
        a = body.annotations
        where = (
            AnnotationFilter()
            if a is None
            else AnnotationFilter(None, a.symbol, a.timeframe, None, None, None, a.start, a.end, a.tag)
        )
        request = service.TrainRequest(
            model=body.model, where=where,
            kind=body.kind, fresh=body.fresh, save_as=body.save_as, exchange=body.exchange,
            timeframes=tuple(body.timeframes or ()), window=body.window, epochs=body.epochs, batch_size=body.batch_size,
            seed=body.seed, threads=body.threads, steps_per_epoch=body.steps_per_epoch,
        )  # fmt: skip
        with self._lock:
            if any(j.status in ("queued", "running") for j in self.jobs.values()):
                raise HTTPException(409, "a training job is running; wait for it or stop it (POST /api/training/jobs/{id}/stop)")
            job = service.TrainingJob(request, self.settings, self.publish)
            self.jobs[job.id] = job
            self._spawn(job.run, "pivotal-train")
        return job

    def job(self, job_id: str) -> service.TrainingJob:
        with self._lock:
            job = self.jobs.get(job_id)
        if job is None:
            raise DataNotFound(f"no training job {job_id!r}; list them with GET /api/training/jobs")
        return job

    def start_replay(self, body: ReplayIn) -> service.ReplaySession:
        request = service.ReplayRequest(body.model, body.symbol, body.timeframe, body.start, body.end, body.exchange, body.speed)
        session = service.ReplaySession(self.settings, request, self.publish, self.bar_interval_s)
        with self._lock:
            ended = [k for k, s in self.sessions.items() if s.status in ("completed", "stopped", "failed")]
            for key in ended[: max(0, len(self.sessions) + 1 - KEEP_SESSIONS)]:
                del self.sessions[key]
            self.sessions[session.id] = session
            self._spawn(session.run, "pivotal-replay")
        return session

    def session(self, session_id: str) -> service.ReplaySession:
        with self._lock:
            session = self.sessions.get(session_id)
        if session is None:
            raise DataNotFound(f"no replay session {session_id!r}; start one with POST /api/annotations/replay")
        return session

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop every job and session and wait for their threads."""
        for job in list(self.jobs.values()):
            job.stop()
        for session in list(self.sessions.values()):
            session.stop()
        for thread in self._threads:
            thread.join(timeout)


def mount_training(app: FastAPI, hub: Hub, settings: Settings) -> TrainingManager:
    """Add the routes (module doc) to ``app``; the manager is ``app.state.training``."""
    manager = TrainingManager(settings, hub.publish)
    app.state.training = manager

    @app.post("/api/training/jobs", response_model=TrainingJobOut, status_code=202)
    def training_start(body: TrainingJobIn) -> dict[str, Any]:
        """Train a model on the annotations in the server; progress on the WebSocket as ``training_progress``."""
        return manager.start_job(body).view()

    @app.get("/api/training/jobs", response_model=list[TrainingJobOut])
    def training_list() -> list[dict[str, Any]]:
        with manager._lock:
            jobs = sorted(manager.jobs.values(), key=lambda j: j.created_ms)
        return [j.view() for j in jobs]

    @app.get("/api/training/jobs/{job_id}", response_model=TrainingJobOut)
    def training_status(job_id: str) -> dict[str, Any]:
        """Progress: step of total_steps, epoch, last loss, validation loss, samples; the checkpoint when done."""
        return manager.job(job_id).view()

    @app.post("/api/training/jobs/{job_id}/stop", response_model=TrainingJobOut)
    def training_stop(job_id: str) -> dict[str, Any]:
        """Stop after the step running; nothing is saved."""
        job = manager.job(job_id)
        job.stop()
        return job.view()

    @app.post("/api/annotations/replay", response_model=ReplayOut, status_code=202)
    def replay_start(body: ReplayIn) -> dict[str, Any]:
        """Replay ``model`` over [start, end) of one series; predictions on the WebSocket as ``prediction``."""
        return manager.start_replay(body).view()

    @app.get("/api/annotations/replay/{session_id}", response_model=ReplayResultOut)
    def replay_result(session_id: str) -> dict[str, Any]:
        """The predictions played so far and their metrics against the annotations."""
        return manager.session(session_id).result()

    @app.post("/api/annotations/replay/{session_id}/pause", response_model=ReplayOut)
    def replay_pause(session_id: str) -> dict[str, Any]:
        return manager.session(session_id).pause()

    @app.post("/api/annotations/replay/{session_id}/resume", response_model=ReplayOut)
    def replay_resume(session_id: str) -> dict[str, Any]:
        return manager.session(session_id).resume()

    @app.post("/api/annotations/replay/{session_id}/step", response_model=ReplayOut)
    def replay_step(session_id: str) -> dict[str, Any]:
        """Pause and play the next bar."""
        return manager.session(session_id).step()

    @app.post("/api/annotations/replay/{session_id}/speed", response_model=ReplayOut)
    def replay_speed(session_id: str, body: SpeedIn) -> dict[str, Any]:
        return manager.session(session_id).set_speed(body.speed)

    @app.post("/api/annotations/replay/{session_id}/stop", response_model=ReplayOut)
    def replay_stop(session_id: str) -> dict[str, Any]:
        return manager.session(session_id).stop()

    @app.get(TESTCASES)
    def annotation_testcases(
        symbol: str | None = None, timeframe: str | None = Query(None, pattern=TIMEFRAME_PATTERN), tag: str | None = None,
        start: int | None = Query(None, ge=0), end: int | None = Query(None, ge=0), exchange: str | None = None,
        timeframes: str | None = Query(None, description="comma-separated windows of the state (default: the annotations')"),
        candles: int = Query(100, ge=1, le=2000, description="bars per window"),
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Each manual annotation's entry and exit samples in the realtime sample format with their market state."""
        tfs = tuple(t.strip() for t in timeframes.split(",") if t.strip()) if timeframes else ()
        where = AnnotationFilter(symbol=symbol, timeframe=timeframe, tag=tag, start=start, end=end)
        return service.test_cases(settings, where, exchange, tfs, candles)

    # GET /api/annotations/{annotation_id} (create_app) would take "testcases" for an id: this route goes first
    routes = app.router.routes
    ours = [r for r in routes if isinstance(r, APIRoute) and r.path == TESTCASES]
    routes[:] = ours + [r for r in routes if r not in ours]
    return manager


__all__ = ["TrainingManager", "mount_training"]
