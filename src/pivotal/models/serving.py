"""``ServingModel``: the model a serving process predicts with, whose weights are swapped atomically between two
predictions while training runs elsewhere.

A version is a *separate* model object, loaded completely before it is published; publishing is one reference
assignment of an immutable ``(version, model)`` slot. A prediction reads the slot once and uses that model and that
version to the end, so it never sees weights of two versions, and it is attributed to exactly the version that made
it (returned in ``Served`` and written to the inference history's ``PredictionContext.model_version``). Weights are
never loaded into a model that serves. A swap never waits for a prediction: predictions already running finish on the
old object, which is freed when the last one returns.

Predictions on one version are serialised by that version's lock: the networks keep per-call state on the module
(e.g. the CNN's window states), which concurrent calls on one object would mix.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pivotal.models.io import ModelOutput
from pivotal.models.output_store import InferenceHistory, InputRef, PredictionContext

SERVING_SWITCH_INTERVAL_S = 0.0005


def prefer_serving_latency(interval_s: float = SERVING_SWITCH_INTERVAL_S) -> float:
    """Lower the interpreter's thread switch interval (CPython's default is 5 ms) in a process that predicts beside
    other Python threads: a prediction waiting for the GIL then waits about this long per switch. Opt-in, not called by
    ``pivotal run`` or ``serve``: in ``benchmarks/bench_online_training.py`` (50 streams, trainer running, two pairs of
    runs on the 2-core CI machine) the p99 ratio was 2.13 and 3.55 at 0.5 ms against 1.87 and 3.16 at 5 ms, with
    fewer training samples/s. Pinning serving and the trainer to separate cores (``--pin``) gave 1.44. Returns the
    previous interval."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(interval_s)
    return previous


class Predictor(Protocol):
    name: str

    def predict(self, encoded: Any, symbol: str = "", timestamp: int = 0) -> ModelOutput: ...


@dataclass(frozen=True)
class _Slot:
    version: str
    model: Predictor
    lock: threading.Lock


@dataclass(frozen=True)
class Served:
    """One prediction and the version that made it."""

    output: ModelOutput
    version: str


class ServingModel:
    """Holds the serving (version, model); ``predict`` and ``swap`` may be called from any threads."""

    def __init__(
        self,
        model: Predictor,
        version: str,
        history: InferenceHistory | None = None,
        on_swap: Callable[[str, str], None] | None = None,
    ) -> None:
        self._slot = _Slot(version, model, threading.Lock())
        self._swap_lock = threading.Lock()
        self._history_lock = threading.Lock()
        self.history = history
        self.on_swap = on_swap
        self.swaps = 0

    @property
    def version(self) -> str:
        return self._slot.version

    @property
    def model(self) -> Predictor:
        return self._slot.model

    def swap(self, model: Predictor, version: str) -> str:
        """Serve ``model`` (fully loaded, never mutated afterwards) as ``version`` from the next prediction on; returns
        the version it replaced. Swapping to the version already serving is a no-op."""
        with self._swap_lock:
            old = self._slot
            if old.version == version:
                return old.version
            self._slot = _Slot(version, model, threading.Lock())  # the one atomic step
            self.swaps += 1
        if self.on_swap is not None:
            self.on_swap(old.version, version)
        return old.version

    def predict(
        self, encoded: Any, symbol: str = "", timestamp: int = 0, timeframe: str | None = None, input_ref: InputRef | None = None
    ) -> Served:
        """Predict with the version serving now; with a history, a ``timeframe`` and an ``input_ref`` the prediction is
        recorded with that version."""
        slot = self._slot  # read once: this call is this version's, whatever swaps happen meanwhile
        with slot.lock:
            output = slot.model.predict(encoded, symbol=symbol, timestamp=timestamp)
        if self.history is not None and timeframe is not None and input_ref is not None:
            with self._history_lock:
                self.history.record(output, PredictionContext(slot.version, timeframe, input_ref))
        return Served(output, slot.version)
