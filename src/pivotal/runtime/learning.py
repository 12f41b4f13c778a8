"""Live learning in a running node: confirmed pivots and trend-line verdicts become training samples on a durable queue,
a trainer process fine-tunes the model out of the serving process, and promoted versions are hot-swapped in.

``LiveLearning(root, strategy, engine, history)`` attaches to a ``TradingNode`` that has a ``DataEngine`` and trades a
``ModelStrategy`` of checkpoint predictors (``services.model_strategy.CheckpointPredictor``). Per model (by name):

- **Serving and history.** The predictor's model is replaced by an adapter over a ``models.serving.ServingModel``
  (``_ServedModel``): each prediction is made by the version serving at that instant, and recorded in the inference
  history with that version, the timeframe and an ``InputRef`` of the input the predictor built (captured by wrapping
  its ``inputs`` source; a predictor without one is given ``DataEngine.input_at``).
- **Outcomes.** One ``training.outcomes.OutcomeRecorder`` per symbol: each prediction is tracked, each closed bar of
  the model's timeframe resolves the horizon and pivot outcomes it makes known (stored with the history).
- **Live pivot samples.** Every pivot the data engine confirms on a traded symbol is offered to a
  ``training.live_samples.LivePivotSampler`` (L2 on 1s/1m by default; spacing, check interval and de-duplication are
  the sampler's); each training it releases is encoded — the model's input as of the pivot bar's close, cut from the
  engine's series by ``input_at`` exactly as inference cuts it — and put on the queue (``queue.from_live_pivot``: the
  reference's action target, SELL at a high, BUY at a low).
- **Trend-line verdicts.** A ``training.trendline_validation.TrendLineValidator`` per symbol judges the predictions
  against each new L2 trend line; the direction verdict of each (prediction, line) becomes a sample whose action
  target is what the line showed (up BUY, down SELL, flat HOLD), refuted (wrong) ones queued first (the reference's
  priority). Verdicts are stored as annotations when an ``AnnotationRepository`` is given.
- **Outcome samples.** Each resolved pivot outcome of ``outcome_levels`` (default level 2) becomes a pivot-head
  sample (``queue.from_pivot_outcome``): the prediction's own input, rebuilt from the engine as of its as-of time and
  checked against the hash the history recorded, with the truth that settled it; queued when the outcome becomes
  known, refuted ones first. Without them the live samples train the action head only and the pivot heads drift as
  the shared trunk moves under them (``docs/reports/frozen-vs-live.md``).
- **Hot swap.** A ``services.online.ServingWatcher`` is checked from the data engine's listener, i.e. after an event
  is processed and before its bar reaches the strategy: a promoted version is loaded and swapped in *between* two
  bars (the swap itself is atomic; a prediction never mixes versions). Checks are at most every ``poll_s`` wall
  seconds (0: every event, deterministic in tests).
- **Trainer.** ``start()`` launches ``python -m pivotal.training.online`` per enabled model (the trainer process of
  ``training.online``; by default with experience replay from a reservoir of 4,096 past samples, one replayed per
  fresh sample, at learning rate 1e-4), ``close()`` stops it (SIGTERM: the step in progress finishes). With a cluster address
  (``TrainerOptions.cluster``: ``ray://host:port``, ``auto``, or ``local``) the same trainer runs as a Ray actor
  (``training.online_ray``) on the same queue and checkpoint root instead. Serving never waits for either: the node
  only appends to the queue and, at a check, reads the promotion log.

``enable_live_training`` (``LiveLearningConfig.enabled``) defaults to true; it is turned off per run (``enabled=
False``) or per model (``disabled_models``): such a model still serves, records its predictions and outcomes and
follows promotions, but queues nothing and has no trainer. ``stats()`` reports per model: pivots trained per
timeframe, last training time, the trainer's last loss, samples queued, swaps, the serving version and staleness per
symbol (``services.online.staleness`` at the node's clock), trend-line accuracy and the trainer's state.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pivotal.config import Settings
from pivotal.core.errors import UserInputError
from pivotal.core.events import BarClosed, MarketEvent
from pivotal.core.vocabulary import ACTIONS
from pivotal.data.state.annotations import AnnotationRepository
from pivotal.features.assemble import PredictionHistory
from pivotal.features.completeness import check_completeness
from pivotal.features.encoding import encode
from pivotal.features.input_spec import InputSpec
from pivotal.features.model_io import BaseDataInput, ModelOutput
from pivotal.models.output_store import InferenceHistory, PredictionContext, input_reference
from pivotal.models.serving import Served, ServingModel
from pivotal.risk.engine import RiskEngine
from pivotal.runtime.data_engine import DataEngine, Emitted
from pivotal.services.model_strategy import CheckpointPredictor
from pivotal.services.online import ServingWatcher, feed_risk, models_root, serving_info, staleness
from pivotal.strategies.model_strategy import ModelStrategy
from pivotal.training.live_samples import LivePivotConfig, LivePivotSample, LivePivotSampler
from pivotal.training.online import OnlineConfig, read_metrics
from pivotal.training.outcomes import HORIZONS_MS, Outcome, OutcomeRecorder, store_outcomes
from pivotal.training.promotion import ONLINE_DIR, GateConfig, PromotionLog
from pivotal.training.queue import QueuedSample, SampleQueue, from_live_pivot, from_pivot_outcome, open_queue
from pivotal.training.trendline_validation import TrendLineValidator, TrendValidationConfig, TrendVerdict, store_verdicts

if TYPE_CHECKING:
    from pivotal.training.online_ray import RayTrainer

__all__ = ["LiveLearning", "LiveLearningConfig", "TrainerOptions", "default_queue_url"]

_LINE_ACTION = {"up": "BUY", "down": "SELL", "flat": "HOLD"}
OUTCOME_LEVELS: tuple[int, ...] = (2,)  # the level the live pivot samples and the frozen-vs-live report are about


@dataclass(frozen=True)
class TrainerOptions:
    """The trainer's options (``python -m pivotal.training.online``). ``threads``: its torch threads; ``cpus``: CPU
    ids it is pinned to (empty: any); ``cluster``: a Ray address (``ray://host:port``, ``auto``, ``local``) to run it
    as a Ray actor there instead of a local process (None: the process); ``replay``, ``replay_ratio``, ``lr``:
    experience replay and the fine-tuning rate (``training.online.OnlineConfig``)."""

    batch_size: int = 64
    steps: int = 2
    alpha: float = 0.05
    min_samples: int = 20
    block_ms: int = 1_000
    nice: int = 10
    idle_exit_s: float | None = None
    tensorboard: Path | None = None
    threads: int = 1
    cpus: tuple[int, ...] = ()
    cluster: str | None = None
    replay: int = 4096  # live samples come in regime-long runs: fine-tuning on them alone forgets the rest
    replay_ratio: float = 1.0
    lr: float | None = 1e-4  # a tenth of the CNN's training rate (docs/reports/frozen-vs-live.md)

    def argv(self) -> list[str]:
        out = ["--batch-size", str(self.batch_size), "--steps", str(self.steps), "--alpha", str(self.alpha),
               "--min-samples", str(self.min_samples), "--block-ms", str(self.block_ms), "--nice", str(self.nice),
               "--threads", str(self.threads)]  # fmt: skip
        if self.cpus:
            out += ["--cpus", ",".join(str(c) for c in self.cpus)]
        if self.idle_exit_s is not None:
            out += ["--idle-exit-s", str(self.idle_exit_s)]
        if self.tensorboard is not None:
            out += ["--tensorboard", str(self.tensorboard)]
        if self.replay:
            out += ["--replay", str(self.replay), "--replay-ratio", str(self.replay_ratio)]
        if self.lr is not None:
            out += ["--lr", str(self.lr)]
        return out

    def online_config(self) -> OnlineConfig:
        """The same options for an in-process or Ray ``OnlineTrainer``."""
        return OnlineConfig(self.batch_size, self.steps, self.block_ms, gate=GateConfig(self.alpha, self.min_samples),
                            log_dir=self.tensorboard, replay=self.replay, replay_ratio=self.replay_ratio, lr=self.lr)  # fmt: skip


@dataclass(frozen=True)
class LiveLearningConfig:
    """``enabled``: enable_live_training for the run (default true); ``disabled_models``: model names it is off for;
    ``pivots``: the live pivot rules; ``trend``: trend-line validation (None: off); ``outcome_levels``: pivot levels
    whose resolved outcomes are queued as pivot-head samples (empty: none); ``queue_url``: the queue (None:
    ``default_queue_url``; ``{name}`` is replaced by the model name); ``start_trainer``: launch the trainer process
    (False: another process or a test consumes the queue); ``poll_s``: wall seconds between promotion checks."""

    enabled: bool = True
    disabled_models: tuple[str, ...] = ()
    pivots: LivePivotConfig = field(default_factory=LivePivotConfig)
    trend: TrendValidationConfig | None = field(default_factory=TrendValidationConfig)
    outcome_levels: tuple[int, ...] = OUTCOME_LEVELS
    horizons: tuple[int, ...] = HORIZONS_MS
    queue_url: str | None = None
    start_trainer: bool = True
    trainer: TrainerOptions = field(default_factory=TrainerOptions)
    poll_s: float = 0.5

    def trains(self, name: str) -> bool:
        return self.enabled and name not in self.disabled_models


def default_queue_url(root: Path, name: str) -> str:
    """The embedded queue of model ``name``: ``sqlite:<root>/.online/<name>/queue.sqlite``."""
    return f"sqlite:{Path(root) / ONLINE_DIR / name / 'queue.sqlite'}"


class _BufferedOutcomes(OutcomeRecorder):
    """``OutcomeRecorder`` whose outcomes are stored ``store_every`` at a time (and at ``store``), not at each bar: one
    DuckDB transaction per bar costs more than the prediction itself, and serving must not wait for storage."""

    def __init__(self, *args: Any, store_every: int = 1000, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.store_every = store_every
        self.pending: list[Outcome] = []
        self.resolved = 0

    def on_bar(self, ts: int, open: float, high: float, low: float, close: float) -> list[Outcome]:
        close_ts = int(ts) + self._tf
        out = self.horizons.on_bar(close_ts, close) + self.pivots.on_bar(open, high, low, close, close_ts)
        out.sort(key=Outcome.sort_key)
        self.resolved += len(out)
        self.pending += out
        if len(self.pending) >= self.store_every:
            self.store()
        return out

    def store(self) -> int:
        """Write the pending outcomes (their predictions first); the number newly stored."""
        if not self.pending:
            return 0
        pending, self.pending = self.pending, []
        self.history.flush()  # an outcome's prediction is stored before the outcome
        added = store_outcomes(self.history.rows, pending)
        self.stored += added
        return added


class _ServedModel:
    """The adapter that puts a ``ServingModel`` where a ``CheckpointPredictor`` keeps its model: ``predict`` goes to
    the version serving now and reports (served, encoded) to ``on_served``; anything else reads the serving model."""

    def __init__(self, serving: ServingModel, on_served: Callable[[Served], None]) -> None:
        self.serving = serving
        self.on_served = on_served
        self.name = str(serving.model.name)

    def predict(self, encoded: Any, symbol: str = "", timestamp: int = 0, **_: Any) -> ModelOutput:
        served = self.serving.predict(encoded, symbol, timestamp)
        self.on_served(served)
        return served.output

    def __getattr__(self, item: str) -> Any:
        return getattr(self.serving.model, item)


@dataclass
class _Counts:
    predictions: int = 0
    pivot_samples: int = 0
    trend_samples: int = 0
    outcome_samples: int = 0
    incomplete: int = 0
    input_mismatch: int = 0
    verdicts: int = 0
    annotations: int = 0


class _Model:
    """The learning state of one model (one predictor)."""

    def __init__(self, owner: LiveLearning, predictor: CheckpointPredictor) -> None:
        cfg = owner.config
        self.owner = owner
        self.predictor = predictor
        self.name = predictor.name
        self.trains = cfg.trains(self.name)
        log = PromotionLog(owner.root, self.name)
        if log.serving() is None:  # the version this run serves is the lineage's start (the trainer agrees)
            log.promote(predictor.info.id, reason="initial serving version: the checkpoint the run loaded")
        self.serving = ServingModel(predictor.model, predictor.info.id)
        self.watcher = ServingWatcher(owner.root, self.name, self.serving)
        self.versions: Counter[str] = Counter()
        self.counts = _Counts()
        self.samplers: dict[str, LivePivotSampler] = {}
        self.recorders: dict[str, _BufferedOutcomes] = {}
        self.validators: dict[str, TrendLineValidator] = {}
        self.specs: dict[str, InputSpec] = {}
        self.timeframes: dict[str, str] = {}
        self.levels: dict[str, int] = {}
        self._input: tuple[str, int, BaseDataInput, InputSpec] | None = None
        url = cfg.queue_url.replace("{name}", self.name) if cfg.queue_url else default_queue_url(owner.root, self.name)
        self.queue_url = url
        self.queue: SampleQueue | None = None
        if self.trains:
            if url.startswith("sqlite:"):
                Path(url.removeprefix("sqlite:")).parent.mkdir(parents=True, exist_ok=True)
            self.queue = open_queue(url)
        self.process: subprocess.Popen[bytes] | None = None
        self.actor: RayTrainer | None = None
        self.trainer_log: Path | None = None
        source = predictor.inputs
        engine = owner.engine

        def inputs(symbol: str, t: int, spec: InputSpec, history: PredictionHistory | None) -> BaseDataInput | None:
            got = source(symbol, t, spec, history) if source is not None else engine.input_at(symbol, t, history, spec)
            if got is not None:
                self._input = (symbol, t, got, spec)
            return got

        predictor.inputs = inputs
        predictor.model = _ServedModel(self.serving, self._served)
        self.swap_check()  # a version promoted before this run serves from its first bar

    # -- per symbol ----------------------------------------------------------------------------------------------------
    def _symbol(self, symbol: str) -> None:
        if symbol in self.specs:
            return
        cfg = self.owner.config
        run = self.predictor.run_spec(symbol)
        spec = self.specs[symbol] = self.predictor.input_spec(symbol)
        tf = self.timeframes[symbol] = run.timeframes[0]
        self.levels[symbol] = run.levels
        history = self.owner.history
        self.recorders[symbol] = _BufferedOutcomes(history, symbol, tf, cfg.horizons, spec.pivot_params)
        if cfg.trend is not None:
            self.validators[symbol] = TrendLineValidator(symbol, tf, spec.pivot_params, cfg.trend)
        if self.trains:
            self.samplers[symbol] = LivePivotSampler(symbol, cfg.pivots)

    # -- serving ---------------------------------------------------------------------------------------------------------
    def _served(self, served: Served) -> None:
        """A prediction was made (inside the strategy's bar): history, outcome tracking, trend validation."""
        captured, self._input = self._input, None
        if captured is None:  # pragma: no cover - the predictor always builds its input through ``inputs``
            raise RuntimeError(f"{self.name}: a prediction without a captured input")
        symbol, _, inp, spec = captured
        self._symbol(symbol)
        self.versions[served.version] += 1
        self.counts.predictions += 1
        context = PredictionContext(served.version, self.timeframes[symbol], input_reference(inp, spec))
        prediction = self.recorders[symbol].on_prediction(served.output, context)
        validator = self.validators.get(symbol)
        if validator is not None:
            validator.add(prediction)

    def swap_check(self) -> str | None:
        try:
            version = self.watcher.check()
        except Exception as exc:  # a bad checkpoint must not stop serving: keep the old version, report it
            self.watcher.errors.append(f"{type(exc).__name__}: {exc}")
            return None
        if version is not None:
            self.owner.on_swap(self, version)
        return version

    # -- the engine's events -----------------------------------------------------------------------------------------------
    def on_bar(self, symbol: str, timeframe: str, ts: int, o: float, h: float, lo: float, c: float) -> list[QueuedSample]:
        """A closed bar: outcomes resolve; trend lines judge; the samples to queue: trend verdicts, then pivot
        outcomes of ``outcome_levels``, refuted (wrong) ones first in each."""
        if self.timeframes.get(symbol) != timeframe:
            return []
        outcomes = self.recorders[symbol].on_bar(ts, o, h, lo, c)
        out: list[QueuedSample] = []
        validator = self.validators.get(symbol)
        verdicts = validator.on_bar(ts, o, h, lo, c) if validator is not None else []
        if verdicts:
            self.counts.verdicts += len(verdicts)
            if self.owner.annotations is not None:
                self.counts.annotations += store_verdicts(self.owner.annotations, verdicts)
            if self.trains:
                chosen = sorted((v for v in verdicts if v.aspect == "direction"), key=lambda v: v.validated)
                out += [s for s in (self._trend_sample(v) for v in chosen) if s is not None]
        wanted = {f"pivot_L{level}" for level in self.owner.config.outcome_levels}
        if self.trains and wanted and outcomes:
            chosen_outcomes = sorted((x for x in outcomes if x.label.target in wanted and x.label.direction), key=lambda x: x.hit)
            out += [s for s in (self._outcome_sample(x) for x in chosen_outcomes) if s is not None]
        return out

    def _encoded(self, symbol: str, as_of: int) -> tuple[Any, Any] | None:
        spec = self.specs[symbol]
        inp = self.owner.engine.input_at(symbol, as_of, None, spec)
        if not check_completeness(inp, spec).ready:
            self.counts.incomplete += 1
            return None
        enc = encode(inp, spec)
        return enc.windows, enc.context

    def _outcome_sample(self, outcome: Outcome) -> QueuedSample | None:
        """The prediction's own input, rebuilt from the engine as of its as-of time, checked against the hash the
        history recorded (what the model saw is what it learns from), with the outcome's truth as the target."""
        spec = self.specs[outcome.symbol]
        inp = self.owner.engine.input_at(outcome.symbol, outcome.as_of, None, spec)
        if input_reference(inp, spec).digest != outcome.input.digest:
            self.counts.input_mismatch += 1
            return None
        if not check_completeness(inp, spec).ready:
            self.counts.incomplete += 1
            return None
        enc = encode(inp, spec)
        return from_pivot_outcome(outcome, enc.windows, enc.context, self.levels[outcome.symbol])

    def _trend_sample(self, v: TrendVerdict) -> QueuedSample | None:
        o = v.outcome
        got = self._encoded(o.symbol, o.as_of)
        if got is None:
            return None
        line = v.line
        sample = LivePivotSample(o.symbol, o.timeframe, line.level, line.kind, o.as_of, o.as_of, o.known_at,
                                 float(line.v2), 0, (), 0)  # fmt: skip
        queued = from_live_pivot(sample, got[0], got[1], self.levels[o.symbol])
        queued.arrays["action"][...] = ACTIONS.index(_LINE_ACTION[line.direction])
        key = f"trend|{o.symbol}|{o.timeframe}|L{line.level}{line.kind}|{o.as_of}"
        return QueuedSample(key, queued.symbol, queued.timeframe, queued.as_of, queued.known_at, queued.arrays)

    def on_pivots(self, emitted: Emitted, markets: Mapping[str, str]) -> None:
        for sp in emitted.pivots:
            symbol, timeframe = sp.key
            if symbol in markets:
                self._symbol(symbol)
                sampler = self.samplers.get(symbol)
                if sampler is not None:
                    sampler.offer(timeframe, sp.pivot)

    def poll(self, now: int) -> list[QueuedSample]:
        out: list[QueuedSample] = []
        for symbol, sampler in self.samplers.items():
            for training in sampler.poll(now):
                for s in training.samples:
                    got = self._encoded(symbol, s.as_of)
                    if got is not None:
                        out.append(from_live_pivot(s, got[0], got[1], self.levels[symbol]))
        return out

    def put(self, samples: Sequence[QueuedSample]) -> None:
        if samples and self.queue is not None:
            self.queue.put(samples)
            self.counts.pivot_samples += sum(not s.key.startswith(("trend|", "outcome|")) for s in samples)
            self.counts.trend_samples += sum(s.key.startswith("trend|") for s in samples)
            self.counts.outcome_samples += sum(s.key.startswith("outcome|") for s in samples)

    # -- trainer -----------------------------------------------------------------------------------------------------------
    def start_trainer(self) -> None:
        if not self.trains or self.process is not None or self.actor is not None:
            return
        opts = self.owner.config.trainer
        if opts.cluster:
            from pivotal.training.online_ray import RayTrainer

            self.actor = RayTrainer(opts.cluster, self.owner.root, self.name, self.queue_url, opts.online_config(),
                                    threads=opts.threads, idle_exit_s=opts.idle_exit_s)  # fmt: skip
            return
        argv = [sys.executable, "-m", "pivotal.training.online", "--root", str(self.owner.root), "--name", self.name,
                "--queue", self.queue_url, *opts.argv()]  # fmt: skip
        self.trainer_log = Path(self.owner.root) / ONLINE_DIR / self.name / "trainer.log"
        self.trainer_log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.trainer_log, "ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=_child_env())

    def trainer_running(self) -> bool:
        if self.actor is not None:
            return self.actor.running()
        return self.process is not None and self.process.poll() is None

    def stop_trainer(self, timeout_s: float = 30.0) -> int | None:
        actor, self.actor = self.actor, None
        if actor is not None:
            return actor.stop(timeout_s)
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def stats(self, now: int | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "enable_live_training": self.trains,
            "serving_version": self.serving.version,
            "swaps": self.serving.swaps,
            "predictions_by_version": dict(self.versions),
            **asdict(self.counts),
            "queue": self.queue_url if self.trains else None,
            "trainer": "ray" if self.owner.config.trainer.cluster else "process",
            "trainer_running": self.trainer_running(),
            "watcher_errors": list(self.watcher.errors),
        }
        metrics = read_metrics(self.owner.root, self.name, last=1)
        last = metrics[-1] if metrics else None
        out["last_training_loss"] = None if last is None else last.get("loss_after")
        out["last_trainer_version"] = None if last is None else last.get("version")
        if last is not None:
            for sampler in self.samplers.values():
                for tf in sampler.config.timeframes:
                    sampler.report_loss(tf, float(last["loss_after"]))
        out["pivots"] = {symbol: s.stats() for symbol, s in self.samplers.items()}
        out["trend_lines"] = {symbol: v.stats() for symbol, v in self.validators.items()}
        out["outcomes_resolved"] = {symbol: r.resolved for symbol, r in self.recorders.items()}
        out["outcomes_stored"] = {symbol: r.stored for symbol, r in self.recorders.items()}
        report = staleness(self.owner.root, self.name, now)
        out["staleness_ms"] = report.staleness_ms
        out["trained_through"] = report.trained_through
        return out


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2])  # the trainer imports this same package
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


class LiveLearning:
    """See the module doc. ``root``: the checkpoint root (``<data_dir>/models``) the predictors' checkpoints live in;
    ``history``: where predictions and outcomes are stored; ``annotations``: where trend verdicts are stored (None:
    not stored)."""

    def __init__(
        self,
        root: Path,
        strategy: ModelStrategy,
        engine: DataEngine,
        history: InferenceHistory,
        config: LiveLearningConfig = LiveLearningConfig(),
        annotations: AnnotationRepository | None = None,
    ) -> None:
        self.root = Path(root)
        self.config = config
        self.engine = engine
        self.history = history
        self.annotations = annotations
        self.node_gate: RiskEngine | None = None
        self.markets: dict[str, str] = {}
        given = list(strategy.predictors)
        predictors = [p for p in given if isinstance(p, CheckpointPredictor)]
        bad = [type(p).__name__ for p in given if not isinstance(p, CheckpointPredictor)]
        if bad or not predictors:
            raise UserInputError(f"live learning needs checkpoint predictors (a model strategy of [[models]]); got {bad}")
        names = [p.name for p in predictors]
        if len(set(names)) != len(names):
            raise UserInputError(f"live learning trains one lineage per model name; the run has {names} twice")
        for p in predictors:
            serving_info(self.root, p.name)  # the checkpoint must be under root: one line naming what exists if not
        self._last_check = -float("inf")
        self._owned_store: Any = None
        self.swaps: list[tuple[int, str, str]] = []  # (node time: -1 before the first event, model, version)
        self.models = [_Model(self, p) for p in predictors]
        self.started = False
        engine.subscribe(self._on_event)

    # -- wiring ------------------------------------------------------------------------------------------------------------
    def attach(self, node: Any) -> LiveLearning:
        """Bind to the node (its markets and, when it is a ``RiskEngine``, its gate for the stale-model breaker) and
        start the trainers (unless the config says not to). Usable as the runner's ``on_start``."""
        if node.data_engine is not self.engine:
            raise UserInputError("live learning: attach it to the node whose data_engine it listens to")
        self.markets = dict(node.markets)
        for m in self.models:
            for symbol in self.markets:
                m._symbol(symbol)  # outcome and trend trackers see every bar from the first event on
        self.node_gate = node.gate if isinstance(node.gate, RiskEngine) else None
        if self.node_gate is not None:
            for m in self.models:
                feed_risk(self.node_gate, staleness(self.root, m.name, self.engine.now))
        if self.config.start_trainer:
            self.start()
        return self

    def start(self) -> None:
        for m in self.models:
            m.start_trainer()
        self.started = True

    def on_swap(self, model: _Model, version: str) -> None:
        self.swaps.append((-1 if self.engine.now is None else int(self.engine.now), model.name, version))
        if self.node_gate is not None:
            feed_risk(self.node_gate, staleness(self.root, model.name, self.engine.now))

    # -- the listener ------------------------------------------------------------------------------------------------------
    def _on_event(self, event: MarketEvent | None, emitted: Emitted) -> None:
        now = event.known_at if event is not None else self.engine.now
        bars = list(emitted.bars)
        if isinstance(event, BarClosed):
            bars.insert(0, event)
        for m in self.models:
            queued: list[QueuedSample] = []
            for b in bars:
                bar = b.bar
                if bar.symbol in self.markets and bar.symbol in m.specs:
                    queued += m.on_bar(bar.symbol, bar.timeframe, bar.ts, bar.open, bar.high, bar.low, bar.close)
            if m.trains:
                if emitted.pivots:
                    m.on_pivots(emitted, self.markets)
                if now is not None:
                    queued += m.poll(int(now))
                m.put(queued)
        wall = time.monotonic()
        if self.config.poll_s <= 0 or wall - self._last_check >= self.config.poll_s:
            self._last_check = wall
            for m in self.models:
                m.swap_check()

    def check_swaps(self) -> list[str]:
        """Check every model's promotion log now (the versions swapped in)."""
        return [v for v in (m.swap_check() for m in self.models) if v is not None]

    # -- end ---------------------------------------------------------------------------------------------------------------
    def flush(self) -> None:
        """Release every waiting pivot sample (end of a run) and write the buffered history."""
        now = self.engine.now
        if now is not None:
            later = int(now) + self.config.pivots.min_spacing_ms + self.config.pivots.check_interval_ms
            for m in self.models:
                if m.trains:
                    m.put(m.poll(later))
        for m in self.models:
            for recorder in m.recorders.values():
                recorder.store()
        self.history.flush()

    def close(self, timeout_s: float = 30.0) -> dict[str, int | None]:
        """Flush, stop the trainers (their return codes), close the queues (and the store ``for_run`` opened)."""
        self.flush()
        codes = {m.name: m.stop_trainer(timeout_s) for m in self.models}
        for m in self.models:
            if m.queue is not None:
                m.queue.close()
                m.queue = None
        if self._owned_store is not None:
            self._owned_store.close()
            self._owned_store = None
        return codes

    @classmethod
    def for_run(
        cls, settings: Settings, strategy: ModelStrategy, engine: DataEngine, config: LiveLearningConfig = LiveLearningConfig()
    ) -> LiveLearning:
        """What ``pivotal run`` needs: the checkpoint root and the inference history of ``settings`` (the state store,
        opened here and closed by ``close``)."""
        from pivotal.data.backends import open_store

        store = open_store(settings)
        try:
            learning = cls(models_root(settings), strategy, engine, InferenceHistory(store, flush_every=500), config)
        except BaseException:
            store.close()
            raise
        learning._owned_store = store
        return learning

    def stats(self) -> dict[str, Any]:
        """Per model name: see ``_Model.stats`` (staleness at the node's clock)."""
        return {m.name: m.stats(self.engine.now) for m in self.models}

    def model(self, name: str) -> _Model:
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(name)
