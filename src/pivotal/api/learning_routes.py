"""Realtime inference and live-training routes (the API of live-pivot-training.txt) over the server's one runtime node.

``POST /api/realtime-inference/start`` is a run configuration with ``strategy = "model"`` and the named checkpoint
(``services.api_queries.realtime_run_config``), started by the same ``RuntimeManager`` as ``/api/runtime/start``: one
node, one runner. Its predictions and decisions reach the WebSocket as ``prediction`` / ``decision`` messages.
Thresholds and the live-training switch act on the running node between two events (under its lock); what the node
cannot change live is refused with a 409 that says so, never pretended.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Query

from pivotal.api.hub import Hub
from pivotal.api.runtime_routes import RuntimeManager, RuntimeRun, config_from_body
from pivotal.api.schemas_dashboard import LiveTrainingIn, RealtimeStartIn, ThresholdsIn
from pivotal.config import Settings
from pivotal.services import api_queries


def mount_learning(app: FastAPI, hub: Hub, settings: Settings) -> None:
    """Add the realtime-inference and live-training routes (after ``mount_runtime``: they share its manager)."""
    manager: RuntimeManager = app.state.runtime

    def _active() -> RuntimeRun | None:
        run = manager.current
        return run if run is not None and run.cfg.strategy == "model" else None

    def _run() -> RuntimeRun:
        run = manager.current
        if run is None:
            raise HTTPException(409, "no model run is active; start one with POST /api/realtime-inference/start")
        return run

    @app.post("/api/realtime-inference/start", status_code=202)
    def realtime_start(body: RealtimeStartIn) -> dict[str, Any]:
        """Trade ``model_name`` on ``symbol`` in a replay of the stored series (``mode`` replay) or on the exchange's
        live feed with simulated fills (``mode`` paper, ``exchange_url`` for a local test exchange), learning live from
        confirmed pivots (``enable_live_training``, default true); 409 while a node runs."""
        values = body.model_dump(exclude={"model_name", "symbol"})
        config = api_queries.realtime_run_config(settings, body.model_name, body.symbol, **values)
        run = manager.start(config_from_body(config, settings))
        hub.publish("inference", {"event": "start", "model_name": body.model_name, "symbol": body.symbol,
                                  "enable_live_training": body.enable_live_training})  # fmt: skip
        return run.status()

    @app.post("/api/realtime-inference/stop")
    def realtime_stop() -> dict[str, Any]:
        """Stop the model run (its node finishes: positions closed at the last price, ``run_finished``)."""
        _run()
        status = manager.stop().status()
        hub.publish("inference", {"event": "stop"})
        return status

    @app.get("/api/realtime-inference/status")
    def realtime_status() -> dict[str, Any]:
        """Whether a model run is active, its models, thresholds and live-training switch, and the node's status;
        ``reason`` says why the controls are off when none is."""
        run = manager.current
        if run is None:
            return {"active": False, "reason": "no model run; start one with POST /api/realtime-inference/start"}
        status = run.status()
        if run.cfg.strategy != "model":
            return {"active": False, "reason": f"the node runs strategy {run.cfg.strategy!r}, not a model",
                    "runtime": status}  # fmt: skip
        if not run.running:
            return {"active": False, "reason": "the model run has finished; start another", "runtime": status}
        return {"active": True, "reason": None, "runtime": status}

    @app.post("/api/realtime-inference/thresholds")
    def realtime_thresholds(body: ThresholdsIn) -> dict[str, Any]:
        """Set the orchestrator's buy/sell thresholds of the running model node, from its next decision on."""
        return _run().set_thresholds(body.buy, body.sell)

    @app.post("/api/realtime-inference/live-training")
    def realtime_live_training(body: LiveTrainingIn) -> dict[str, Any]:
        """Pause or resume live training (queueing confirmed-pivot samples) of the running model node."""
        return _run().set_live_training(body.enabled)

    @app.get("/api/live-training/stats")
    def live_training_stats(model: str | None = Query(None, description="a model name (default: all)")) -> dict[str, Any]:
        """Per model: pivots trained per timeframe and symbol, last training time and loss, samples queued, serving
        version and staleness per symbol — of the running (or last) model run when there is one, else as stored
        (serving version, staleness, the trainer's last metrics; null for a model never trained online)."""
        run = _active()
        stats = None if run is None else run.learning_stats()
        if stats is not None:
            source = "running" if run is not None and run.running else "finished run"
            models = {k: v for k, v in stats.items() if model is None or k == model}
            return {"source": source, "models": models}
        names = None if model is None else [model]
        return {"source": "stored", "models": api_queries.stored_learning_stats(settings, names)}
