"""Use case: the inference history (``pivotal predictions list|show|stats|prune|outcomes``, later the HTTP API).

Plain functions over settings; they open the configured store (DuckDB file by default, or PostgreSQL), read or prune
the ``predictions`` state table through ``models.output_store.InferenceHistory`` and return plain values. Outcomes are
scored from the candles in the same store (``training.outcomes``: only what is known by the newest stored bar).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from typing import Any

from pivotal.config import Settings
from pivotal.core.clock import Clock, WallClock
from pivotal.core.errors import DataNotFound, UserInputError
from pivotal.core.timeframes import timeframe_ms
from pivotal.data.backends import open_store
from pivotal.data.state.predictions import PredictionFilter, RetentionPolicy
from pivotal.models.output_store import InferenceHistory, Prediction
from pivotal.structure.types import PivotParams
from pivotal.training.outcomes import HORIZONS_MS, resolve_all, store_outcomes, summary

CONTEXT_BARS = 2000


@contextmanager
def history(settings: Settings, clock: Clock | None = None) -> Iterator[InferenceHistory]:
    """The inference history of the configured store, closed on exit."""
    store = open_store(settings)
    try:
        yield InferenceHistory(store, clock=clock)
    finally:
        store.close()


def summary_row(p: Prediction) -> dict[str, Any]:
    """One prediction as a flat record (what ``list`` prints)."""
    out = p.output
    return {
        "model": out.model_name,
        "version": p.model_version,
        "symbol": out.symbol,
        "timeframe": p.timeframe,
        "as_of": p.as_of,
        "action": out.action,
        "confidence": out.confidence,
        "direction": out.direction_vector,
        "input_spec": p.input.spec,
        "input_hash": p.input.digest,
    }


def detail(p: Prediction) -> dict[str, Any]:
    """Everything stored about a prediction (what ``show`` prints)."""
    return {
        **summary_row(p),
        "input": asdict(p.input),
        "recorded_ms": p.recorded_ms,
        "output": p.output.to_dict(),
    }


def list_predictions(settings: Settings, where: PredictionFilter, limit: int | None = 100) -> list[dict[str, Any]]:
    """Predictions matching ``where``, oldest first (the newest ``limit`` of them)."""
    if limit is not None and limit < 1:
        raise UserInputError(f"--limit must be >= 1 (got {limit})")
    with history(settings) as h:
        found = h.query(where.model_name, where.symbol, where.timeframe, where.start, where.end, where.model_version, limit)
    return [summary_row(p) for p in found]


def show_prediction(
    settings: Settings, model: str, symbol: str, timeframe: str, as_of: int, version: str | None = None
) -> dict[str, Any]:
    """The one prediction of ``model`` (of checkpoint ``version``, needed only when several versions predicted then)
    for ``symbol``/``timeframe`` at ``as_of``; ``DataNotFound`` / ``UserInputError`` as one line otherwise."""
    with history(settings) as h:
        found = h.query(model, symbol, timeframe, as_of, as_of + 1, version)
    if not found:
        what = f"{model}{'/' + version if version else ''} {symbol} {timeframe} at {as_of}"
        raise DataNotFound(f"no prediction of {what}; list them with `pivotal predictions list --model {model}`")
    if len(found) > 1:
        versions = ", ".join(p.model_version for p in found)
        raise UserInputError(f"{len(found)} versions of {model} predicted then ({versions}); pick one with --version")
    return detail(found[0])


def prediction_stats(settings: Settings, where: PredictionFilter) -> list[dict[str, Any]]:
    """Counts, time span, actions and mean confidence per (model, version, symbol, timeframe)."""
    with history(settings) as h:
        return [asdict(s) for s in h.stats(where)]


def prune_predictions(settings: Settings, older_than_days: float, clock: Clock | None = None) -> int:
    """Delete predictions whose as-of time is more than ``older_than_days`` before now; the number deleted."""
    clock = clock or WallClock()
    with history(settings, clock) as h:
        return h.rows.apply_retention(RetentionPolicy(older_than_days), clock.now_ms())


def prediction_outcomes(
    settings: Settings,
    where: PredictionFilter,
    exchange: str | None = None,
    horizons: tuple[int, ...] = HORIZONS_MS,
    params: PivotParams = PivotParams(),
    save: bool = False,
) -> dict[str, dict[str, Any]]:
    """Hit rate per target (``return_5m`` ... ``pivot_L2``) of the predictions matching ``where`` (one symbol and
    timeframe), scored from the stored candles: only outcomes known by the newest stored bar count. ``save``: store
    them in ``prediction_outcomes`` (training samples for a trainer; one already stored is kept as it was)."""
    if where.symbol is None or where.timeframe is None:
        raise UserInputError("outcomes need one --symbol and one --timeframe (the bars they are scored on)")
    venue = exchange or settings.default_exchange
    try:
        tf = timeframe_ms(where.timeframe)
    except ValueError as exc:  # bad input: one line, not a crash (the API fuzz run found it)
        raise UserInputError(str(exc)) from None
    store = open_store(settings)
    try:
        history = InferenceHistory(store)
        found = history.query(where.model_name, where.symbol, where.timeframe, where.start, where.end, where.model_version)
        if not found:
            return {}
        start = found[0].as_of - CONTEXT_BARS * tf  # the pivots of the first prediction's bar need bars before it
        candles = store.candles(venue, where.symbol, where.timeframe, start=start)
        if len(candles) == 0:
            raise DataNotFound(f"no {where.timeframe} candles of {venue} {where.symbol} stored to score predictions against")
        if not candles.timeframe:
            candles = replace(candles, timeframe=where.timeframe)
        outcomes = resolve_all(found, candles, horizons, params)
        if save:
            store_outcomes(history.rows, outcomes)
    finally:
        store.close()
    return summary(outcomes)
