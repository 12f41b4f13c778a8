"""Use case: one model's prediction for a symbol as of a time (``pivotal predict``, later the HTTP API).

The input is built exactly as a training sample at t is (``training.pipeline.live_input``) and refused with the
completeness reason when incomplete (``features.completeness.InputNotReady``, a ``PivotalError``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pivotal.config import Settings
from pivotal.data.backends import open_store
from pivotal.features.completeness import InputNotReady, check_completeness
from pivotal.features.encoding import encode
from pivotal.features.model_io import ModelOutput
from pivotal.services.train import checkpoints
from pivotal.training.pipeline import RunSpec, live_input


def spec_for(model_type: str, extra: dict[str, Any], symbol: str, exchange: str | None = None) -> RunSpec:
    """The ``RunSpec`` that rebuilds a checkpoint's input (from the ``extra`` it was saved with) for ``symbol``."""
    timeframes = tuple(str(tf) for tf in extra["timeframes"])
    return RunSpec(model_type, exchange or str(extra["exchange"]), symbol, timeframes, window=int(extra["window"]))


def predict(
    settings: Settings, model: str, symbol: str, t: int, *, exchange: str | None = None, min_completeness: float = 0.8
) -> ModelOutput:
    """The ``ModelOutput`` of checkpoint ``model`` (``NAME`` = its best, or ``NAME/ID``) for ``symbol`` as of t
    (epoch ms); ``InputNotReady`` naming the symbol, t and the reason when the input is incomplete."""
    manager = checkpoints(settings)
    info = manager.resolve(model)
    spec = spec_for(info.model_type, info.extra, symbol, exchange)
    input_spec = spec.input_spec().with_threshold(min_completeness)
    market = open_store(settings)
    try:
        inp = live_input(market, spec, t)
    finally:
        market.close()
    completeness = check_completeness(inp, input_spec)
    if not completeness.ready:
        at = datetime.fromtimestamp(t / 1000, UTC).strftime("%Y-%m-%d %H:%M")
        raise InputNotReady(f"no prediction for {symbol} at {at}: {completeness.reason}")
    loaded = manager.load(info)  # a corrupt weights file: one CorruptCheckpoint line
    return loaded.predict(encode(inp, input_spec), symbol=symbol, timestamp=t)
