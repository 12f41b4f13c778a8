"""Runtime and risk routes of ``pivotal serve``: start one trading node (a replay or a backtest of a run configuration,
the keys of ``pivotal run``'s TOML) in a background thread of the server, control its replay session (pause, resume,
seek, speed, stop), read its positions, orders and PnL (``TradingNode.snapshot``), and read or reset its risk
engine. Everything the node does goes to the WebSocket hub as it happens: ``run_started``, closed candles of the
traded markets, each pivot as the candles confirm it (``pivot``: level, kind, price, the pivot bar's time, the
confirming bar's close ``confirmed_ts`` and the event time the node knew it ``known_at``) and each trend line those
pivots form (``trendline``, ``services.api_queries.LiveStructure``: over the same bars the pivots and lines equal
``GET /api/pivots`` and ``GET /api/trendlines``), orders, fills, positions, trades, breaker trips, for a model
strategy each decision and the model outputs behind it (``prediction``: next pivot per level as a price and a time),
and a final ``run_finished``. A model run's buy/sell thresholds and live-training switch are changed between two
events (``api.learning_routes``).

Thin over ``runtime.config`` (validation, one-line errors), ``services.run.prepare`` and ``runtime.runner.execute``
(the code ``pivotal run`` runs): its ``on_start`` hook hands over the node, ``on_session`` the replay session and
``observer`` each event after the node processed it, which is where the hub messages are derived (by comparing the
node's state with the last event's: no hook inside the engine). The node's ``on_event`` is wrapped in a lock so an
API call (a snapshot, a risk reset) never sees the node half-way through an event. The node belongs to the server,
not to a browser: it runs whether or not a client is connected. One node at a time (409 while one runs).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Body, FastAPI, HTTPException
from pydantic import BaseModel, Field

from pivotal.api.hub import Hub
from pivotal.config import Settings
from pivotal.core.clock import Clock
from pivotal.core.errors import DataNotFound, PivotalError, UserInputError
from pivotal.core.events import BarClosed, MarketEvent
from pivotal.core.timeframes import TIMEFRAMES
from pivotal.risk.audit import AuditLog
from pivotal.risk.engine import RiskEngine
from pivotal.runtime.config import RunConfig, validate
from pivotal.runtime.node import TradingNode
from pivotal.runtime.replay import ReplaySession, Sleeper
from pivotal.services.api_queries import LiveStructure, prediction_event
from pivotal.strategies.model_strategy import ModelStrategy

if TYPE_CHECKING:
    from pivotal.runtime.learning import LiveLearning

API_MODES = ("replay", "backtest", "paper")  # testnet and live (real orders) are started with `pivotal run`
_PATH_KEYS = ("input", "journal", "audit", "trades_out", "out", "params_file")
Publish = Callable[[str, Any], Any]


class _StopRequested(KeyboardInterrupt):
    """Raised by the observer of a paper run after ``POST /api/runtime/stop``: ``runtime.runner.execute_live`` ends its
    feed on a KeyboardInterrupt (the operator's Ctrl-C) and finishes the node as at the end of the data. It can only
    be raised between two events, so a paper run stops when its next bar closes."""


class SeekIn(BaseModel):
    t: int = Field(..., ge=0, description="epoch ms: continue from the first event at or after it")


class SpeedIn(BaseModel):
    speed: float = Field(..., description="0 (as fast as possible) or 0.1 to 100,000 times the original pace")


class ResetIn(BaseModel):
    rule: str | None = Field(None, description="the breaker to reset (e.g. max_daily_loss); none: every active trip")
    symbol: str | None = None
    by: str = Field("api", min_length=1, max_length=100, description="who resets (audited)")
    reason: str = Field(..., min_length=1, max_length=500, description="why (audited)")


def _num(x: float) -> float | None:
    return None if isinstance(x, float) and not math.isfinite(x) else x


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    """NaN / inf as null (JSON has neither)."""
    return {k: _num(v) if isinstance(v, float) else v for k, v in d.items()}


def config_from_body(body: dict[str, Any], settings: Settings) -> RunConfig:
    """A run configuration sent over HTTP: the TOML's keys, validated by ``runtime.config``; file keys are paths
    relative to the data folder (a client never names an arbitrary file of the machine)."""
    data = dict(body)
    root = settings.data_dir.resolve()
    for key in _PATH_KEYS:
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise UserInputError(f"run configuration: {key}: is a path relative to the data folder (got {value!r})")
        path = (root / value).resolve()
        if Path(value).is_absolute() or not path.is_relative_to(root):
            raise UserInputError(
                f"run configuration: {key}: give a path inside the data folder, relative to it (got {value!r}); "
                f"fix: e.g. runs/{Path(value).name or 'run.jsonl'}"
            )
        data[key] = str(path)
    cfg = validate(data, "run configuration")
    if cfg.mode not in API_MODES:
        raise UserInputError(
            f"run configuration: mode: {cfg.mode!r} is not started through the API yet; fix: use one of "
            f"{', '.join(API_MODES)}, or `pivotal run --mode {cfg.mode}`"
        )
    return cfg


def model_strategy(node: TradingNode) -> ModelStrategy | None:
    """The node's model strategy, under a risk wrapper (``RiskManaged.strategy``) or not; None for a rule strategy."""
    inner: Any = node.inner
    for _ in range(3):
        if isinstance(inner, ModelStrategy):
            return inner
        inner = getattr(inner, "strategy", None)
    return None


class RuntimeRun:
    """One node started by the API: its thread, node, replay session, outcome and what was published."""

    def __init__(self, cfg: RunConfig, publish: Publish) -> None:
        self.cfg, self.publish = cfg, publish
        self.lock = threading.RLock()  # held while the node processes an event, and by every API read of it
        self.node: TradingNode | None = None
        self.session: ReplaySession | None = None
        self.thread: threading.Thread | None = None
        self.outcome: Any = None
        self.error: str | None = None
        self.summary: dict[str, Any] | None = None
        self.published = 0
        self._candles: set[tuple[str, str]] = set()
        self._structure: dict[tuple[str, str], LiveStructure | None] = {}  # None: the series sent an invalid bar
        self._positions: dict[str, dict[str, Any]] = {}
        self._orders: set[str] = set()
        self._trades = 0
        self._trips: set[tuple[str, str]] = set()
        self._reopened = False  # the finished run's audit log, reopened by a reset
        self._decided = 0  # model strategy: orchestrator decisions already published
        self.stop_requested = False  # a paper run (no replay session): its feed is stopped, the node finishes
        self.feed: Any = None  # a paper run's live feed (runner.execute's on_feed)

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def on_feed(self, feed: Any) -> None:
        self.feed = feed
        if self.stop_requested:  # asked before the feed existed
            self.stop_feed()

    def stop_feed(self) -> None:
        """End a paper run now, bars or no bars (an unreachable exchange sends none): the feed's iterator ends, the
        node finishes as at the end of its data. Non-blocking: the feed's thread winds down on its own."""
        self.stop_requested = True
        stop = getattr(self.feed, "stop", None)
        if callable(stop):
            stop(timeout_s=0.0)

    def _send(self, kind: str, payload: Any) -> None:
        self.publish(kind, payload)
        self.published += 1

    # -- hooks of runtime.runner.execute (the replay thread) -------------------------------------------------------
    def on_start(self, node: TradingNode) -> None:
        inner = node.on_event
        lock = self.lock

        def on_event(event: MarketEvent) -> None:
            with lock:
                inner(event)

        node.on_event = on_event  # type: ignore[method-assign]  # the sink looks it up per event
        self._candles = set(node.markets.items())
        self.node = node

    def on_session(self, session: ReplaySession) -> None:
        self.session = session

    def observe(self, event: MarketEvent) -> None:
        """After the node processed ``event``: publish what changed."""
        node = self.node
        if node is None:
            return
        with self.lock:
            if isinstance(event, BarClosed) and (event.bar.symbol, event.bar.timeframe) in self._candles:
                b = event.bar
                self._send("candle", {"exchange": event.exchange, "symbol": b.symbol, "timeframe": b.timeframe,
                                      "ts": b.ts, "close_ts": b.close_ts, "open": b.open, "high": b.high, "low": b.low,
                                      "close": b.close, "volume": b.volume})  # fmt: skip
                self._pivots(event)
            snap = node.snapshot(node.last_time, self.cfg.capital)
            for o in snap.open_orders:
                if o.id not in self._orders:
                    self._orders.add(o.id)
                    self._send("order", {**asdict(o), "time": node.last_time})
            self._closed_trades(node)
            self._model_events(node)
            positions = {p.symbol: _clean(asdict(p)) for p in snap.positions}
            for symbol, p in positions.items():
                old = self._positions.get(symbol)
                if old is None or old["entry_ts"] != p["entry_ts"]:
                    self._send("fill", {"symbol": symbol, "part": "entry", "direction": p["direction"],
                                        "price": p["entry_price"], "ts": p["entry_ts"], "quantity": p["quantity"]})  # fmt: skip
            opened = {s: p["entry_ts"] for s, p in positions.items()}
            if opened != {s: p["entry_ts"] for s, p in self._positions.items()}:  # opened or closed (not re-marked)
                self._send("position", {"time": node.last_time, "positions": list(positions.values())})
            self._positions = positions
            if snap.risk is not None:
                trips = {(t["rule"], t["symbol"]) for t in snap.risk["trips"]}
                for t in snap.risk["trips"]:
                    if (t["rule"], t["symbol"]) not in self._trips:
                        self._send("breaker", {**_clean(t), "state": snap.risk["state"], "reason": snap.risk["reason"]})
                self._trips = trips
        if self.stop_requested:
            raise _StopRequested

    def _pivots(self, event: BarClosed) -> None:
        """The pivots this closed candle confirmed and the trend lines they formed, on the candle's series."""
        b = event.bar
        key = (b.symbol, b.timeframe)
        if key not in self._structure:
            self._structure[key] = LiveStructure(b.timeframe)
        structure = self._structure[key]
        if structure is None:
            return
        try:
            pivots, lines = structure.on_bar(b.ts, b.open, b.high, b.low, b.close)
        except ValueError as exc:  # an invalid bar: its series gets no more pivots (the node itself goes on)
            self._structure[key] = None
            self._send("pivot_error", {"symbol": b.symbol, "timeframe": b.timeframe, "error": str(exc)})
            return
        where = {"exchange": event.exchange, "symbol": b.symbol, "timeframe": b.timeframe}
        for p in pivots:
            self._send("pivot", {**where, **p, "known_at": event.known_at})
        for line in lines:
            self._send("trendline", {**where, **line, "known_at": event.known_at})

    def _model_events(self, node: TradingNode) -> None:
        """A model strategy: each new orchestrator decision (action, score, confidence, why) and the model outputs
        behind it, with each level's next pivot as a price and a time (``prediction``)."""
        strategy = model_strategy(node)
        if strategy is None:
            return
        decisions = strategy.orchestrator.decisions
        for d in decisions[self._decided :]:
            tf_ms = TIMEFRAMES.get(node.markets.get(d.symbol, ""), 0)
            close = node.last_price.get(d.symbol)
            if close is not None:
                for out in strategy.outputs.last_predictions(d.symbol, d.ts).values():
                    if int(out.timestamp) == d.ts:
                        self._send("prediction", {**prediction_event(out.to_dict(), close, tf_ms),
                                                  "timeframe": node.markets.get(d.symbol)})  # fmt: skip
            self._send("decision", {**d.to_dict(), "timeframe": node.markets.get(d.symbol)})
        self._decided = len(decisions)

    def _closed_trades(self, node: TradingNode) -> None:
        """An exit fill and the trade for each trade closed since the last call."""
        trades = node.engine.trades
        for symbol, t in trades[self._trades :]:
            self._send("fill", {"symbol": symbol, "part": "exit", "direction": t.direction, "price": t.exit_fill,
                                "ts": t.exit_time, "reason": t.exit_reason})  # fmt: skip
            self._send("trade", {"symbol": symbol, **_clean(asdict(t))})
        self._trades = len(trades)

    # -- the thread ------------------------------------------------------------------------------------------------
    def play(self, prepared: Any, clock: Clock | None, sleep: Sleeper | None) -> None:
        from pivotal.runtime.node import trade_fingerprint
        from pivotal.runtime.runner import execute

        try:
            outcome = execute(prepared, clock=clock, sleep=sleep, observer=self.observe, on_start=self.on_start,
                              on_session=self.on_session, on_feed=self.on_feed)  # fmt: skip
        except Exception as exc:  # reported in the status and on the hub; a bug's text is not echoed
            self.error = str(exc) if isinstance(exc, PivotalError) else f"internal error ({type(exc).__name__})"
            self._send("run_finished", {"status": "failed", "error": self.error})
            return
        self.outcome = outcome
        node = self.node
        if node is not None:  # the end of the data closes what is open (``TradingNode.finish``)
            with self.lock:
                self._closed_trades(node)
                if self._positions:
                    self._positions = {}
                    self._send("position", {"time": node.last_time, "positions": []})
        trades = outcome.run.result.trades
        self.summary = {
            "status": "stopped" if self.stop_requested or (outcome.session is not None and outcome.session.status == "stopped")
            else "completed",
            "mode": outcome.mode, "events": outcome.events, "trades": len(trades),
            "fingerprint": trade_fingerprint(list(trades)), "report": outcome.run.report(),
            "audit": None if outcome.audit is None else str(outcome.audit),
        }  # fmt: skip
        self._send("run_finished", self.summary)

    # -- a model run: thresholds and live training, changed between two events -------------------------------------
    def strategy(self) -> ModelStrategy:
        """The running node's model strategy; 409 when the run trades something else or has not started."""
        node = self.node
        if node is None:
            raise HTTPException(409, "the run has not started its node yet; retry in a moment")
        strategy = model_strategy(node)
        if strategy is None:
            raise HTTPException(409, f"the running node trades strategy {self.cfg.strategy!r}, which has no model "
                                     "thresholds; start a model run with POST /api/realtime-inference/start")  # fmt: skip
        return strategy

    def learning(self) -> LiveLearning | None:
        """The run's live learning (``runtime.learning.LiveLearning``), found among its data engine's listeners (the
        runner attaches it there; it hands the API no other reference)."""
        from pivotal.runtime.learning import LiveLearning

        engine = None if self.node is None else self.node.data_engine
        for listener in getattr(engine, "_listeners", ()):
            owner = getattr(listener, "__self__", None)
            if isinstance(owner, LiveLearning):
                return owner
        return None

    def set_thresholds(self, buy: float, sell: float) -> dict[str, Any]:
        """New buy/sell thresholds for the orchestrator, in force from the next decision (taken under the node's lock:
        never half-way through a bar)."""
        if not self.running:
            raise HTTPException(409, "the run has finished; thresholds apply to a running model node")
        strategy = self.strategy()
        with self.lock:
            strategy.orchestrator.config = replace(strategy.orchestrator.config, buy_threshold=buy, sell_threshold=sell)
            since = self.node.last_time if self.node is not None else None
        view = {**self.thresholds(), "since": since}
        self._send("thresholds", view)
        return view

    def thresholds(self) -> dict[str, Any]:
        c = self.strategy().orchestrator.config
        return {"buy": c.buy_threshold, "sell": c.sell_threshold}

    def set_live_training(self, enabled: bool) -> dict[str, Any]:
        """Stop or resume queueing live pivot samples for every model of the run (its trainers keep their state).
        A run started without live training has no queue or trainer to resume: 409 saying how to get one."""
        if not self.running:
            raise HTTPException(409, "the run has finished; live training is switched on a running model node")
        self.strategy()
        learning = self.learning()
        if learning is None:
            raise HTTPException(409, "this run was started without live training, so it has no sample queue or trainer "
                                     "to switch on; stop it and start it again with enable_live_training true")  # fmt: skip
        with self.lock:
            for m in learning.models:
                m.trains = enabled and m.queue is not None
        view = {"enable_live_training": enabled, "models": {m.name: m.trains for m in learning.models}}
        self._send("training", {"event": "live_training", **view})
        return view

    def model_view(self) -> dict[str, Any] | None:
        """The model run's models, thresholds and live-training switch (None for a rule strategy)."""
        node = self.node
        strategy = None if node is None else model_strategy(node)
        if self.cfg.strategy != "model":
            return None
        out: dict[str, Any] = {"models": [m.name for m in self.cfg.models], "live_training": self.cfg.live_training,
                               "live_training_switchable": False, "thresholds": None, "decisions": 0}  # fmt: skip
        if strategy is not None:
            c = strategy.orchestrator.config
            out["thresholds"] = {"buy": c.buy_threshold, "sell": c.sell_threshold}
            out["decisions"] = len(strategy.orchestrator.decisions)
            learning = self.learning()
            if learning is not None:  # switchable: the run has its learners (queues, trainers)
                out["live_training"] = any(m.trains for m in learning.models)
                out["live_training_switchable"] = any(m.queue is not None for m in learning.models)
        return out

    def learning_stats(self) -> dict[str, Any] | None:
        """``LiveLearning.stats()`` per model while the run lives, the run's final stats after it; None without."""
        if not self.running and self.outcome is not None:
            return self.outcome.learning
        learning = self.learning()
        if learning is None:
            return None
        with self.lock:
            return learning.stats()

    # -- views -----------------------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        node, session = self.node, self.session
        with self.lock:
            events = node.events if node is not None else 0
            last = node.last_time if node is not None else None
            model = self.model_view()
        return {
            "running": self.running, "mode": self.cfg.mode, "strategy": self.cfg.strategy,
            "symbols": list(self.cfg.symbols), "timeframes": [tf for _, tf in self.cfg.markets()],
            "exchange": self.cfg.exchange, "start": self.cfg.start, "end": self.cfg.end,
            "session": None if session is None else asdict(session.status()),
            "events": events, "last_event_time": last, "published": self.published, "error": self.error,
            "summary": self.summary, "model": model, "risk": self.cfg.risk is not None,
            "stop_requested": self.stop_requested,
        }  # fmt: skip

    def snapshot(self) -> dict[str, Any]:
        node = self.node
        if node is None:
            raise DataNotFound("the node has not started yet; retry in a moment")
        with self.lock:
            return asdict(node.snapshot(node.last_time, self.cfg.capital))

    def trades(self) -> list[dict[str, Any]]:
        node = self.node
        if node is None:
            return []
        with self.lock:
            return [{"symbol": s, **_clean(asdict(t))} for s, t in node.engine.trades]

    def risk(self) -> RiskEngine:
        gate = None if self.node is None else self.node.gate
        if not isinstance(gate, RiskEngine):
            raise DataNotFound("the running node has no risk engine; add a [risk] table to its run configuration")
        return gate

    def risk_state(self) -> dict[str, Any]:
        engine = self.risk()
        with self.lock:
            return {**engine.status(), "audit": None if engine.audit.path is None else str(engine.audit.path),
                    "entries": list(engine.audit.entries)}  # fmt: skip

    def reset(self, body: ResetIn) -> dict[str, Any]:
        """The engine's explicit reset (audited before it acts) of one rule or of every active trip."""
        engine = self.risk()
        with self.lock:
            if not self.running and engine.audit.path is not None and not self._reopened:
                engine.audit = AuditLog(engine.audit.path)  # the run closed its log: reopen it so the reset is on disk
                self._reopened = True
            rules = [body.rule] if body.rule else sorted({r for r, _ in engine.trips})
            if not rules:
                raise UserInputError("risk reset: no active trip; the engine is ACTIVE")
            for rule in rules:
                engine.reset(rule, body.symbol, by=body.by, reason=body.reason)
            self._trips = {(t["rule"], t["symbol"]) for t in engine.status()["trips"]}
        state = self.risk_state()
        self._send("breaker", {"event": "reset", "rules": rules, "by": body.by, "reason": body.reason,
                               "state": state["state"]})  # fmt: skip
        return state


class RuntimeManager:
    """The one node of the server. ``clock_factory`` / ``sleep``: the replay session's pacing (tests inject a
    simulated clock; None: the wall clock)."""

    def __init__(self, settings: Settings, publish: Publish) -> None:
        self.settings, self.publish = settings, publish
        self.clock_factory: Callable[[], Clock] | None = None
        self.sleep: Sleeper | None = None
        self._lock = threading.Lock()
        self.current: RuntimeRun | None = None

    def start(self, cfg: RunConfig) -> RuntimeRun:
        from pivotal.services import run as service

        with self._lock:
            if self.current is not None and self.current.running:
                raise HTTPException(409, "a runtime node is already running; stop it first (POST /api/runtime/stop)")
            settings = self.settings if cfg.input is None or cfg.models else None
            prepared = service.prepare(cfg.request(), settings)  # bad input: 400 now, before any thread
            run = RuntimeRun(cfg, self.publish)
            clock = self.clock_factory() if self.clock_factory is not None else None
            run.thread = threading.Thread(target=run.play, args=(prepared, clock, self.sleep), name="pivotal-runtime",
                                          daemon=True)  # fmt: skip
            self.current = run
            markets = {"symbols": list(cfg.symbols), "timeframes": [tf for _, tf in cfg.markets()]}
            self.publish("run_started", {"mode": cfg.mode, "strategy": cfg.strategy, "exchange": cfg.exchange, **markets})
            run.thread.start()
        return run

    def get(self) -> RuntimeRun:
        if self.current is None:
            raise DataNotFound("no runtime node; start one with POST /api/runtime/start")
        return self.current

    def session(self) -> ReplaySession:
        run = self.get()
        if run.session is None:
            if run.cfg.mode == "paper":
                raise HTTPException(409, "a paper run follows the exchange's clock: it cannot be paused, sought or "
                                         "sped up; stop it with POST /api/runtime/stop")  # fmt: skip
            if run.cfg.mode != "replay" and run.cfg.risk is None:
                raise HTTPException(409, f"the {run.cfg.mode} run has no replay session to control; it runs to its end")
            raise HTTPException(409, "the replay session has not started yet; retry in a moment")
        return run.session

    def stop(self, timeout: float = 30.0) -> RuntimeRun:
        """Stop the current run's replay; the node finishes (``run_finished`` on the WebSocket). A paper run's feed
        is stopped at once, so it ends even when no bar arrives (the status says ``stop_requested`` until it has)."""
        run = self.get()
        if run.session is not None:
            run.session.stop()
        elif run.cfg.mode == "paper":
            run.stop_feed()
            timeout = min(timeout, 5.0)
        elif run.running:
            raise HTTPException(409, "the run has no replay session to stop yet; retry in a moment")
        if run.thread is not None:
            run.thread.join(timeout)
        return run

    def shutdown(self, timeout: float = 10.0) -> None:
        run = self.current
        if run is not None and run.cfg.mode == "paper":
            run.stop_feed()
        if run is not None and run.session is not None:
            run.session.stop()
        if run is not None and run.thread is not None:
            run.thread.join(timeout)


def mount_runtime(app: FastAPI, hub: Hub, settings: Settings) -> RuntimeManager:
    """Add the runtime and risk routes to ``app`` (the token middleware of ``create_app`` covers their POSTs)."""
    manager = RuntimeManager(settings, hub.publish)
    app.state.runtime = manager

    def _control(action: Callable[[ReplaySession], None]) -> dict[str, Any]:
        action(manager.session())
        return manager.get().status()

    config_body = Body(..., description="a run configuration: the keys of `pivotal run`'s TOML")

    @app.post("/api/runtime/start", status_code=202)
    def runtime_start(body: dict[str, Any] = config_body) -> dict[str, Any]:
        """Start a node (replay, backtest, or paper on an exchange's live feed with simulated fills) in the server;
        409 while one runs. Events go to the WebSocket."""
        return manager.start(config_from_body(body, settings)).status()

    @app.get("/api/runtime/status")
    def runtime_status() -> dict[str, Any]:
        """Mode, the replay session's status, events processed, the last event's time, the final summary."""
        return manager.get().status()

    @app.post("/api/runtime/pause")
    def runtime_pause() -> dict[str, Any]:
        return _control(lambda s: s.pause())

    @app.post("/api/runtime/resume")
    def runtime_resume() -> dict[str, Any]:
        return _control(lambda s: s.resume())

    @app.post("/api/runtime/seek")
    def runtime_seek(body: SeekIn) -> dict[str, Any]:
        return _control(lambda s: s.seek(body.t))

    @app.post("/api/runtime/speed")
    def runtime_speed(body: SpeedIn) -> dict[str, Any]:
        return _control(lambda s: s.set_speed(body.speed))

    @app.post("/api/runtime/stop")
    def runtime_stop() -> dict[str, Any]:
        """Stop the replay; the node finishes (``run_finished`` on the WebSocket)."""
        return manager.stop().status()

    @app.get("/api/runtime/positions")
    def runtime_positions() -> dict[str, Any]:
        snap = manager.get().snapshot()
        return {"time": snap["time"], "positions": snap["positions"]}

    @app.get("/api/runtime/orders")
    def runtime_orders() -> dict[str, Any]:
        snap = manager.get().snapshot()
        return {"time": snap["time"], "open_orders": snap["open_orders"]}

    @app.get("/api/runtime/pnl")
    def runtime_pnl() -> dict[str, Any]:
        snap = manager.get().snapshot()
        keep = ("time", "events", "equity", "realised_pnl", "unrealised_pnl", "trades", "feed_lag_ms")
        return {k: snap[k] for k in keep}

    @app.get("/api/runtime/trades")
    def runtime_trades() -> list[dict[str, Any]]:
        """The node's closed trades so far (after the end: the run's trade list)."""
        return manager.get().trades()

    @app.get("/api/risk/state")
    def risk_state() -> dict[str, Any]:
        """The running node's risk engine: state, reason, since, active trips, the audit log's entries."""
        return manager.get().risk_state()

    @app.post("/api/risk/reset")
    def risk_reset(body: ResetIn) -> dict[str, Any]:
        """Reset a breaker (or every active trip) of the node's risk engine; audited (who and why)."""
        return manager.get().reset(body)

    return manager


__all__ = ["RuntimeManager", "RuntimeRun", "config_from_body", "model_strategy", "mount_runtime"]
