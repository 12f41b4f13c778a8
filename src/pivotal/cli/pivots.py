"""`pivotal pivots compute|chart|update`: Williams pivots of a stored series or of a Parquet/CSV file."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from pivotal.cli.bars import load_bars
from pivotal.cli.common import OUT_ROOT, DataDirOption, StoreOption, console, fail, settings_from
from pivotal.cli.pivots_render import iso, render_csv, render_json, render_table

# The pivot engine (numba), the charts (matplotlib, plotly) and pivotal.data (pandas, pyarrow) are imported where
# they are used, so `--help` stays fast.
if TYPE_CHECKING:
    from pivotal.data.candles import Candles
    from pivotal.structure.types import PivotEvent, PivotParams, PivotSet

app = typer.Typer(help="Williams market-structure pivots (L1..L5): compute, draw, track.", no_args_is_help=True)


class Tie(StrEnum):
    first = "first"
    last = "last"
    strict = "strict"


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


ExchangeOpt = typer.Option(None, "--exchange", "-e", help="Stored series: exchange, e.g. binance.")
SymbolOpt = typer.Option(None, "--symbol", "-s", help="Stored series: symbol, e.g. BTC/USDT.")
TimeframeOpt = typer.Option(
    None, "--timeframe", "-t", help="Stored series: timeframe, e.g. 1h (for --input: overrides detection)."
)
InputOpt = typer.Option(None, "--input", "-i", help="Parquet/CSV file with timestamp|ts, open, high, low, close[, volume].")
StartOpt = typer.Option(None, "--start", help="First bar (UTC date/time or epoch ms), inclusive.")
EndOpt = typer.Option(None, "--end", help="End (UTC date/time or epoch ms), exclusive.")
KOpt = typer.Option(2, "--k", min=1, help="Bars on each side of a level-1 pivot (1 = Williams' 3-bar swing).")
MOpt = typer.Option(1, "--m", min=1, help="Same-type neighbours on each side at levels >= 2.")
LevelsOpt = typer.Option(5, "--levels", min=1, max=10, help="Number of levels.")
TieOpt = typer.Option(Tie.first, "--tie", help="Equal extremes: first, last or strict (no pivot).")
SkipOpt = typer.Option(False, "--skip-inside/--no-skip-inside", help="Ignore inside bars (Williams' inside-day rule).")


def _check_timeframe(timeframe: str | None) -> None:
    """Unknown names fail here, before any bars are read (``None``: detect it from an --input file)."""
    from pivotal.core.timeframes import TIMEFRAMES

    if timeframe is not None and timeframe not in TIMEFRAMES:
        raise fail(f"unknown timeframe {timeframe!r}; use one of: {' '.join(TIMEFRAMES)}")


def _compute(bars: Candles, params: PivotParams) -> tuple[PivotSet, list[PivotEvent]]:
    from pivotal.core.errors import PivotalError
    from pivotal.services.pivots import compute_pivots

    try:
        return compute_pivots(bars, params)
    except PivotalError as exc:
        raise fail(str(exc)) from None


def _params(k: int, m: int, levels: int, tie: Tie, skip_inside: bool) -> PivotParams:
    from pivotal.structure.types import PivotParams

    return PivotParams(k=k, m=m, levels=levels, tie=tie.value, skip_inside=skip_inside)


def _tf_ms(bars: Candles) -> int | None:
    from pivotal.core.timeframes import TIMEFRAMES

    return TIMEFRAMES.get(bars.timeframe)


@app.command()
def compute(
    exchange: str | None = ExchangeOpt,
    symbol: str | None = SymbolOpt,
    timeframe: str | None = TimeframeOpt,
    input_file: Path | None = InputOpt,
    start: str | None = StartOpt,
    end: str | None = EndOpt,
    k: int = KOpt,
    m: int = MOpt,
    levels: int = LevelsOpt,
    tie: Tie = TieOpt,
    skip_inside: bool = SkipOpt,
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, csv (one row per pivot) or json."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write csv/json here instead of stdout."),
    limit: int = typer.Option(50, "--limit", min=0, help="Table only: show the most recent N pivots (0 = all)."),
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Compute the pivots of every level; index/confirmed_at are bar positions in the selected range."""
    _check_timeframe(timeframe)
    bars, source = load_bars(data_dir, store, exchange, symbol, timeframe, input_file, start, end)
    pivots, events = _compute(bars, _params(k, m, levels, tie, skip_inside))
    tf_ms = _tf_ms(bars)
    if fmt == Format.table:
        if out is not None:
            raise fail("--out works with --format csv or json")
        for table in render_table(events, pivots, limit, f"{source} ({len(bars)} bars)"):
            console.print(table)
        return
    text = render_csv(events) if fmt == Format.csv else render_json(pivots, bars, tf_ms, source)
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text)
    console.print(f"wrote {len(events)} pivots to {out}", highlight=False)


@app.command()
def chart(
    exchange: str | None = ExchangeOpt,
    symbol: str | None = SymbolOpt,
    timeframe: str | None = TimeframeOpt,
    input_file: Path | None = InputOpt,
    start: str | None = StartOpt,
    end: str | None = EndOpt,
    k: int = KOpt,
    m: int = MOpt,
    levels: int = LevelsOpt,
    tie: Tie = TieOpt,
    skip_inside: bool = SkipOpt,
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Folder for the PNG and the HTML (default ./pivotal-out/pivots), or a .png path (the HTML goes next to it).",
    ),
    bars_shown: int | None = typer.Option(
        None,
        "--bars",
        min=10,
        help="Draw the last N bars (default: all of --start/--end, else the last 500); all bars feed the detector. "
        "More than 1500 are merged into fewer candles.",
    ),
    trend_level: int = typer.Option(2, "--trend-level", min=1, help="Level of the trend lines and the zigzag."),
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Draw candles, every pivot level, the confirmation lags and the current trend lines (PNG + HTML)."""
    from pivotal.cli.pivots_chart import ChartSpec, render_html, render_png
    from pivotal.core.errors import PivotalError
    from pivotal.services.pivots import chart_window

    png = _chart_path(out, exchange, symbol, timeframe, input_file)
    _check_timeframe(timeframe)
    bars, source = load_bars(data_dir, store, exchange, symbol, timeframe, input_file, start, end)
    params = _params(k, m, levels, tie, skip_inside)
    pivots, _ = _compute(bars, params)
    if bars_shown is None:
        bars_shown = len(bars) if (start is not None or end is not None) else DEFAULT_CHART_BARS
    first = max(0, len(bars) - bars_shown)
    try:
        window = chart_window(bars, pivots, first)
    except PivotalError as exc:
        raise fail(str(exc)) from None
    tf_ms = _tf_ms(bars)
    merged = f"; 1 candle = {window.group} bars" if window.group > 1 else ""
    title = (
        f"{source}: Williams pivots k={k} m={m} tie={tie.value} skip_inside={skip_inside}  "
        f"({window.shown} of {len(bars)} loaded bars drawn{merged}; L1 lag = {k} bars)"
    )
    spec = ChartSpec(
        window.bars,
        window.pivots,
        0,
        title,
        trend_level=min(trend_level, levels),
        tf_ms=None if tf_ms is None else tf_ms * window.group,
    )
    png.parent.mkdir(parents=True, exist_ok=True)
    html = png.with_suffix(".html")
    render_png(spec, png)
    render_html(spec, html)
    console.print(
        f"drew {window.shown} bars {iso(window.first_ts)[:16]} → {iso(window.last_ts)[:16]} UTC{merged}", highlight=False
    )
    console.print(f"wrote {png} and {html}", highlight=False)


DEFAULT_CHART_BARS = 500


def _chart_path(
    out: Path | None, exchange: str | None, symbol: str | None, timeframe: str | None, input_file: Path | None
) -> Path:
    """``--out`` as given when it names a .png; otherwise ``<folder>/<series>-pivots.png`` in ``--out`` or
    ``./pivotal-out/pivots`` (the output-folder convention of every command)."""
    if out is not None and out.suffix:
        if out.suffix.lower() != ".png":
            raise fail(f"--out must be a folder or end in .png (got {out.name}); the HTML is written next to the PNG")
        return out
    if input_file is not None:
        stem = input_file.stem
    else:
        stem = "-".join(part for part in (exchange, (symbol or "").replace("/", ""), timeframe) if part) or "series"
    return (out if out is not None else OUT_ROOT / "pivots") / f"{stem}-pivots.png"


@app.command()
def update(
    exchange: str = typer.Option(..., "--exchange", "-e", help="Exchange of the stored series."),
    symbol: str = typer.Option(..., "--symbol", "-s", help="Symbol of the stored series."),
    timeframe: str = typer.Option(..., "--timeframe", "-t", help="Timeframe of the stored series."),
    k: int = KOpt,
    m: int = MOpt,
    levels: int = LevelsOpt,
    tie: Tie = TieOpt,
    skip_inside: bool = SkipOpt,
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Feed the closed candles stored since the last run to the series' detector; persist new pivots and state.

    Pivots go to table ``pivots`` (never rewritten), the detector state to ``pivot_state`` (``PivotRepository``);
    positions count bars from the first bar the tracker saw. Run it after every import/download (e.g. from cron).
    """
    from pivotal.core.errors import PivotalError
    from pivotal.services.pivots import update_pivots

    _check_timeframe(timeframe)
    try:
        result = update_pivots(
            settings_from(data_dir, store), exchange, symbol, timeframe, _params(k, m, levels, tie, skip_inside)
        )
    except PivotalError as exc:
        raise fail(str(exc)) from None
    summary = ", ".join(f"{label} {count}" for label, count in result.counts().items()) or "none"
    console.print(
        f"{exchange} {symbol} {timeframe}: {len(result.events)} new pivots ({summary}); params {result.params_hash}",
        highlight=False,
    )
