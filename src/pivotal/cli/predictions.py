"""`pivotal predictions list|show|stats|outcomes|prune`: the inference history (every stored model prediction).

Argument parsing and printing only; the use case is ``pivotal.services.predictions``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from pivotal.cli.common import DataDirOption, JsonOption, StoreOption, console, emit_json, fail, parse_time, settings_from

app = typer.Typer(help="Inference history: every model prediction, its version and input; outcomes.", no_args_is_help=True)

ModelOpt = typer.Option(None, "--model", help="Only this model name.")
VersionOpt = typer.Option(None, "--version", help="Only this checkpoint version.")
SymbolOpt = typer.Option(None, "--symbol", "-s", help="Only this symbol, e.g. BTC/USDT.")
TimeframeOpt = typer.Option(None, "--timeframe", "-t", help="Only this timeframe, e.g. 1m.")
StartOpt = typer.Option(None, "--start", help="As-of time from (inclusive): YYYY-MM-DD[THH:MM] UTC or epoch ms.")
EndOpt = typer.Option(None, "--end", help="As-of time until (exclusive): YYYY-MM-DD[THH:MM] UTC or epoch ms.")


def _where(model: str | None, version: str | None, symbol: str | None, tf: str | None, start: str | None, end: str | None) -> Any:
    from pivotal.data.state.predictions import PredictionFilter

    return PredictionFilter(model, version, symbol, tf, parse_time(start), parse_time(end))


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


@app.command("list")
def list_cmd(
    model: str | None = ModelOpt,
    version: str | None = VersionOpt,
    symbol: str | None = SymbolOpt,
    timeframe: str | None = TimeframeOpt,
    start: str | None = StartOpt,
    end: str | None = EndOpt,
    limit: int = typer.Option(100, "--limit", help="Show the newest N (oldest first)."),
    as_json: bool = JsonOption,
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Stored predictions, filtered by model, version, symbol, timeframe and as-of time."""
    from pivotal.services.predictions import list_predictions

    rows = list_predictions(settings_from(data_dir, store), _where(model, version, symbol, timeframe, start, end), limit)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        console.print("no predictions stored for this filter (a run records them when an inference history is set)")
        return
    table = Table("as of (UTC)", "model/version", "symbol tf", "action conf", "input")
    for r in rows:
        table.add_row(
            _iso(r["as_of"]).replace(" ", "\n"),
            f"{r['model']}/{r['version']}",
            f"{r['symbol']} {r['timeframe']}",
            f"{r['action']} {r['confidence']:.2f}",
            f"{r['input_spec']} {r['input_hash'][:12]}",
        )
    console.print(table)


@app.command("show")
def show_cmd(
    model: str = typer.Argument(..., help="Model name."),
    symbol: str = typer.Argument(..., help="Symbol, e.g. BTC/USDT."),
    timeframe: str = typer.Argument(..., help="Timeframe, e.g. 1m."),
    as_of: str = typer.Argument(..., help="As-of time: YYYY-MM-DDTHH:MM[:SS] UTC or epoch ms."),
    version: str | None = VersionOpt,
    as_json: bool = typer.Option(False, "--json", help="Accepted; `show` always prints JSON."),
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Everything stored about one prediction (output, version, input reference) as JSON."""
    from pivotal.services.predictions import show_prediction

    at = parse_time(as_of)
    assert at is not None
    emit_json(show_prediction(settings_from(data_dir, store), model, symbol, timeframe, at, version))


@app.command("stats")
def stats_cmd(
    model: str | None = ModelOpt,
    version: str | None = VersionOpt,
    symbol: str | None = SymbolOpt,
    timeframe: str | None = TimeframeOpt,
    start: str | None = StartOpt,
    end: str | None = EndOpt,
    as_json: bool = JsonOption,
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Counts, time span, actions and mean confidence per model, version, symbol and timeframe."""
    from pivotal.services.predictions import prediction_stats

    rows = prediction_stats(settings_from(data_dir, store), _where(model, version, symbol, timeframe, start, end))
    if as_json:
        emit_json(rows)
        return
    if not rows:
        console.print("no predictions stored for this filter")
        return
    table = Table("model/version", "symbol tf", "count", "first → last (UTC)", "BUY/SELL/HOLD", "mean conf")
    for r in rows:
        table.add_row(
            f"{r['model_name']}/{r['model_version']}",
            f"{r['symbol']} {r['timeframe']}",
            str(r["count"]),
            f"{_iso(r['first_as_of'])}\n{_iso(r['last_as_of'])}",
            f"{r['buy']}/{r['sell']}/{r['hold']}",
            f"{r['mean_confidence']:.3f}",
        )
    console.print(table)


@app.command("outcomes")
def outcomes_cmd(
    symbol: str = typer.Option(..., "--symbol", "-s", help="Symbol whose stored candles score the predictions."),
    timeframe: str = typer.Option(..., "--timeframe", "-t", help="Timeframe of the predictions and candles."),
    model: str | None = ModelOpt,
    version: str | None = VersionOpt,
    start: str | None = StartOpt,
    end: str | None = EndOpt,
    exchange: str | None = typer.Option(None, "--exchange", "-e", help="Exchange of the candles (default: the configured one)."),
    save: bool = typer.Option(False, "--save", help="Store the outcomes (training samples with their known_at)."),
    as_json: bool = JsonOption,
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Hit rate per target (1/5/15/60 min returns, pivots per level) of stored predictions, counting only outcomes
    already known by the newest stored candle."""
    from pivotal.services.predictions import prediction_outcomes

    where = _where(model, version, symbol, timeframe, start, end)
    result = prediction_outcomes(settings_from(data_dir, store), where, exchange, save=save)
    if as_json:
        emit_json(result)
        return
    if not result:
        console.print("no outcome known yet for this filter")
        return
    table = Table("target", "scored", "hit rate")
    for target, s in result.items():
        table.add_row(target, str(s["count"]), f"{s['hit_rate']:.3f}")
    console.print(table)


@app.command("prune")
def prune_cmd(
    older_than_days: float = typer.Option(..., "--older-than-days", help="Delete predictions with an older as-of time."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Apply a retention policy: delete predictions older than N days."""
    from pivotal.services.predictions import prune_predictions

    if older_than_days <= 0:
        raise fail(f"--older-than-days must be > 0 (got {older_than_days})")
    if not yes and not typer.confirm(f"delete every prediction older than {older_than_days:g} days?"):
        raise typer.Exit(1)
    deleted = prune_predictions(settings_from(data_dir, store), older_than_days)
    console.print(f"deleted {deleted} prediction(s) older than {older_than_days:g} days")
