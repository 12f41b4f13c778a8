"""The FastAPI application of ``pivotal serve``: routes thin over ``pivotal.services`` (no logic of their own), one
error format (``api.errors``), the token and rate limit on state-changing requests (``api.security``), the WebSocket
hub (``api.hub``) and backtest jobs (``api.jobs``). ``create_app`` builds one; docs/api.md lists the routes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict
from typing import Any, Literal

from fastapi import FastAPI, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import PlainTextResponse

from pivotal.api import errors
from pivotal.api.cob_routes import mount_cob
from pivotal.api.hub import Hub
from pivotal.api.jobs import JobRunner
from pivotal.api.learning_routes import mount_learning
from pivotal.api.optimize_routes import mount_optimize
from pivotal.api.runtime_routes import mount_runtime
from pivotal.api.schemas import (
    TIMEFRAME_PATTERN,
    AnnotationIn,
    AnnotationOut,
    AnnotationPatch,
    BacktestIn,
    CandlesOut,
    ConfigurationOut,
    CoverageOut,
    ErrorBody,
    JobOut,
    JobResultOut,
    ModelDetailOut,
    ModelOut,
    PivotOut,
    PromoteIn,
    PromotionOut,
    PublishedOut,
    PublishIn,
    RiskStateOut,
    RollbackIn,
    SeriesOut,
)  # fmt: skip
from pivotal.api.security import RateLimiter, Token, guard
from pivotal.api.structure_routes import mount_structure
from pivotal.api.training_routes import mount_training
from pivotal.api.web import mount_web
from pivotal.config import Settings, load_settings
from pivotal.core.errors import DataNotFound
from pivotal.core.timeframes import TIMEFRAMES
from pivotal.data.state.annotations import AnnotationFilter
from pivotal.data.state.predictions import PredictionFilter
from pivotal.services import annotations as annotation_service
from pivotal.services import api_queries, configs, data, online, predictions, train

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 404, 422, 429, 500)
}  # every route may answer these, in the one format

# validated at the edge (the schema lists the names; a bad one is a 422 naming the field, never a service's ValueError)
TF = Query(..., pattern=TIMEFRAME_PATTERN, description="a timeframe name: " + " ".join(TIMEFRAMES))
TF_ANY = Query(None, pattern=TIMEFRAME_PATTERN)


def create_app(
    settings: Settings | None = None,
    token: Token | None = None,
    limiter: RateLimiter | None = None,
    hub: Hub | None = None,
    cors_origins: Sequence[str] = (),
) -> FastAPI:
    """The app. ``token``: required on state-changing requests (generated when None: read it from ``app.state``);
    ``cors_origins``: browser origins allowed to call it (none by default)."""
    settings = settings or load_settings()
    token = token or Token.generate()
    hub = hub or Hub()
    jobs = JobRunner(settings, hub.publish)

    @contextlib.asynccontextmanager
    async def lifespan(this: FastAPI) -> AsyncIterator[None]:
        yield
        jobs.shutdown()
        this.state.training.shutdown()  # annotation training jobs and replay sessions (api.training_routes)

    # no /docs or /redoc: their pages load scripts from a CDN, and the API must work offline; the schema is /openapi.json
    app = FastAPI(title="pivotal", version="1", lifespan=lifespan, responses=ERRORS, docs_url=None, redoc_url=None)
    app.state.token, app.state.hub, app.state.jobs, app.state.settings = token, hub, jobs, settings
    errors.install(app)
    app.middleware("http")(guard(token, limiter or RateLimiter()))
    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["*"], allow_headers=["*"])

    # --- data -------------------------------------------------------------------------------------------------------

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        return {"success": True, "ws_clients": hub.clients, "last_seq": hub.last_seq}

    @app.get("/api/series", response_model=list[SeriesOut])
    def series() -> list[dict[str, Any]]:
        """Every stored candle series and its coverage."""
        return [asdict(s) for s in data.series(settings)]

    @app.get("/api/series/coverage", response_model=list[CoverageOut])
    def coverage(exchange: str | None = None, symbol: str | None = None, timeframe: str | None = TF_ANY) -> list[dict[str, Any]]:
        """The missing spans of each stored series matching the filter."""
        return [
            {"series": asdict(s), "gaps": [asdict(g) for g in gs]} for s, gs in data.gaps(settings, exchange, symbol, timeframe)
        ]

    @app.get("/api/candles", response_model=CandlesOut)
    def candles(
        exchange: str, symbol: str, timeframe: str = TF,
        start: int | None = Query(None, ge=0, description="epoch ms, inclusive"),
        end: int | None = Query(None, ge=0, description="epoch ms, exclusive"),
        limit: int = Query(5000, ge=1, le=api_queries.MAX_PAGE),
        max_points: int | None = Query(None, ge=2, le=100_000, description="merge bars so at most this many come back"),
    ) -> dict[str, Any]:  # fmt: skip
        """A page of candles (``next_start`` for the next), or the whole range downsampled to ``max_points``."""
        return asdict(api_queries.candle_page(settings, exchange, symbol, timeframe, start, end, limit, max_points))

    @app.get("/api/pivots", response_model=list[PivotOut])
    def pivots(
        exchange: str, symbol: str, timeframe: str = TF,
        start: int | None = Query(None, ge=0), end: int | None = Query(None, ge=0),
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Pivots of every level with the time each became known (``confirmed_ts``)."""
        return api_queries.pivot_events(settings, exchange, symbol, timeframe, start, end)

    # --- configurations, models, predictions ----------------------------------------------------------------------

    @app.get("/api/configs", response_model=list[ConfigurationOut])
    def config_list(job_id: str | None = None, strategy: str | None = None) -> list[dict[str, Any]]:
        return [asdict(c) for c in configs.list_configurations(settings, job_id, strategy)]

    @app.get("/api/configs/{config_id}", response_model=ConfigurationOut)
    def config_show(config_id: str) -> dict[str, Any]:
        return asdict(configs.get_configuration(settings, config_id))

    @app.get("/api/models", response_model=list[ModelOut])
    def model_list(name: str | None = None) -> list[dict[str, Any]]:
        """Every kept checkpoint, best first per model name."""
        return [asdict(i) for i in train.list_checkpoints(settings, name)]

    @app.get("/api/models/{name}", response_model=ModelDetailOut)
    def model_show(name: str, version: str | None = None) -> dict[str, Any]:
        """One checkpoint (the best of ``name``, or ``version``) with its serving and staleness info."""
        try:
            info = train.show_checkpoint(settings, f"{name}/{version}" if version else name)
            status = online.online_status(online.models_root(settings), info.name)
        except KeyError as exc:
            raise DataNotFound(str(exc.args[0])) from None
        return {**asdict(info), "online": status}

    @app.post("/api/models/{name}/promote", response_model=PromotionOut)
    def model_promote(name: str, body: PromoteIn) -> dict[str, Any]:
        """Serve ``name/version`` now (manual, no gate); logged. A serving process's watcher swaps it in."""
        try:
            event = online.promote(online.models_root(settings), name, body.version, body.reason)
        except KeyError as exc:
            raise DataNotFound(str(exc.args[0])) from None
        hub.publish("training", {"event": "promote", "name": name, "version": event.version, "previous": event.previous})
        return asdict(event)

    @app.post("/api/models/{name}/rollback", response_model=PromotionOut)
    def model_rollback(name: str, body: RollbackIn) -> dict[str, Any]:
        """Serve the version that served before the current one; logged."""
        try:
            event = online.rollback(online.models_root(settings), name, body.reason)
        except KeyError as exc:
            raise DataNotFound(str(exc.args[0])) from None
        hub.publish("training", {"event": "rollback", "name": name, "version": event.version, "previous": event.previous})
        return asdict(event)

    @app.get("/api/predictions")
    def prediction_list(
        model: str | None = None, version: str | None = None, symbol: str | None = None, timeframe: str | None = TF_ANY,
        start: int | None = Query(None, ge=0), end: int | None = Query(None, ge=0), limit: int = Query(100, ge=1, le=10_000),
    ) -> list[dict[str, Any]]:  # fmt: skip
        return predictions.list_predictions(settings, PredictionFilter(model, version, symbol, timeframe, start, end), limit)

    @app.get("/api/predictions/stats")
    def prediction_stats(
        model: str | None = None, symbol: str | None = None, timeframe: str | None = TF_ANY
    ) -> list[dict[str, Any]]:
        return predictions.prediction_stats(settings, PredictionFilter(model, None, symbol, timeframe))

    @app.get("/api/predictions/outcomes")
    def prediction_outcomes(
        symbol: str, timeframe: str = TF, model: str | None = None, exchange: str | None = None,
        start: int | None = Query(None, ge=0), end: int | None = Query(None, ge=0),
    ) -> dict[str, dict[str, Any]]:  # fmt: skip
        """Hit rate per target of the stored predictions, scored from the stored candles (nothing is saved)."""
        return predictions.prediction_outcomes(settings, PredictionFilter(model, None, symbol, timeframe, start, end), exchange)

    # --- annotations --------------------------------------------------------------------------------------------

    def _filter(
        source: str | None, symbol: str | None, timeframe: str | None, tag: str | None, start: int | None, end: int | None
    ) -> AnnotationFilter:
        return AnnotationFilter(source=source, symbol=symbol, timeframe=timeframe, tag=tag, start=start, end=end)

    @app.get("/api/annotations", response_model=list[AnnotationOut])
    def annotation_list(
        source: Literal["manual", "trendline"] | None = None, symbol: str | None = None, timeframe: str | None = TF_ANY,
        tag: str | None = None, start: int | None = Query(None, ge=0), end: int | None = Query(None, ge=0),
        limit: int = Query(100, ge=1, le=10_000),
    ) -> list[dict[str, Any]]:  # fmt: skip
        return annotation_service.list_annotations(settings, _filter(source, symbol, timeframe, tag, start, end), limit)

    @app.get("/api/annotations/export", response_class=PlainTextResponse)
    def annotation_export(
        format: Literal["json", "csv"] = "json", source: Literal["manual", "trendline"] | None = None,
        symbol: str | None = None, timeframe: str | None = TF_ANY, tag: str | None = None,
    ) -> PlainTextResponse:  # fmt: skip
        text, _ = annotation_service.export_annotations(settings, _filter(source, symbol, timeframe, tag, None, None), format)
        media = "application/json" if format == "json" else "text/csv"
        return PlainTextResponse(
            text, media_type=media, headers={"Content-Disposition": f"attachment; filename=annotations.{format}"}
        )

    @app.post("/api/annotations", response_model=AnnotationOut, status_code=201)
    def annotation_create(body: AnnotationIn) -> dict[str, Any]:
        created = api_queries.create_annotation(settings, body.model_dump())
        hub.publish("annotation", {"op": "create", "annotation": created})
        return created

    @app.get("/api/annotations/{annotation_id}", response_model=AnnotationOut)
    def annotation_get(annotation_id: str) -> dict[str, Any]:
        return api_queries.get_annotation(settings, annotation_id)

    @app.get("/api/annotations/{annotation_id}/history")
    def annotation_history(annotation_id: str) -> list[dict[str, Any]]:
        return api_queries.annotation_history(settings, annotation_id)

    @app.patch("/api/annotations/{annotation_id}", response_model=AnnotationOut)
    def annotation_update(annotation_id: str, body: AnnotationPatch) -> dict[str, Any]:
        changes = body.model_dump(exclude_unset=True)
        expected = changes.pop("expected_version", None)
        updated = api_queries.update_annotation(settings, annotation_id, changes, expected)
        hub.publish("annotation", {"op": "update", "annotation": updated})
        return updated

    @app.delete("/api/annotations/{annotation_id}", response_model=AnnotationOut)
    def annotation_delete(annotation_id: str) -> dict[str, Any]:
        deleted = api_queries.delete_annotation(settings, annotation_id)
        hub.publish("annotation", {"op": "delete", "id": annotation_id})
        return deleted

    # --- risk, jobs, events -------------------------------------------------------------------------------------

    @app.get("/api/risk", response_model=RiskStateOut)
    def risk(audit: str = Query(..., description="a run's risk audit log, relative to the data folder")) -> dict[str, Any]:
        """Breakers in force and the trip/reset history of a run's audit log."""
        return api_queries.risk_state(settings, audit)

    @app.post("/api/jobs/backtest", response_model=JobOut, status_code=202)
    def backtest_start(body: BacktestIn) -> dict[str, Any]:
        """Start a backtest in the server (poll ``/api/jobs/{id}``; progress on the WebSocket as ``job``)."""
        return jobs.start_backtest(body.model_dump())

    @app.get("/api/jobs", response_model=list[JobOut])
    def job_list() -> list[dict[str, Any]]:
        return [j.view() for j in jobs.list()]

    @app.get("/api/jobs/{job_id}", response_model=JobOut)
    def job_status(job_id: str) -> dict[str, Any]:
        return jobs.get(job_id).view()

    @app.get("/api/jobs/{job_id}/result", response_model=JobResultOut)
    def job_result(job_id: str) -> dict[str, Any]:
        job = jobs.get(job_id)
        return {**job.view(), "result": job.result}

    @app.post("/api/events", response_model=PublishedOut, status_code=202)
    def publish(body: PublishIn) -> dict[str, int]:
        """Push one event to every WebSocket client (for a runtime in another process; in-process: ``hub.publish``)."""
        return {"seq": hub.publish(body.type, body.payload)["seq"]}

    # --- WebSocket -----------------------------------------------------------------------------------------------

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, last_seq: int | None = None) -> None:
        """Every hub message as JSON ``{seq, type, ts, payload}``; ``?last_seq=N`` replays what came after N, or
        sends ``{"type": "reload"}`` when that is no longer buffered."""
        await websocket.accept()
        sub, missed = hub.subscribe(last_seq)
        try:
            for message in missed:
                await websocket.send_json(message)
            if missed and missed[0]["type"] == "reload":
                return
            receiver = asyncio.ensure_future(websocket.receive_text())  # notices the client leaving
            while True:
                getter = asyncio.ensure_future(sub.queue.get())
                done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
                if receiver in done:
                    getter.cancel()
                    receiver.result()  # raises WebSocketDisconnect when the client closed
                    receiver = asyncio.ensure_future(websocket.receive_text())  # a client message: ignored
                    continue
                message = getter.result()
                await websocket.send_json(message)
                if message["type"] == "reload":
                    return
        except WebSocketDisconnect:
            pass
        finally:
            hub.unsubscribe(sub)
            with contextlib.suppress(Exception):
                await websocket.close()

    mount_runtime(app, hub, settings)  # runtime node control and its risk engine (api.runtime_routes)
    mount_training(app, hub, settings)  # training on annotations, replay vs annotations (api.training_routes)
    mount_learning(app, hub, settings)  # realtime inference over that node, live-training stats (api.learning_routes)
    mount_structure(app, hub, settings)  # trend lines of a stored series (api.structure_routes)
    mount_cob(app, hub, settings)  # the order-book heatmap over stored depth (api.cob_routes)
    mount_optimize(app, hub, settings)  # optimisation jobs: start, status, results, resume (api.optimize_routes)
    mount_web(app)  # the browser UI: / and /static (api.web)
    return app
