"""`pivotal data info | gaps | export`: coverage, the gap ledger, and Parquet export of stored candles."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.table import Table

from pivotal.cli.common import DataDirOption, StoreOption, console, fail, parse_time, settings_from


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `data` app."""
    app.command("info")(info)
    app.command("gaps")(gaps)
    app.command("export")(export)


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _duration(ms: int) -> str:
    days, rest = divmod(ms // 1000, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    return f"{days}d {hours:02d}:{minutes:02d}:{seconds:02d}"


def info(data_dir: Path | None = DataDirOption, store: str | None = StoreOption) -> None:
    """Coverage of every stored candle series: first/last bar (UTC open times), rows, gaps, missing bars."""
    from pivotal.services.data import series as stored_series  # pandas/pyarrow: not at --help time

    series = stored_series(settings_from(data_dir, store))
    if not series:
        console.print("The store holds no candles yet; add some with `pivotal data import PATH` or `pivotal data download`.")
        return
    table = Table("exchange", "symbol", "timeframe", "first (UTC)", "last (UTC)", "rows", "gaps", "missing bars", title="Candles")
    for s in series:
        table.add_row(
            s.exchange,
            s.symbol,
            s.timeframe,
            _utc(s.first_ts),
            _utc(s.last_ts),
            f"{s.rows:,}",
            str(s.gaps),
            f"{s.missing_bars:,}",
        )
    console.print(table)


def gaps(
    exchange: str | None = typer.Option(None, "--exchange", help="Only this ccxt exchange id."),
    symbol: str | None = typer.Option(None, "--symbol", help="Only this unified symbol, e.g. BTC/USDT."),
    timeframe: str | None = typer.Option(None, "--timeframe", help="Only this timeframe, e.g. 1m."),
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
    exchange: str = typer.Option(..., "--exchange", help="ccxt exchange id, e.g. binance."),
    symbol: str = typer.Option(..., "--symbol", help="Unified symbol, e.g. BTC/USDT."),
    timeframe: str = typer.Option(..., "--timeframe", help="Timeframe, e.g. 1h."),
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
