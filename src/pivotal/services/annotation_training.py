"""Use cases: train a model on chart annotations and replay a model against them (the annotation page, the HTTP API).

- ``build_samples``: the manual annotations matching a filter as training samples (``training.annotation_samples``:
  entry and exit of each trade, the input as of each bar's close, the label known at the exit's close), encoded for
  one model's input.
- ``TrainingJob``: fine-tune a checkpoint (its best, or ``NAME/ID``) or train a fresh CNN / Transformer on those
  samples with ``training.trainer.Trainer``; progress after every step (step, loss, samples) goes to ``publish``;
  ``stop`` ends it after the step running; the result is a new checkpoint of the model (``services.train``'s
  manager), whose ``extra`` says it was trained on annotations.
- ``replay``: the model's action at every bar of [start, end) of one series, each from the input as of that bar's
  close (built as ``pivotal predict`` builds it), next to the annotated position target of that time, with accuracy,
  precision, recall and F1 per class and the confusion matrix (``training.evaluation.classification_metrics``).
- ``ReplaySession``: the same predictions played to ``publish`` one bar at a time at 1x/2x/5x/10x (1x = one bar
  per ``bar_interval_s``, one second by default), with pause, resume, step and stop; its ``result`` holds the
  predictions played so far and their metrics.
- ``test_cases``: each annotation's entry and exit samples with their market state, as JSON test fixtures.

Threads: a job and a session each run in their own daemon thread; control calls are thread-safe.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from pivotal.config import Settings
from pivotal.core.errors import DataNotFound, PivotalError, UserInputError
from pivotal.core.timeframes import timeframe_ms
from pivotal.core.vocabulary import ACTIONS
from pivotal.data.backends import open_store
from pivotal.data.state.annotations import Annotation, AnnotationFilter, AnnotationRepository
from pivotal.features.assemble import PreparedSeries, build_input_from_series
from pivotal.features.completeness import check_completeness
from pivotal.features.encoding import encode
from pivotal.features.model_io import WindowKey
from pivotal.models.supervised import SupervisedModel
from pivotal.services.predict import spec_for
from pivotal.services.train import checkpoints
from pivotal.training.annotation_samples import (
    AnnotationSample,
    annotation_samples,
    concat,
    sample_set,
    target_actions,
    to_test_case,
)
from pivotal.training.checkpoints import CheckpointInfo
from pivotal.training.dataset import SampleSet, prepare
from pivotal.training.evaluation import classification_metrics
from pivotal.training.pipeline import RunSpec, load_series, new_supervised
from pivotal.training.trainer import TrainConfig, Trainer, split_train_val

Publish = Callable[[str, Any], Any]
MODEL_KINDS = ("cnn", "transformer")
SPEEDS = (1, 2, 5, 10)
MAX_REPLAY_BARS = 5000
MAX_TEST_CASES = 1000


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def manual(where: AnnotationFilter) -> AnnotationFilter:
    """Only manual annotations are trades to learn from (trend-line verdicts judge predictions; they are no trades)."""
    return replace(where, source="manual")


@contextmanager
def _store(settings: Settings) -> Iterator[Any]:
    store = open_store(settings)
    try:
        yield store
    finally:
        store.close()


def load_annotations(settings: Settings, where: AnnotationFilter) -> list[Annotation]:
    with _store(settings) as store:
        return AnnotationRepository(store).query(manual(where))


# ------------------------------------------------------------------------------------------------ samples


@dataclass
class AnnotationData:
    """The samples of some annotations for one model input: the encoded set, the samples kept (row order), those
    dropped (incomplete input) and the annotations left out (no direction or exit)."""

    samples: SampleSet
    kept: list[AnnotationSample]
    dropped: list[tuple[AnnotationSample, str]]
    skipped: list[tuple[str, str]]

    def summary(self) -> dict[str, Any]:
        return {
            "samples": len(self.kept),
            "annotations": len({s.annotation_id for s in self.kept}),
            "dropped": [{"test_case_id": s.test_case_id, "reason": why} for s, why in self.dropped],
            "skipped": [{"id": i, "reason": why} for i, why in self.skipped],
        }


def _prepared(store: Any, spec: RunSpec) -> dict[WindowKey, PreparedSeries]:
    """Every window's whole series, prepared once (``features.assemble``: as predict and training prepare them)."""
    return prepare(load_series(store, spec), spec.input_spec())


def build_samples(settings: Settings, where: AnnotationFilter, spec: RunSpec) -> AnnotationData:
    """The manual annotations matching ``where`` as samples of ``spec``'s input (``spec.symbol`` is replaced by each
    annotation's symbol: one prepared series per symbol)."""
    with _store(settings) as store:
        found = AnnotationRepository(store).query(manual(where))
        samples, skipped = annotation_samples(found)
        if not samples:
            raise UserInputError(
                f"no usable annotation matches the filter ({len(found)} found, {len(skipped)} without direction or exit); "
                "annotate trades with an entry and an exit first"
            )
        sets, kept, dropped = [], [], []
        for symbol in sorted({s.symbol for s in samples}):
            sym_spec = replace(spec, symbol=symbol)
            try:
                series = _prepared(store, sym_spec)
            except ValueError as exc:
                raise UserInputError(str(exc)) from None
            mine = [s for s in samples if s.symbol == symbol]
            got, k, d = sample_set(series, mine, sym_spec.input_spec(), spec.levels)
            sets.append(got)
            kept += k
            dropped += d
    order = sorted(range(len(kept)), key=lambda i: kept[i].as_of)
    return AnnotationData(concat(sets), [kept[i] for i in order], dropped, skipped)


def test_cases(
    settings: Settings, where: AnnotationFilter, exchange: str | None = None, timeframes: Sequence[str] = (),
    candles: int = 100,
) -> list[dict[str, Any]]:  # fmt: skip
    """Every usable annotation matching ``where`` as its entry and exit samples in the realtime format with their
    market state: windows of ``candles`` bars of ``timeframes`` (default: the annotations' own timeframes, finest
    first) from the store of ``exchange``."""
    if not 1 <= candles <= 2000:
        raise UserInputError(f"candles {candles} is out of range; give 1 to 2000 bars per timeframe")
    for tf in timeframes:
        try:
            timeframe_ms(tf)
        except ValueError as exc:
            raise UserInputError(f"timeframes: {exc}") from None
    with _store(settings) as store:
        found = AnnotationRepository(store).query(manual(where))
        samples, _ = annotation_samples(found)
        if len(samples) > 2 * MAX_TEST_CASES:
            raise UserInputError(f"{len(samples) // 2} annotations match; narrow the filter to at most {MAX_TEST_CASES}")
        tfs = tuple(timeframes) or tuple(sorted({s.timeframe for s in samples}, key=timeframe_ms))
        out: list[dict[str, Any]] = []
        for symbol in sorted({s.symbol for s in samples}):
            spec = RunSpec("cnn", exchange or settings.default_exchange, symbol, tfs, window=candles)
            try:
                series = _prepared(store, spec)
            except ValueError as exc:
                raise UserInputError(str(exc)) from None
            out += [to_test_case(series, s, spec.input_spec()) for s in samples if s.symbol == symbol]
    out.sort(key=lambda d: (d["as_of"], d["test_case_id"]))
    return out


# ----------------------------------------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainRequest:
    """What to train: ``model`` is the checkpoint to start from (``NAME`` = its best, ``NAME/ID``) or, with
    ``fresh``, the new model's name (of ``kind``, input ``timeframes`` x ``window``). ``save_as``: the name the
    result is saved under (default: the model's). ``steps_per_epoch``: cap on the optimiser steps of an epoch."""

    model: str
    where: AnnotationFilter = field(default_factory=AnnotationFilter)
    kind: str = "cnn"
    fresh: bool = False
    save_as: str | None = None
    exchange: str | None = None
    timeframes: tuple[str, ...] = ()
    window: int = 100
    epochs: int = 5
    batch_size: int = 32
    seed: int = 0
    threads: int = 1
    steps_per_epoch: int | None = None
    val_fraction: float = 0.25

    def __post_init__(self) -> None:
        if self.kind not in MODEL_KINDS:
            raise UserInputError(f"model kind {self.kind!r} cannot train on annotations; use one of {', '.join(MODEL_KINDS)}")
        if min(self.epochs, self.batch_size, self.threads, self.steps_per_epoch or 1) < 1:
            raise UserInputError("epochs, batch_size, threads and steps_per_epoch must be >= 1")
        if self.window < 2:
            raise UserInputError(f"window {self.window} is too short; give at least 2 bars")
        for tf in self.timeframes:
            try:
                timeframe_ms(tf)
            except ValueError as exc:
                raise UserInputError(f"timeframes: {exc}") from None


class _Stopped(Exception):
    """Raised between two steps when a job is asked to stop."""


@dataclass
class TrainingJob:
    """One training run on annotations (module doc); ``run`` is the thread's body, ``view`` what a client reads."""

    request: TrainRequest
    settings: Settings
    publish: Publish
    id: str = field(default_factory=lambda: "train-" + uuid.uuid4().hex[:12])
    status: str = "queued"  # queued -> running -> done | failed | stopped
    step: int = 0
    total_steps: int = 0
    epoch: int = 0
    loss: float | None = None
    val_loss: float | None = None
    samples: int = 0
    data: dict[str, Any] | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    checkpoint: str | None = None
    parent: str | None = None
    error: str | None = None
    created_ms: int = field(default_factory=_now_ms)
    finished_ms: int | None = None

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._last_push = 0.0

    # -- control -------------------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the job to stop after the step running (a queued job stops before its first)."""
        self._stop.set()

    def view(self) -> dict[str, Any]:
        r = self.request
        with self._lock:
            return {
                "id": self.id, "status": self.status, "model": r.save_as or r.model, "kind": r.kind, "fresh": r.fresh,
                "parent": self.parent, "step": self.step, "total_steps": self.total_steps, "epoch": self.epoch,
                "epochs": r.epochs, "loss": self.loss, "val_loss": self.val_loss, "samples": self.samples,
                "data": self.data, "history": list(self.history), "checkpoint": self.checkpoint, "error": self.error,
                "created_ms": self.created_ms, "finished_ms": self.finished_ms,
            }  # fmt: skip

    def _push(self, force: bool = False) -> None:
        """Progress to the hub: every change of status, and steps at most 20 times a second."""
        now = time.monotonic()
        if force or now - self._last_push >= 0.05:
            self._last_push = now
            self.publish("training_progress", self.view())

    # -- the thread ----------------------------------------------------------------------------------------------
    def run(self) -> None:
        with self._lock:
            self.status = "running"
        self._push(True)
        torch.set_num_threads(self.request.threads)
        try:
            model, spec, self.parent = self._model()
            data = build_samples(self.settings, self.request.where, spec)
            with self._lock:
                self.samples, self.data = len(data.kept), data.summary()
            if len(data.kept) < 2:
                raise UserInputError(
                    f"{len(data.kept)} complete sample(s) from the annotations; at least 2 are needed (one to validate): "
                    "annotate more trades, or import the bars their inputs need"
                )
            train, val = split_train_val(data.samples, self.request.val_fraction)
            self._save(model, spec, self._fit(model, train, val), data)
            status = "done"
        except _Stopped:  # nothing is saved: a stopped run is not a finished one
            status = "stopped"
        except (PivotalError, ValueError) as exc:  # one line naming the fix
            status = "failed"
            self.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        except Exception as exc:  # a bug: the job says so, the server goes on (no exception text: it may hold paths)
            status = "failed"
            self.error = f"internal error ({type(exc).__name__}); see the server log"
        with self._lock:
            self.status, self.finished_ms = status, _now_ms()
        self._push(True)

    def _model(self) -> tuple[SupervisedModel, RunSpec, str | None]:
        r = self.request
        manager = checkpoints(self.settings)
        exchange = r.exchange or self.settings.default_exchange
        if r.fresh:
            timeframes = r.timeframes or self._annotation_timeframes()
            spec = RunSpec(r.kind, exchange, "", timeframes, name=r.save_as or r.model, window=r.window, seed=r.seed,
                           epochs=r.epochs, batch_size=r.batch_size, threads=r.threads)  # fmt: skip
            try:
                return new_supervised(spec), spec, None
            except ValueError as exc:
                raise UserInputError(str(exc)) from None
        try:
            info = manager.resolve(r.model)
        except KeyError as exc:
            raise DataNotFound(f"{exc.args[0]}; train one first, or start a fresh model (fresh: true)") from None
        model = manager.load(info)
        if not isinstance(model, SupervisedModel):
            raise UserInputError(f"{info.name}/{info.id} is a {info.model_type}; annotations train CNN or Transformer models")
        spec = spec_for(info.model_type, info.extra, "", r.exchange or str(info.extra.get("exchange") or exchange))
        spec = replace(spec, name=r.save_as or info.name, levels=int(info.extra.get("levels", spec.levels)), seed=r.seed)
        model.name = spec.model_name
        return model, spec, f"{info.name}/{info.id}"

    def _annotation_timeframes(self) -> tuple[str, ...]:
        found = load_annotations(self.settings, self.request.where)
        tfs = sorted({a.timeframe for a in found}, key=timeframe_ms)
        if not tfs:
            raise UserInputError("no manual annotation matches the filter; annotate trades first")
        return tuple(tfs)

    def _fit(self, model: SupervisedModel, train: SampleSet, val: SampleSet) -> Trainer:
        r = self.request
        batches = -(-len(train) // r.batch_size)
        if r.steps_per_epoch is not None:
            batches = min(batches, r.steps_per_epoch)
        with self._lock:
            self.total_steps = r.epochs * batches
        inner = model.train_step

        def step(batch: Any) -> dict[str, float]:  # the trainer's step, reported and stoppable
            if self._stop.is_set():
                raise _Stopped
            parts = inner(batch)
            with self._lock:
                self.step += 1
                self.loss = float(parts["loss"])
            self._push()
            return parts

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            with self._lock:
                self.epoch = epoch
                self.val_loss = float(metrics["val_loss"])
                self.history.append({k: float(v) for k, v in metrics.items() if np.isfinite(v)})
            self._push(True)

        model.train_step = step  # type: ignore[method-assign]  # reports progress; removed below
        trainer = Trainer(model, TrainConfig(r.epochs, r.batch_size, r.seed, progress=False,
                                             max_batches_per_epoch=r.steps_per_epoch))  # fmt: skip
        try:
            trainer.fit(train, val, on_epoch)
        finally:
            del model.train_step
        trainer.restore_best()
        return trainer

    def _save(self, model: SupervisedModel, spec: RunSpec, trainer: Trainer, data: AnnotationData) -> CheckpointInfo:
        kept = data.kept
        span = {"exchange": spec.exchange, "symbols": sorted({s.symbol for s in kept}), "timeframes": list(spec.timeframes),
                "start": int(kept[0].as_of), "end": int(kept[-1].as_of), "samples": len(kept)}  # fmt: skip
        extra = {**spec.extra(), "trained_on": "annotations", "annotations": data.summary()["annotations"],
                 "parent": self.parent, "known_through": max(s.known_at for s in kept)}  # fmt: skip
        info = checkpoints(self.settings).save(model, "val_loss", float(trainer.best_val), False, span, extra)
        with self._lock:
            self.checkpoint = f"{info.name}/{info.id}"
        return info


# ------------------------------------------------------------------------------------------------- replay


@dataclass(frozen=True)
class ReplayRequest:
    model: str
    symbol: str
    timeframe: str
    start: int
    end: int
    exchange: str | None = None
    speed: int = 1

    def __post_init__(self) -> None:
        if self.speed not in SPEEDS:
            raise UserInputError(f"speed {self.speed} is not offered; use one of {', '.join(map(str, SPEEDS))}")
        if self.end <= self.start:
            raise UserInputError(f"end {self.end} must be after start {self.start} (epoch ms)")
        try:
            timeframe_ms(self.timeframe)
        except ValueError as exc:
            raise UserInputError(f"timeframe: {exc}") from None


def replay(settings: Settings, request: ReplayRequest) -> tuple[list[dict[str, Any]], str]:
    """The model's prediction at every stored bar of [start, end) (bar open times) with the annotated target of its
    time; a bar whose input is incomplete gets ``action`` None and the reason. Returns the rows and the checkpoint."""
    manager = checkpoints(settings)
    try:
        info = manager.resolve(request.model)
    except KeyError as exc:
        raise DataNotFound(str(exc.args[0])) from None
    model = manager.load(info)
    if not isinstance(model, SupervisedModel):
        raise UserInputError(f"{info.name}/{info.id} is a {info.model_type}; replay supports CNN and Transformer models")
    exchange = request.exchange or settings.default_exchange
    spec = spec_for(info.model_type, info.extra, request.symbol, exchange)
    input_spec = spec.input_spec()
    tf = timeframe_ms(request.timeframe)
    with _store(settings) as store:
        bars = store.candles(exchange, request.symbol, request.timeframe, start=request.start, end=request.end)
        if len(bars) == 0:
            raise DataNotFound(f"no {request.timeframe} candles of {exchange} {request.symbol} stored in [{request.start}, "
                               f"{request.end}); import them or pick another range")  # fmt: skip
        if len(bars) > MAX_REPLAY_BARS:
            raise UserInputError(f"{len(bars)} bars in the range; replay at most {MAX_REPLAY_BARS} (narrow the range)")
        try:
            series = _prepared(store, spec)
        except ValueError as exc:
            raise UserInputError(str(exc)) from None
        annotations = AnnotationRepository(store).query(AnnotationFilter(source="manual", symbol=request.symbol))
    ts = np.asarray(bars.ts, np.int64)
    as_of = ts + tf
    truth = target_actions(annotations, as_of)
    rows: list[dict[str, Any]] = []
    ready_rows, windows, contexts = [], [], []
    for k, t in enumerate(as_of.tolist()):
        inp = build_input_from_series(series, request.symbol, t, input_spec)
        done = check_completeness(inp, input_spec)
        row: dict[str, Any] = {"ts_ms": int(ts[k]), "as_of": t, "timeframe": request.timeframe,
                               "close": float(bars.close[k]), "truth": ACTIONS[int(truth[k])], "action": None,
                               "confidence": None, "probabilities": None, "reason": None}  # fmt: skip
        if done.ready:
            encoded = encode(inp, input_spec)
            ready_rows.append(k)
            windows.append(encoded.windows)
            contexts.append(encoded.context)
        else:
            row["reason"] = done.reason
        rows.append(row)
    for lo in range(0, len(ready_rows), 256):
        idx = ready_rows[lo : lo + 256]
        out = model.infer(torch.from_numpy(np.stack(windows[lo : lo + 256])), torch.from_numpy(np.stack(contexts[lo : lo + 256])))
        probs = out["action_prob"].double().cpu().numpy()
        conf = out["confidence"].double().cpu().numpy()
        for j, k in enumerate(idx):
            rows[k]["action"] = ACTIONS[int(probs[j].argmax())]
            rows[k]["confidence"] = float(conf[j])
            rows[k]["probabilities"] = {a: float(p) for a, p in zip(ACTIONS, probs[j], strict=True)}
    return rows, f"{info.name}/{info.id}"


def replay_metrics(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Metrics of the rows that have a prediction against their annotated targets."""
    judged = [r for r in rows if r["action"] is not None]
    truth = np.array([ACTIONS.index(r["truth"]) for r in judged], np.int64)
    predicted = np.array([ACTIONS.index(r["action"]) for r in judged], np.int64)
    return classification_metrics(truth, predicted)


class ReplaySession:
    """``replay`` played to ``publish`` as ``prediction`` messages at ``speed`` bars per ``bar_interval_s``
    (module doc). States: computing -> playing <-> paused -> completed | stopped | failed."""

    def __init__(self, settings: Settings, request: ReplayRequest, publish: Publish, bar_interval_s: float = 1.0) -> None:
        self.settings, self.request, self.publish = settings, request, publish
        self.bar_interval_s = bar_interval_s
        self.id = "replay-" + uuid.uuid4().hex[:12]
        self.status = "computing"
        self.speed = request.speed
        self.rows: list[dict[str, Any]] = []
        self.cursor = 0
        self.checkpoint: str | None = None
        self.error: str | None = None
        self.created_ms = _now_ms()
        self._cond = threading.Condition()
        self._steps = 0
        self._pause_requested = False

    # -- control ---------------------------------------------------------------------------------------------------
    def _control(self, change: Callable[[], None]) -> dict[str, Any]:
        with self._cond:
            if self.status in ("completed", "stopped", "failed"):
                raise UserInputError(f"replay {self.id} has {self.status}; start a new one")
            change()
            self._cond.notify_all()
        self._announce()
        return self.view()

    def pause(self) -> dict[str, Any]:
        def go() -> None:
            if self.status == "computing":
                self._pause_requested = True
            else:
                self.status = "paused"

        return self._control(go)

    def resume(self) -> dict[str, Any]:
        def go() -> None:
            self._pause_requested = False
            if self.status == "paused":
                self.status = "playing"

        return self._control(go)

    def step(self) -> dict[str, Any]:
        """Pause (when playing) and play the next bar now."""

        def go() -> None:
            if self.status == "computing":
                self._pause_requested = True
            else:
                self.status = "paused"
            self._steps += 1

        return self._control(go)

    def set_speed(self, speed: int) -> dict[str, Any]:
        if speed not in SPEEDS:
            raise UserInputError(f"speed {speed} is not offered; use one of {', '.join(map(str, SPEEDS))}")

        def go() -> None:
            self.speed = speed

        return self._control(go)

    def stop(self) -> dict[str, Any]:
        with self._cond:
            if self.status not in ("completed", "stopped", "failed"):
                self.status = "stopped"
                self._cond.notify_all()
        self._announce()
        return self.view()

    # -- views -----------------------------------------------------------------------------------------------------
    def view(self) -> dict[str, Any]:
        r = self.request
        with self._cond:
            return {"id": self.id, "status": self.status, "model": r.model, "checkpoint": self.checkpoint,
                    "exchange": r.exchange or self.settings.default_exchange, "symbol": r.symbol,
                    "timeframe": r.timeframe, "start": r.start, "end": r.end, "speed": self.speed,
                    "played": self.cursor, "total": len(self.rows), "error": self.error,
                    "created_ms": self.created_ms}  # fmt: skip

    def result(self) -> dict[str, Any]:
        """The view, the predictions played so far and their metrics."""
        view = self.view()
        with self._cond:
            played = [dict(r) for r in self.rows[: self.cursor]]
        return {**view, "predictions": played, "metrics": replay_metrics(played)}

    def _announce(self) -> None:
        self.publish("replay", self.view())

    # -- the thread ------------------------------------------------------------------------------------------------
    def run(self) -> None:
        try:
            rows, checkpoint = replay(self.settings, self.request)
        except PivotalError as exc:
            self._fail(str(exc))
            return
        except Exception as exc:  # a bug: say so without its text
            self._fail(f"internal error ({type(exc).__name__}); see the server log")
            return
        with self._cond:
            self.rows, self.checkpoint = rows, checkpoint
            if self.status == "computing":
                self.status = "paused" if self._pause_requested else "playing"
        self._announce()
        self._play()

    def _fail(self, message: str) -> None:
        with self._cond:
            self.status, self.error = "failed", message
        self._announce()

    def _play(self) -> None:
        due = time.monotonic()
        with self._cond:
            while self.status in ("playing", "paused") and self.cursor < len(self.rows):
                if self.status == "paused":
                    if self._steps == 0:
                        self._cond.wait()
                        due = time.monotonic()
                        continue
                    self._steps -= 1
                else:
                    wait = due - time.monotonic()
                    if wait > 0:
                        self._cond.wait(wait)
                        continue
                    due = time.monotonic() + self.bar_interval_s / self.speed
                row = self.rows[self.cursor]
                self.cursor += 1
                self.publish("prediction", {"session": self.id, "symbol": self.request.symbol, **row})
            if self.status in ("playing", "paused") and self.cursor >= len(self.rows):
                self.status = "completed"
        self._announce()
