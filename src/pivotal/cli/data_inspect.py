"""`pivotal data info | gaps | export`: coverage, the gap ledger, and Parquet export of stored candles."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from pivotal.cli.common import DataDirOption, StoreOption, console, fail, parse_time, settings_from

if TYPE_CHECKING:
    from pivotal.data.candles import Candles
    from pivotal.data.store import MarketStore, SeriesInfo


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


def _selected(series: list[SeriesInfo], exchange: str | None, symbol: str | None, timeframe: str | None) -> list[SeriesInfo]:
    return [
        s
        for s in series
        if (exchange is None or s.exchange == exchange)
        and (symbol is None or s.symbol == symbol)
        and (timeframe is None or s.timeframe == timeframe)
    ]


def _open(data_dir: Path | None, store: str | None) -> MarketStore:
    from pivotal.data.backends import open_store  # pivotal.data loads pandas/pyarrow: not at --help time

    return open_store(settings_from(data_dir, store))


def info(data_dir: Path | None = DataDirOption, store: str | None = StoreOption) -> None:
    """Coverage of every stored candle series: first/last bar (UTC open times), rows, gaps, missing bars."""
    market_store = _open(data_dir, store)
    try:
        series = market_store.series()
    finally:
        market_store.close()
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
    market_store = _open(data_dir, store)
    try:
        chosen = _selected(market_store.series(), exchange, symbol, timeframe)
        if not chosen:
            raise fail("no stored series match the filter; see `pivotal data info` for what is stored")
        table = Table("exchange", "symbol", "timeframe", "first missing (UTC)", "next stored (UTC)", "missing bars", "span")
        for s in chosen:
            for gap in market_store.gaps(s.exchange, s.symbol, s.timeframe):
                span = _duration(gap.end - gap.start)
                table.add_row(s.exchange, s.symbol, s.timeframe, _utc(gap.start), _utc(gap.end), f"{gap.missing:,}", span)
    finally:
        market_store.close()
    if table.row_count == 0:
        console.print(f"No gaps in the {len(chosen)} selected series.")
        return
    console.print(table)


def write_parquet(candles: Candles, out: Path) -> None:
    """The layout of ``../shared/data`` (``timestamp`` = open time in ms) with exchange/symbol/timeframe metadata;
    written to a temporary file first so a failed export never leaves a half-written file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"timestamp": candles.ts, **{f: getattr(candles, f) for f in ("open", "high", "low", "close", "volume")}})
    meta = {"exchange": candles.exchange, "symbol": candles.symbol, "timeframe": candles.timeframe, "volume_unit": "base"}
    table = table.replace_schema_metadata({k.encode(): v.encode() for k, v in meta.items()})
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    pq.write_table(table, partial, compression="zstd")
    os.replace(partial, out)


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
    from pivotal.core.timeframes import timeframe_ms

    try:
        timeframe_ms(timeframe)
    except ValueError as exc:
        raise fail(str(exc)) from None
    market_store = _open(data_dir, store)
    try:
        candles = market_store.candles(exchange, symbol, timeframe, parse_time(start), parse_time(end))
    finally:
        market_store.close()
    if len(candles) == 0:
        raise fail(f"no {exchange} {symbol} {timeframe} candles in that range; see `pivotal data info` for what is stored")
    write_parquet(candles, out)
    console.print(f"Wrote {len(candles):,} bars ({_utc(int(candles.ts[0]))} → {_utc(int(candles.ts[-1]))} UTC) to {out}")
