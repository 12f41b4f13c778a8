"""`pivotal data info | gaps | export`: coverage, the gap ledger, and Parquet export of stored candles."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich import box
from rich.table import Table

from pivotal.cli.common import DataDirOption, JsonOption, StoreOption, console, emit_json, fail, parse_time, settings_from

if TYPE_CHECKING:
    from pivotal.data.store import Holding, SeriesInfo


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `data` app."""
    app.command("info")(info)
    app.command("gaps")(gaps)
    app.command("export")(export)
    app.command("delete")(delete)
    app.command("verify")(verify)


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _duration(ms: int) -> str:
    days, rest = divmod(ms // 1000, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    return f"{days}d {hours:02d}:{minutes:02d}:{seconds:02d}"


def _when(ms: int, timeframe: str = "") -> str:
    """UTC open time; minutes suffice for every timeframe but 1s (keeps the tables within 80 columns)."""
    return _utc(ms) if timeframe == "1s" else _utc(ms)[:16]


def _compact_table(*columns: str, title: str) -> Table:
    """No outer border, one space between columns: the info tables fit 80 columns."""
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1), title_justify="left")
    for name in columns:
        table.add_column(name, justify="right" if name in _NUMERIC else "left", no_wrap=True)
    return table


_NUMERIC = ("rows", "gaps", "missing", "count")


def info(
    as_json: bool = JsonOption,
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """What the store holds: candle coverage (first/last bar in UTC, rows, gaps, missing bars) per series, then trades,
    depth snapshots and depth updates per market."""
    from pivotal.services.data import holdings  # pandas/pyarrow: not at --help time

    series, others = holdings(settings_from(data_dir, store))
    if as_json:
        emit_json(_info_document(series, others))
        return
    if not series and not others:
        console.print("The store holds no candles yet; add some with `pivotal data import PATH` or `pivotal data download`.")
        return
    for exchange in sorted({s.exchange for s in series}):
        table = _compact_table(
            "symbol", "tf", "first (UTC)", "last (UTC)", "rows", "gaps", "missing", title=f"Candles · {exchange}"
        )
        for s in (s for s in series if s.exchange == exchange):
            first, last = _when(s.first_ts, s.timeframe), _when(s.last_ts, s.timeframe)
            table.add_row(s.symbol, s.timeframe, first, last, f"{s.rows:,}", str(s.gaps), f"{s.missing_bars:,}")
        console.print(table)
    for exchange in sorted({h.exchange for h in others}):
        table = _compact_table(
            "kind", "symbol", "first (UTC)", "last (UTC)", "count", "rows", title=f"Trades and order book · {exchange}"
        )
        for h in (h for h in others if h.exchange == exchange):
            rows = "" if h.kind == "trades" else f"{h.rows:,}"  # trades: one row each
            table.add_row(h.kind.replace("depth ", ""), h.symbol, _when(h.first), _when(h.last), f"{h.units:,}", rows)
        console.print(table)


def _info_document(series: list[SeriesInfo], others: list[Holding]) -> dict[str, Any]:
    """``data info --json``: times as epoch ms and ISO UTC, one list per kind."""

    def iso(ms: int) -> str:
        return _utc(ms).replace(" ", "T") + "Z"

    doc: dict[str, Any] = {"candles": [{**asdict(s), "first": iso(s.first_ts), "last": iso(s.last_ts)} for s in series]}
    for kind in ("trades", "depth snapshots", "depth updates"):
        doc[kind.replace(" ", "_")] = [
            {
                "exchange": h.exchange,
                "symbol": h.symbol,
                "first_ts": h.first,
                "last_ts": h.last,
                "first": iso(h.first),
                "last": iso(h.last),
                "count": h.units,
                "rows": h.rows,
            }
            for h in others
            if h.kind == kind
        ]
    return doc


def gaps(
    exchange: str | None = typer.Option(None, "--exchange", "-e", help="Only this ccxt exchange id."),
    symbol: str | None = typer.Option(None, "--symbol", "-s", help="Only this unified symbol, e.g. BTC/USDT."),
    timeframe: str | None = typer.Option(None, "--timeframe", "-t", help="Only this timeframe, e.g. 1m."),
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """The missing spans of each stored series: first missing bar to the next stored bar."""
    from pivotal.core.errors import PivotalError
    from pivotal.services.data import gaps as find_gaps

    try:
        found = find_gaps(settings_from(data_dir, store), exchange, symbol, timeframe)
    except PivotalError as exc:
        raise fail(str(exc)) from None
    table = Table("exchange", "symbol", "timeframe", "first missing (UTC)", "next stored (UTC)", "missing bars", "span")
    for s, series_gaps in found:
        for gap in series_gaps:
            span = _duration(gap.end - gap.start)
            table.add_row(s.exchange, s.symbol, s.timeframe, _utc(gap.start), _utc(gap.end), f"{gap.missing:,}", span)
    if table.row_count == 0:
        console.print(f"No gaps in the {len(found)} selected series.")
        return
    console.print(table)


def export(
    exchange: str = typer.Option(..., "--exchange", "-e", help="ccxt exchange id, e.g. binance."),
    symbol: str = typer.Option(..., "--symbol", "-s", help="Unified symbol, e.g. BTC/USDT."),
    timeframe: str = typer.Option(..., "--timeframe", "-t", help="Timeframe, e.g. 1h."),
    out: Path = typer.Option(..., "--out", help="Parquet file to write."),
    start: str | None = typer.Option(None, "--start", help="First open time (inclusive): YYYY-MM-DD[THH:MM] UTC or epoch ms."),
    end: str | None = typer.Option(None, "--end", help="Open times before this (exclusive)."),
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Write one stored candle series (optionally a time range) to a Parquet file."""
    from pivotal.core.errors import PivotalError
    from pivotal.services.data import export as export_series

    settings = settings_from(data_dir, store)
    try:
        candles = export_series(settings, exchange, symbol, timeframe, out, parse_time(start), parse_time(end))
    except PivotalError as exc:
        raise fail(str(exc)) from None
    console.print(f"Wrote {len(candles):,} bars ({_utc(int(candles.ts[0]))} → {_utc(int(candles.ts[-1]))} UTC) to {out}")


def delete(
    exchange: str = typer.Option(..., "--exchange", "-e", help="ccxt exchange id, e.g. binance."),
    symbol: str = typer.Option(..., "--symbol", "-s", help="Unified symbol, e.g. BTC/USDT."),
    timeframe: str = typer.Option(..., "--timeframe", "-t", help="Timeframe, e.g. 1h."),
    start: str | None = typer.Option(None, "--start", help="Delete from this open time (inclusive); default: the first bar."),
    end: str | None = typer.Option(None, "--end", help="Delete open times before this (exclusive); default: past the last."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Delete a stored candle series, or a time range of it (one transaction; asks first unless --yes)."""
    from pivotal.services.data import bars_to_delete, delete_candles

    settings = settings_from(data_dir, store)
    lo, hi = parse_time(start), parse_time(end)
    span = "" if lo is None and hi is None else f" from {_utc(lo) if lo is not None else 'the first bar'} to "
    span += "" if lo is None and hi is None else (f"{_utc(hi)} (exclusive)" if hi is not None else "the last bar")
    what = f"{exchange} {symbol} {timeframe}{span}"
    count = bars_to_delete(settings, exchange, symbol, timeframe, lo, hi)
    if count == 0:
        typer.echo(f"Nothing to delete: no stored bars of {what}.")
        return
    if not yes and not typer.confirm(f"Delete {count:,} bars of {what}?"):
        raise fail("not deleted")
    deleted = delete_candles(settings, exchange, symbol, timeframe, lo, hi)
    typer.echo(f"Deleted {deleted:,} bars of {what}.")


def verify(data_dir: Path | None = DataDirOption, store: str | None = StoreOption) -> None:
    """Check every stored series: sorted unique open times on the grid, sane times, OHLC consistency, volume, and
    a gap ledger that matches the bars. Exit code 1 when anything is wrong (each problem on one line)."""
    from pivotal.services.data import verify as verify_store

    checked, problems = verify_store(settings_from(data_dir, store))
    if not problems:
        console.print(f"OK: {checked} series checked, no problems.")
        return
    for problem in problems:
        typer.echo(str(problem))
    raise fail(
        f"{len(problems)} problem(s) in {checked} series; repair with `pivotal data delete` (a series or a range) and "
        "import the data again"
    )
