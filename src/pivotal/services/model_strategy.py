"""Use case: a ``ModelStrategy`` from stored checkpoints (``pivotal run`` / ``pivotal backtest`` with models).

Each checkpoint becomes a :class:`CheckpointPredictor`: the model is loaded once (the best checkpoint of a name, or
``NAME/ID``), and its input as of t is cut from prepared whole series exactly as ``pivotal predict`` and a training
sample at t are (``features.assemble``: load → prepare → ``build_input_from_series``), then checked for completeness:
an incomplete input gives no output (the orchestrator then abstains), never a guess. Series come from the market
store (or from candles handed in, as ``--input`` does) once per symbol; with ``refresh`` (the default for the store)
they are re-read when t passes the last stored bar, which is how a live node that persists closed candles sees them.

A live node (paper/testnet/live) hands each predictor an ``InputSource`` instead: the runtime's data engine, whose
in-memory series are seeded with the stored history before the run (``history_series``: the same load as training,
cut to the bars closed by the start) and then grow from the live feed; its ``input_at`` cuts by the same
``build_input_from_series``, so live inputs equal training inputs.

Importing this module installs the predictor loader of the registered strategy ``model`` (strategies may not import
the training layer that loads checkpoints).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pivotal.config import Settings, load_settings
from pivotal.core.errors import DataNotFound, UserInputError
from pivotal.core.timeframes import timeframe_ms
from pivotal.data.backends import open_store
from pivotal.data.candles import Candles
from pivotal.features.assemble import PredictionHistory, PreparedSeries, build_input_from_series, prepare_series
from pivotal.features.completeness import check_completeness
from pivotal.features.encoding import encode
from pivotal.features.input_spec import InputSpec
from pivotal.features.model_io import BaseDataInput, ModelOutput, WindowKey
from pivotal.models.output_store import OutputStore
from pivotal.services.predict import spec_for
from pivotal.services.train import checkpoints
from pivotal.strategies.model_strategy import ModelStrategy, Predictor, install_predictor_loader
from pivotal.strategies.orchestrator import Decision, Orchestrator, OrchestratorConfig
from pivotal.training.checkpoints import CheckpointInfo
from pivotal.training.pipeline import RunSpec, load_series

SeriesSource = Callable[[RunSpec], dict[tuple[str, str], Candles]]
InputSource = Callable[[str, int, InputSpec, PredictionHistory | None], BaseDataInput | None]
"""(symbol, t, input spec, last predictions) -> the input as of t, None when nothing is known for the symbol yet:
``DataEngine.input_at`` in a live node (the runtime wraps it)."""


class _Fixed:
    """ "Last predictions" handed to the predictor, as the ``PredictionHistory`` the input builder reads."""

    def __init__(self, outputs: Mapping[str, ModelOutput]) -> None:
        self.outputs = dict(outputs)

    def last_predictions(self, symbol: str, t: int) -> dict[str, ModelOutput]:
        return {k: v for k, v in self.outputs.items() if v.symbol == symbol and v.timestamp <= t}


@dataclass
class CheckpointPredictor:
    """One loaded checkpoint as a :class:`~pivotal.strategies.model_strategy.Predictor`."""

    model: Any  # SupervisedModel | DQNAgent: ``predict(encoded, symbol=, timestamp=)``
    info: CheckpointInfo
    source: SeriesSource
    exchange: str | None = None
    min_completeness: float = 0.8
    refresh: bool = False  # re-read the series when t passes their last bar
    inputs: InputSource | None = None  # set: inputs come from it (a live node's data engine), not from ``source``
    _series: dict[str, tuple[RunSpec, InputSpec, dict[tuple[str, str], PreparedSeries], int]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.model.name)

    def run_spec(self, symbol: str) -> RunSpec:
        """The spec the checkpoint was trained with, for ``symbol`` (its timeframes, window, exchange)."""
        return spec_for(self.info.model_type, self.info.extra, symbol, self.exchange)

    def input_spec(self, symbol: str) -> InputSpec:
        return self.run_spec(symbol).input_spec().with_threshold(self.min_completeness)

    def _prepared(self, symbol: str, t: int) -> tuple[InputSpec, dict[tuple[str, str], PreparedSeries]]:
        cached = self._series.get(symbol)
        if cached is None or (self.refresh and t > cached[3]):
            spec = spec_for(self.info.model_type, self.info.extra, symbol, self.exchange)
            input_spec = spec.input_spec().with_threshold(self.min_completeness)
            prepared = prepare_series(self.source(spec), input_spec.pivot_params)  # as training and predict
            base = prepared.get((symbol, spec.timeframes[0]))
            covered = int(base.close_ts[-1]) if base is not None and len(base.close_ts) else -1
            cached = self._series[symbol] = (spec, input_spec, prepared, covered)
        return cached[1], cached[2]

    def predict(self, symbol: str, t: int, last_predictions: Mapping[str, ModelOutput], position: int = 0) -> ModelOutput | None:
        if self.inputs is not None:
            input_spec = self.input_spec(symbol)
            got = self.inputs(symbol, t, input_spec, _Fixed(last_predictions))
            if got is None:
                return None
            inp = got
        else:
            input_spec, prepared = self._prepared(symbol, t)
            inp = build_input_from_series(prepared, symbol, t, input_spec, history=_Fixed(last_predictions))
        if not check_completeness(inp, input_spec).ready:
            return None
        encoded = encode(inp, input_spec)
        if self.info.model_type == "dqn":  # its state holds the current position, as in training's policy replay
            dqn: ModelOutput = self.model.predict(encoded, symbol=symbol, timestamp=t, position=float(position))
            return dqn
        output: ModelOutput = self.model.predict(encoded, symbol=symbol, timestamp=t)
        return output


def store_source(settings: Settings) -> SeriesSource:
    """Each window's whole stored series (as ``pivotal predict`` reads them), the store opened and closed per read so
    no lock is held between bars."""

    def read(spec: RunSpec) -> dict[tuple[str, str], Candles]:
        market = open_store(settings)
        try:
            return load_series(market, spec)
        finally:
            market.close()

    return read


def candles_source(base: Candles) -> SeriesSource:
    """Series from base candles handed in (an ``--input`` file or a test slice); coarser windows are aggregated from
    them, complete buckets only, as training does."""

    def read(spec: RunSpec) -> dict[tuple[str, str], Candles]:
        return load_series(None, spec, base)

    return read


def history_series(
    settings: Settings, predictors: Sequence[CheckpointPredictor], symbol: str, before: int
) -> dict[WindowKey, Candles]:
    """The history a live node's data engine starts from for ``symbol``: every window of every predictor, loaded as
    training and ``pivotal predict`` load it (``load_series``: the store's series, a coarser one filled from the
    base), cut to the bars that closed before ``before`` (the feed's first event; the feed delivers the rest). A
    window the store has nothing for is left out (the engine's series then start with the feed)."""
    out: dict[WindowKey, Candles] = {}
    read = store_source(settings)
    for predictor in predictors:
        spec = predictor.run_spec(symbol)
        try:
            series = read(spec)
        except ValueError:  # no base candles stored: nothing to start from
            continue
        for key, candles in series.items():
            closed = int(np.searchsorted(candles.ts, before - timeframe_ms(candles.timeframe), side="left"))
            if key not in out and closed:
                out[key] = candles.slice(0, closed)
    return out


def load_predictors(
    settings: Settings,
    models: str | Sequence[str],
    *,
    candles: Candles | None = None,
    exchange: str | None = None,
    min_completeness: float = 0.8,
    inputs: InputSource | None = None,
) -> list[CheckpointPredictor]:
    """A predictor per checkpoint reference (``NAME`` = its best checkpoint, ``NAME/ID``), loaded now; ``DataNotFound``
    naming what exists when a reference matches nothing, ``CorruptCheckpoint`` for a bad weights file."""
    refs = [models] if isinstance(models, str) else list(models)
    manager = checkpoints(settings)
    source = candles_source(candles) if candles is not None else store_source(settings)
    out = []
    for ref in refs:
        try:
            info = manager.resolve(ref)
        except KeyError as exc:  # the manager's line lists what exists
            raise DataNotFound(f"model strategy: {exc.args[0]}") from None
        out.append(CheckpointPredictor(manager.load(info), info, source, exchange, min_completeness, refresh=candles is None,
                                       inputs=inputs))  # fmt: skip
    return out


def model_strategy_from_checkpoint(
    settings: Settings,
    models: str | Sequence[str],
    *,
    candles: Candles | None = None,
    exchange: str | None = None,
    min_completeness: float = 0.8,
    orchestrator: OrchestratorConfig | None = None,
    persist_outputs: bool = False,
    decision_sink: Callable[[Decision], None] | None = None,
    fraction: float = 1.0,
    keep_on_abstain: bool = False,
) -> ModelStrategy:
    """A ``ModelStrategy`` trading the best checkpoint of each name in ``models`` through an orchestrator.

    ``candles``: base bars to build inputs from (default: the market store of ``settings``); ``persist_outputs``:
    outputs go to the store's ``model_outputs`` table (else memory only); ``decision_sink`` receives each decision
    (e.g. the runtime journal)."""
    predictors: list[Predictor] = list(
        load_predictors(settings, models, candles=candles, exchange=exchange, min_completeness=min_completeness)
    )
    outputs = OutputStore(open_store(settings)) if persist_outputs else OutputStore()
    return ModelStrategy(
        predictors, Orchestrator(orchestrator, decision_sink), outputs, fraction=fraction, keep_on_abstain=keep_on_abstain
    )


def model_strategy_from_config(
    settings: Settings,
    models: Sequence[Mapping[str, Any]],
    orchestrator: Mapping[str, Any] | None = None,
    *,
    threads: int | None = None,
    **options: Any,
) -> ModelStrategy:
    """From a run configuration's tables: ``models`` = ``[{name = "cnn", weight = 2.0}, ...]`` (``name`` a checkpoint
    reference; ``weight`` optional: given for any model, it configures the expert weights, a model without one gets
    1), ``orchestrator`` = ``OrchestratorConfig`` keys; ``options`` as :func:`model_strategy_from_checkpoint`.
    Unknown keys are one line. ``threads``: torch's CPU threads for this process (a node predicts one sample per
    bar, where more than one thread only adds contention: 1 is ~25x faster than 2 on a busy 2-core machine)."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    if not models:
        raise UserInputError('model strategy: list at least one model (models = [{name = "cnn"}])')
    refs: list[str] = []
    weights: dict[str, float] = {}
    for entry in models:
        unknown = sorted(set(entry) - {"name", "weight"})
        if unknown or "name" not in entry:
            raise UserInputError(f"model strategy: each model needs name (and optionally weight); got {dict(entry)}")
        refs.append(str(entry["name"]))
        if "weight" in entry:
            weights[refs[-1].partition("/")[0]] = float(entry["weight"])
    table = dict(orchestrator or {})
    if weights:
        table["weights"] = {ref.partition("/")[0]: weights.get(ref.partition("/")[0], 1.0) for ref in refs}
    return model_strategy_from_checkpoint(settings, refs, orchestrator=OrchestratorConfig.from_mapping(table), **options)


def _registry_loader(names: Sequence[str], params: dict[str, Any]) -> list[CheckpointPredictor]:
    return load_predictors(load_settings(), names)


install_predictor_loader(_registry_loader)
