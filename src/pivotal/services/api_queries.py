"""Use cases the HTTP API needs beyond the CLI's: a page of candles (downsampled for wide ranges), pivots with their
confirmation times, trend lines with the time each became known, the same pivots and lines as a running node's
closed candles confirm them (``LiveStructure``: one payload format for the batch routes and the WebSocket),
annotation create/update/delete, the risk state of a run's audit log, the run configuration of a realtime-inference
session and its predictions as drawn, stored live-training statistics and the COB heatmap.

Plain functions over settings returning plain values; bad input raises ``UserInputError`` / ``DataNotFound`` with
one line. The routes in ``pivotal.api`` only parse and serialise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pivotal.config import Settings
from pivotal.core.errors import DataNotFound, UserInputError
from pivotal.core.timeframes import timeframe_ms
from pivotal.data.backends import open_store
from pivotal.data.candles import Candles
from pivotal.data.loaders import check_range, check_timeframe
from pivotal.data.state.annotations import Annotation, new_id
from pivotal.risk.audit import active_trips, read_audit
from pivotal.services.annotations import repository
from pivotal.services.pivots import chart_window, compute_pivots
from pivotal.structure.incremental import WilliamsMarketStructure
from pivotal.structure.trendlines import TrendLine, trend_lines
from pivotal.structure.types import Kind, PivotEvent, PivotParams, PivotSet

MAX_PAGE = 10_000  # candles per page at most (a page of 10k is ~0.5 MB of JSON)


@dataclass(frozen=True)
class CandlePage:
    """Bars of one series in ``[start, end)``: at most ``limit`` of them, or all merged ``group`` at a time."""

    exchange: str
    symbol: str
    timeframe: str
    ts: list[int]
    open: list[float]
    high: list[float]
    low: list[float]
    close: list[float]
    volume: list[float]
    group: int  # bars merged into one candle (1: as stored)
    next_start: int | None  # the ``start`` of the next page, None when this page reaches ``end``


def _load(settings: Settings, exchange: str, symbol: str, timeframe: str, start: int | None, end: int | None) -> Candles:
    check_timeframe(timeframe)
    check_range(start, end)
    store = open_store(settings)
    try:
        bars = store.candles(exchange, symbol, timeframe, start=start, end=end)
    finally:
        store.close()
    if len(bars) == 0:
        raise DataNotFound(f"no {timeframe} candles of {exchange} {symbol} stored in that range; see GET /api/series")
    return bars


def candle_page(
    settings: Settings,
    exchange: str,
    symbol: str,
    timeframe: str,
    start: int | None = None,
    end: int | None = None,
    limit: int = 5000,
    max_points: int | None = None,
) -> CandlePage:
    """A page of candles. With ``max_points`` the whole range is returned, merged into at most ``max_points`` candles
    (``services.pivots.chart_window``: open of the first, highest high, lowest low, close of the last, summed volume);
    without it at most ``limit`` bars and the ``next_start`` cursor of the following page."""
    if not 1 <= limit <= MAX_PAGE:
        raise UserInputError(f"limit must be between 1 and {MAX_PAGE} (got {limit}); page with next_start")
    if max_points is not None and max_points < 2:
        raise UserInputError(f"max_points must be >= 2 (got {max_points})")
    bars = _load(settings, exchange, symbol, timeframe, start, end)
    group, next_start = 1, None
    if max_points is not None and len(bars) > max_points:
        empty = PivotSet(PivotParams(), [], [])
        window = chart_window(bars, empty, 0, max_points)
        bars, group = window.bars, window.group
    elif len(bars) > limit:
        next_start = int(bars.ts[limit])
        bars = bars.slice(0, limit)
    return CandlePage(
        exchange, symbol, timeframe,
        np.asarray(bars.ts, dtype=np.int64).tolist(),
        np.asarray(bars.open, dtype=np.float64).tolist(),
        np.asarray(bars.high, dtype=np.float64).tolist(),
        np.asarray(bars.low, dtype=np.float64).tolist(),
        np.asarray(bars.close, dtype=np.float64).tolist(),
        np.asarray(bars.volume, dtype=np.float64).tolist(),
        group, next_start,
    )  # fmt: skip


def pivot_events(
    settings: Settings,
    exchange: str,
    symbol: str,
    timeframe: str,
    start: int | None = None,
    end: int | None = None,
    params: PivotParams = PivotParams(),
) -> list[dict[str, Any]]:
    """Every pivot of every level on the stored bars in ``[start, end)``, in confirmation order, each with the open
    time of its bar (``ts``) and the close time of the bar that confirmed it (``confirmed_ts``, when it became known)."""
    bars = _load(settings, exchange, symbol, timeframe, start, end)
    if not bars.timeframe:
        bars = Candles(bars.ts, bars.open, bars.high, bars.low, bars.close, bars.volume, exchange, symbol, timeframe)
    _, events = compute_pivots(bars, params)
    return [pivot_payload(e) for e in events]


def pivot_payload(e: PivotEvent) -> dict[str, Any]:
    """A pivot as the API and the WebSocket give it."""
    return {"label": e.label, "level": e.level, "kind": str(e.kind), "price": float(e.price), "ts": e.ts,
            "confirmed_ts": e.confirmed_ts}  # fmt: skip


def trendline_payload(
    line: TrendLine, confirmed_ts: tuple[int, int], until_ts: int | None, end: tuple[int, float] | None
) -> dict[str, Any]:
    """A trend line as the API and the WebSocket give it: its two anchor pivots (bar index in the series, open time,
    price, confirmation time), the slope in price per bar, when it became known (``known_ts``: the second anchor's
    confirmation) and when the next same-type pivot replaced it (``until_ts``, None while current); ``end``: the bar
    the chart draws it to, with the line's value there."""
    return {
        "label": f"L{line.level}{line.kind}", "level": line.level, "kind": str(line.kind), "direction": line.direction,
        "anchors": [
            {"index": line.i1, "ts": line.start_ts, "price": line.v1, "confirmed_ts": confirmed_ts[0]},
            {"index": line.i2, "ts": line.end_ts, "price": line.v2, "confirmed_ts": confirmed_ts[1]},
        ],
        "slope": line.slope, "known_index": line.valid_from, "known_ts": confirmed_ts[1],
        "until_index": line.valid_until, "until_ts": until_ts,
        "end": None if end is None else {"ts": end[0], "price": end[1]},
    }  # fmt: skip


def trendline_events(
    settings: Settings,
    exchange: str,
    symbol: str,
    timeframe: str,
    level: int | None = None,
    start: int | None = None,
    end: int | None = None,
    params: PivotParams = PivotParams(),
) -> list[dict[str, Any]]:
    """Every trend line (``structure.trendlines``: through two consecutive same-type pivots of a level) on the stored
    bars in ``[start, end)``, of ``level`` (None: every level), in the order they became known. Each is drawn to the
    bar that replaced it, or to the last bar of the range while it is current."""
    if level is not None and not 1 <= level <= params.levels:
        raise UserInputError(f"level must be between 1 and {params.levels} (got {level})")
    bars = _load(settings, exchange, symbol, timeframe, start, end)
    pivots, _ = compute_pivots(bars, params)
    ts = np.asarray(bars.ts, dtype=np.int64)
    step = timeframe_ms(timeframe)
    last = len(ts) - 1
    out: list[tuple[tuple[int, int, int], dict[str, Any]]] = []
    for lv in [level] if level is not None else range(1, params.levels + 1):
        for kind in ("H", "L"):
            arr = pivots.get(lv, kind)
            confirmed = dict(zip(arr.index.tolist(), arr.confirmed_at.tolist(), strict=True))
            for line in trend_lines(pivots, lv, kind, ts):
                stop = line.valid_until if line.valid_until is not None else last
                until = None if line.valid_until is None else int(ts[line.valid_until]) + step
                known = (int(ts[confirmed[line.i1]]) + step, int(ts[line.valid_from]) + step)
                payload = trendline_payload(line, known, until, (int(ts[stop]), float(line.value_at(stop))))
                out.append(((line.valid_from, lv, 0 if kind == "H" else 1), payload))
    return [p for _, p in sorted(out, key=lambda x: x[0])]


class LiveStructure:
    """Pivots and trend lines of one series as its closed bars arrive (``structure.incremental``, never retracted):
    what a running node's WebSocket pushes. Bar indexes count from the first bar fed, so over the same bars the
    pivots and lines equal ``pivot_events`` / ``trendline_events`` of that range (the batch engine's)."""

    def __init__(self, timeframe: str, params: PivotParams = PivotParams()) -> None:
        self.step = timeframe_ms(timeframe)
        self.detector = WilliamsMarketStructure(params)
        self.bars = 0
        self._last: dict[tuple[int, Kind], PivotEvent] = {}

    def on_bar(self, ts: int, o: float, h: float, lo: float, c: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Feed one closed bar; the pivots it confirmed and the trend lines those formed (each drawn to this bar,
        where it became known). An invalid bar raises ``ValueError`` naming it."""
        events = self.detector.on_bar(self.bars, o, h, lo, c, ts, ts + self.step)
        self.bars += 1
        lines: list[dict[str, Any]] = []
        for e in events:
            prev = self._last.get((e.level, e.kind))
            self._last[(e.level, e.kind)] = e
            if prev is None or prev.confirmed_ts is None or e.confirmed_ts is None:
                continue
            line = TrendLine(e.kind, e.level, prev.index, prev.price, e.index, e.price, e.confirmed_at, None,
                             prev.ts, e.ts)  # fmt: skip
            at = e.confirmed_at
            lines.append(trendline_payload(line, (prev.confirmed_ts, e.confirmed_ts), None, (ts, float(line.value_at(at)))))
        return [pivot_payload(e) for e in events], lines


# --- annotations: create / get / update / delete (list and export are services.annotations) ------------------------


def create_annotation(settings: Settings, fields: dict[str, Any]) -> dict[str, Any]:
    """Store a manual annotation made of ``fields`` (validated by the repository); the stored annotation."""
    values = {**fields, "id": new_id(), "source": "manual"}
    values["tags"] = tuple(values.get("tags") or ())
    values["details"] = dict(values.get("details") or {})
    with repository(settings) as repo:
        return repo.create(Annotation(**values)).to_dict()


def get_annotation(settings: Settings, annotation_id: str) -> dict[str, Any]:
    with repository(settings) as repo:
        found = repo.get(annotation_id)
    if found is None:
        raise DataNotFound(f"no annotation {annotation_id!r}; list them with GET /api/annotations")
    return found.to_dict()


def annotation_history(settings: Settings, annotation_id: str) -> list[dict[str, Any]]:
    """Every revision of one annotation, oldest first (its version history)."""
    with repository(settings) as repo:
        revisions = repo.history(annotation_id)
    if not revisions:
        raise DataNotFound(f"no annotation {annotation_id!r}; list them with GET /api/annotations")
    return [{**r.annotation.to_dict(), "operation": r.operation} for r in revisions]


def update_annotation(
    settings: Settings, annotation_id: str, changes: dict[str, Any], expected_version: int | None = None
) -> dict[str, Any]:
    """Apply ``changes`` (editable fields only; optimistic locking with ``expected_version``)."""
    if "tags" in changes and changes["tags"] is not None:
        changes = {**changes, "tags": tuple(changes["tags"])}
    with repository(settings) as repo:
        return repo.update(annotation_id, changes, expected_version).to_dict()


def delete_annotation(settings: Settings, annotation_id: str) -> dict[str, Any]:
    """Delete one annotation (its history keeps the last state); the deleted annotation."""
    with repository(settings) as repo:
        return repo.delete(annotation_id).to_dict()


# --- risk -----------------------------------------------------------------------------------------------------------


def risk_state(settings: Settings, audit: str) -> dict[str, Any]:
    """The breakers in force and the trip/reset history of a run's risk audit log. ``audit`` is a path relative to
    the data folder (a client never names an arbitrary file of the machine)."""
    root = settings.data_dir.resolve()
    path = (root / audit).resolve()
    if Path(audit).is_absolute() or not path.is_relative_to(root):
        raise UserInputError(f"audit {audit!r}: give a path inside the data folder, relative to it (e.g. runs/audit.jsonl)")
    if not path.is_file():
        raise DataNotFound(f"no risk audit log {audit!r} in the data folder; pass the --audit file of a run")
    entries = read_audit(path)
    active = active_trips(entries)
    return {
        "audit": audit,
        "active_trips": [dict(e) for e in active.values()],
        "trips": sum(e.get("event") == "trip" for e in entries),
        "resets": sum(e.get("event") == "reset" for e in entries),
        "entries": entries,
    }


# --- realtime inference (a model replay run by the API's runtime node) -------------------------------------------


def realtime_run_config(
    settings: Settings,
    model_name: str,
    symbol: str,
    *,
    exchange: str | None = None,
    timeframe: str | None = None,
    enable_live_training: bool = True,
    mode: str = "replay",
    start: int | None = None,
    end: int | None = None,
    speed: float = 0.0,
    capital: float = 10_000.0,
    buy_threshold: float | None = None,
    sell_threshold: float | None = None,
    risk: dict[str, Any] | None = None,
    exchange_url: str | None = None,
) -> dict[str, Any]:
    """The run configuration (``pivotal run``'s TOML keys) of ``POST /api/realtime-inference/start``: strategy
    ``model`` trading checkpoint ``model_name`` on ``symbol``. The exchange and timeframe default to the ones the
    checkpoint was trained on (its data span), so a model is replayed on the series it knows. ``mode`` paper: the
    exchange's live feed (``exchange_url``: the REST base of a local test exchange, ``venue.rest_url``)."""
    if exchange_url is not None and mode != "paper":
        raise UserInputError(f"exchange_url applies to mode paper (the exchange's live feed); mode {mode} reads the store")
    from pivotal.services.train import show_checkpoint

    try:
        info = show_checkpoint(settings, model_name)
    except KeyError as exc:
        raise DataNotFound(str(exc.args[0])) from None
    span = info.data_span or {}
    spec = info.extra or {}
    exchange = exchange or span.get("exchange") or spec.get("exchange")
    timeframes = span.get("timeframes") or spec.get("timeframes") or []
    if isinstance(timeframes, str):
        timeframes = [timeframes]
    timeframe = timeframe or (timeframes[0] if timeframes else None)
    if not exchange:
        raise UserInputError(f"exchange: checkpoint {model_name!r} does not say which exchange it was trained on; give exchange")
    if not timeframe:
        raise UserInputError(f"timeframe: checkpoint {model_name!r} does not say its timeframe; give timeframe (e.g. 1h)")
    orchestrator = {k: v for k, v in (("buy_threshold", buy_threshold), ("sell_threshold", sell_threshold)) if v is not None}
    body: dict[str, Any] = {
        "mode": mode, "strategy": "model", "models": [{"name": model_name}], "exchange": exchange,
        "symbols": [symbol], "timeframes": [timeframe], "speed": speed, "capital": capital,
        "live_training": enable_live_training, "orchestrator": orchestrator,
    }  # fmt: skip
    if start is not None:
        body["start"] = start
    if end is not None:
        body["end"] = end
    if risk is not None:
        body["risk"] = risk
    if mode == "paper":
        body.pop("speed")  # the feed's own pace
        if exchange_url is not None:
            body["venue"] = {"rest_url": exchange_url}
    return body


def prediction_event(output: dict[str, Any], close: float, timeframe_ms: int) -> dict[str, Any]:
    """A model output as the dashboard draws it: each level's predicted next pivot as a price and a time (the output
    holds ``price_offset`` = ln(price / close at t) and ``bars_until`` in bars of the model's timeframe)."""
    import math

    t = int(output["timestamp"])
    pivots = [
        {**p, "price": float(close * math.exp(float(p["price_offset"]))),
         "time": t + round(float(p["bars_until"]) * timeframe_ms)}
        for p in output.get("pivots") or []
    ]  # fmt: skip
    keep = ("model_name", "model_type", "symbol", "timestamp", "confidence", "action", "action_probabilities",
            "direction_vector", "direction_confidence")  # fmt: skip
    return {**{k: output[k] for k in keep if k in output}, "close": close, "pivots": pivots}


def stored_learning_stats(settings: Settings, names: list[str] | None = None) -> dict[str, Any]:
    """Per model name (all checkpoint names when ``names`` is None): the serving version, staleness per symbol and the
    trainer's last metrics line, as ``services.online`` reports them (None for a model never promoted)."""
    from pivotal.services.online import models_root, online_status
    from pivotal.services.train import list_checkpoints

    wanted = names if names is not None else sorted({c.name for c in list_checkpoints(settings)})
    return {name: online_status(models_root(settings), name) for name in wanted}


# --- order book (COB) heatmap over stored depth ------------------------------------------------------------------

HEATMAP_METRICS = ("imbalance", "volume", "spread")


def _no_depth(exchange: str, symbol: str) -> str:
    pair = symbol.split(":")[0].replace("/", "")
    return (
        f"no order-book data stored for {exchange} {symbol}; import its depth capture: pivotal data import "
        f"{pair}-book_snapshot.parquet {pair}-depth_updates.parquet (and {pair}-trades.parquet)"
    )


def cob_available(settings: Settings, exchange: str, symbol: str) -> dict[str, Any]:
    """Whether the store holds depth snapshots of the market (what a page asks before drawing a heatmap)."""
    store = open_store(settings)
    try:
        snapshots = store.depth_snapshots(exchange, symbol)
    finally:
        store.close()
    if snapshots.empty:
        return {"available": False, "snapshots": 0, "message": _no_depth(exchange, symbol)}
    return {"available": True, "snapshots": int(snapshots["last_update_id"].nunique()), "message": None}


def cob_heatmap(
    settings: Settings,
    exchange: str,
    symbol: str,
    start: int | None = None,
    end: int | None = None,
    metric: str = "imbalance",
    seconds: int = 300,
    buckets: int = 10,
) -> dict[str, Any]:
    """The per-second COB heatmap of ``[start, end)`` (its newest ``seconds`` rows) from the depth stored by ``pivotal
    data import``: ``values[row][bucket]`` of ``metric`` over the ``±buckets`` around the mid (``spread``: one value
    per row). ``DataNotFound`` naming the files to import when the store has no depth of that market."""
    from pivotal.features.cob import CobConfig
    from pivotal.services.cob import compute_cob, heatmap_of, load_cob_inputs

    if metric not in HEATMAP_METRICS:
        raise UserInputError(f"metric {metric!r}: use one of {', '.join(HEATMAP_METRICS)}")
    check_range(start, end)
    config = CobConfig.for_symbol(symbol)
    store = open_store(settings)
    try:
        inputs = load_cob_inputs(exchange, symbol, store=store, start=start, end=end)
    except DataNotFound:
        raise DataNotFound(_no_depth(exchange, symbol)) from None
    finally:
        store.close()
    rows = compute_cob(inputs, config, start, end).features
    if len(rows) == 0:
        raise DataNotFound(f"no COB rows of {exchange} {symbol} in that range; the stored depth covers other times")
    heat = heatmap_of(rows, seconds, buckets)

    def finite(a: np.ndarray) -> list[Any]:
        return [None if not np.isfinite(x) else float(x) for x in a]

    values: list[Any]
    if metric == "spread":
        values = finite(np.asarray(heat.spread, np.float64))
    else:
        matrix = np.asarray(heat.imbalance if metric == "imbalance" else heat.volume, np.float64)
        values = [finite(row) for row in matrix]
    return {
        "exchange": exchange, "symbol": symbol, "metric": metric, "bucket_size": config.bucket_size,
        "ts": np.asarray(heat.ts, np.int64).tolist(), "offsets": np.asarray(heat.offsets, np.int64).tolist(),
        "low_price": finite(np.asarray(heat.prices, np.float64)[:, 0]) if len(heat.ts) else [],
        "values": values, "first_ts": int(rows.ts[0]), "last_ts": int(rows.ts[-1]), "rows": len(rows),
    }  # fmt: skip
