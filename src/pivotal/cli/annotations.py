"""`pivotal annotations list|export`: chart annotations (trend-line verdicts of model predictions, manual marks).

Argument parsing and printing only; the use case is ``pivotal.services.annotations``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from pivotal.cli.common import DataDirOption, JsonOption, StoreOption, console, emit_json, fail, parse_time, settings_from

app = typer.Typer(help="Chart annotations: trend-line verdicts of predictions and manual marks.", no_args_is_help=True)

SourceOpt = typer.Option(None, "--source", help="Only this source: trendline or manual.")
SymbolOpt = typer.Option(None, "--symbol", "-s", help="Only this symbol, e.g. BTC/USDT.")
TimeframeOpt = typer.Option(None, "--timeframe", "-t", help="Only this timeframe, e.g. 1m.")
ModelOpt = typer.Option(None, "--model", help="Only verdicts on this model name.")
VerdictOpt = typer.Option(None, "--verdict", help="Only validated or refuted.")
TagOpt = typer.Option(None, "--tag", help="Only annotations carrying this tag (e.g. L2H, price).")
StartOpt = typer.Option(None, "--start", help="Entry time from (inclusive): YYYY-MM-DD[THH:MM] UTC or epoch ms.")
EndOpt = typer.Option(None, "--end", help="Entry time until (exclusive): YYYY-MM-DD[THH:MM] UTC or epoch ms.")


def _where(
    source: str | None, symbol: str | None, tf: str | None, model: str | None, verdict: str | None, tag: str | None,
    start: str | None, end: str | None,
) -> Any:  # fmt: skip
    from pivotal.data.state.annotations import SOURCES, VERDICTS, AnnotationFilter

    if source is not None and source not in SOURCES:
        raise fail(f"--source {source!r} is not known; use one of {', '.join(SOURCES)}")
    if verdict is not None and verdict not in VERDICTS:
        raise fail(f"--verdict {verdict!r} is not known; use one of {', '.join(VERDICTS)}")
    return AnnotationFilter(source, symbol, tf, model, None, verdict, parse_time(start), parse_time(end), tag)


def _iso(ms: int | None) -> str:
    return "" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


@app.command("list")
def list_cmd(
    source: str | None = SourceOpt,
    symbol: str | None = SymbolOpt,
    timeframe: str | None = TimeframeOpt,
    model: str | None = ModelOpt,
    verdict: str | None = VerdictOpt,
    tag: str | None = TagOpt,
    start: str | None = StartOpt,
    end: str | None = EndOpt,
    limit: int = typer.Option(100, "--limit", help="Show the newest N (oldest first)."),
    as_json: bool = JsonOption,
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Stored annotations, filtered by source, symbol, timeframe, model, verdict, tag and entry time."""
    from pivotal.services.annotations import list_annotations

    where = _where(source, symbol, timeframe, model, verdict, tag, start, end)
    rows = list_annotations(settings_from(data_dir, store), where, limit)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        console.print("no annotations stored for this filter (trend-line validation stores verdicts when saved)")
        return
    table = Table("id", "source", "symbol tf", "entry → exit (UTC)", "dir", "verdict", "model/version", "notes")
    for r in rows:
        exit_price = "" if r["exit_price"] is None else format(r["exit_price"], "g")
        table.add_row(
            r["id"],
            r["source"],
            f"{r['symbol']} {r['timeframe']}",
            f"{_iso(r['entry_ts'])} {r['entry_price']:g}\n{_iso(r['exit_ts'])} {exit_price}",
            r["direction"] or "",
            r["verdict"] or "",
            f"{r['model_name']}/{r['model_version']}" if r["model_name"] else "",
            r["notes"],
        )
    console.print(table)


@app.command("export")
def export_cmd(
    fmt: str = typer.Option("json", "--format", help="json or csv."),
    out: Path | None = typer.Option(None, "--out", help="Write to this file (default: print to stdout)."),
    source: str | None = SourceOpt,
    symbol: str | None = SymbolOpt,
    timeframe: str | None = TimeframeOpt,
    model: str | None = ModelOpt,
    verdict: str | None = VerdictOpt,
    tag: str | None = TagOpt,
    start: str | None = StartOpt,
    end: str | None = EndOpt,
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Every annotation matching the filter as JSON or CSV (to stdout, or a file with --out)."""
    from pivotal.services.annotations import export_annotations

    if fmt not in ("json", "csv"):
        raise fail(f"--format {fmt!r} is not supported; use json or csv")
    where = _where(source, symbol, timeframe, model, verdict, tag, start, end)
    text, n = export_annotations(settings_from(data_dir, store), where, fmt, out)  # type: ignore[arg-type]
    if out is None:
        typer.echo(text, nl=False)
    else:
        console.print(f"wrote {n} annotation(s) to {out}")
