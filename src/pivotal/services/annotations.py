"""Use case: chart annotations (``pivotal annotations list|export``, later the web chart and the HTTP API).

Plain functions over settings; they open the configured store (DuckDB file by default, or PostgreSQL), read the
``annotations`` state tables through ``data.state.annotations.AnnotationRepository`` and return plain values.
``trendline_verdicts`` judges the stored predictions of one symbol and timeframe against the trend lines of the stored
candles (``training.trendline_validation``) and, with ``save``, stores the verdicts as ``trendline`` annotations.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from pivotal.config import Settings
from pivotal.core.clock import Clock
from pivotal.core.errors import DataNotFound, UserInputError
from pivotal.core.timeframes import timeframe_ms
from pivotal.data.backends import open_store
from pivotal.data.state.annotations import AnnotationFilter, AnnotationRepository, to_csv, to_json
from pivotal.data.state.predictions import PredictionFilter
from pivotal.models.output_store import InferenceHistory
from pivotal.structure.types import PivotParams
from pivotal.training.trendline_validation import TrendValidationConfig, accuracy, store_verdicts, validate_trendlines

CONTEXT_BARS = 2000
ExportFormat = Literal["json", "csv"]


@contextmanager
def repository(settings: Settings, clock: Clock | None = None) -> Iterator[AnnotationRepository]:
    """The annotation repository of the configured store, closed on exit."""
    store = open_store(settings)
    try:
        yield AnnotationRepository(store, clock)
    finally:
        store.close()


def list_annotations(settings: Settings, where: AnnotationFilter, limit: int | None = 100) -> list[dict[str, Any]]:
    """Annotations matching ``where``, oldest entry first (the newest ``limit`` of them), as plain dicts."""
    if limit is not None and limit < 1:
        raise UserInputError(f"--limit must be >= 1 (got {limit})")
    with repository(settings) as repo:
        return [a.to_dict() for a in repo.query(where, limit)]


def export_annotations(
    settings: Settings, where: AnnotationFilter, fmt: ExportFormat, out: Path | None = None
) -> tuple[str, int]:
    """All annotations matching ``where`` as JSON or CSV text; written to ``out`` when given (whole or not at all:
    a temporary file renamed into place). Returns the text and the number of annotations."""
    if fmt not in ("json", "csv"):
        raise UserInputError(f"--format {fmt!r} is not supported; use json or csv")
    with repository(settings) as repo:
        found = repo.query(where)
    text = to_json(found) if fmt == "json" else to_csv(found)
    if out is not None:
        partial = out.with_name(out.name + ".partial")
        try:
            partial.write_text(text, encoding="utf-8")
            partial.replace(out)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise UserInputError(f"cannot write {out}: {exc.strerror}; pass --out to a writable place") from None
    return text, len(found)


def trendline_verdicts(
    settings: Settings,
    where: PredictionFilter,
    exchange: str | None = None,
    params: PivotParams = PivotParams(),
    config: TrendValidationConfig = TrendValidationConfig(),
    save: bool = False,
) -> dict[str, dict[str, Any]]:
    """Accuracy per model of the stored predictions matching ``where`` (one symbol and timeframe) judged against the
    trend lines of the stored candles (only lines known by the newest stored bar). ``save``: store the verdicts as
    ``trendline`` annotations (a verdict already stored is kept as it was)."""
    if where.symbol is None or where.timeframe is None:
        raise UserInputError("trend-line validation needs one --symbol and one --timeframe (the bars it judges on)")
    venue = exchange or settings.default_exchange
    tf = timeframe_ms(where.timeframe)
    store = open_store(settings)
    try:
        found = InferenceHistory(store).query(
            where.model_name, where.symbol, where.timeframe, where.start, where.end, where.model_version
        )
        if not found:
            return {}
        start = found[0].as_of - CONTEXT_BARS * tf  # the pivots before the first prediction need bars before it
        candles = store.candles(venue, where.symbol, where.timeframe, start=start)
        if len(candles) == 0:
            raise DataNotFound(f"no {where.timeframe} candles of {venue} {where.symbol} stored to judge predictions against")
        candles = replace(candles, symbol=where.symbol, timeframe=where.timeframe)
        verdicts = validate_trendlines(found, candles, params, config)
        if save:
            store_verdicts(AnnotationRepository(store), verdicts)
    finally:
        store.close()
    return accuracy(verdicts)
