"""`pivotal data capture`: live order-book diffs, depth snapshots and trades into the store (ccxt.pro)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from pivotal.cli.common import DataDirOption, JsonOption, StoreOption, console, emit_json, fail, settings_from


def register(app: typer.Typer) -> None:
    """Add this module's command to the `data` app."""
    app.command("capture")(capture)


def capture(
    exchange: str = typer.Option("binance", "--exchange", "-e", help="ccxt.pro exchange id: binance (spot) or binanceusdm."),
    symbols: str = typer.Option(..., "--symbols", "-s", help="Comma-separated unified symbols, e.g. BTC/USDT,ETH/USDT."),
    depth: bool = typer.Option(False, "--depth", help="Capture diff-depth messages and REST snapshots (default: both kinds)."),
    trades: bool = typer.Option(False, "--trades", help="Capture trades (default: both kinds)."),
    duration: float | None = typer.Option(None, "--duration", help="Stop after this many seconds (default: until Ctrl-C)."),
    rest_url: str | None = typer.Option(
        None, "--rest-url", help="REST base of a local test exchange, e.g. http://127.0.0.1:PORT."
    ),
    ws_url: str | None = typer.Option(None, "--ws-url", help="Its WebSocket base (default: ws://<rest host>/ws)."),
    snapshot_limit: int = typer.Option(1000, "--snapshot-limit", help="Levels per side of each REST depth snapshot."),
    spool_mb: int = typer.Option(1024, "--spool-mb", help="Bound of the on-disk queue used while the store is down."),
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
    as_json: bool = JsonOption,
) -> None:
    """Stream order-book diffs (sequence-checked, resynced from a REST snapshot on any gap) and trades into the store;
    batches the store refuses wait in an on-disk queue under the data directory and are written first when it returns."""
    from pivotal.core.errors import PivotalError
    from pivotal.data.backends import open_store
    from pivotal.runtime.capture import run_capture

    names = [s.strip() for s in symbols.split(",") if s.strip()]
    if not names:
        raise fail("--symbols: give at least one symbol, e.g. BTC/USDT")
    if duration is not None and duration <= 0:
        raise fail(f"--duration must be > 0 seconds (got {duration})")
    with_depth, with_trades = (depth, trades) if (depth or trades) else (True, True)
    settings = settings_from(data_dir, store)
    try:
        market_store = open_store(settings)
        try:
            report = run_capture(
                market_store,
                settings.data_dir / "capture-spool" / exchange,
                exchange,
                names,
                depth=with_depth,
                trades=with_trades,
                rest_url=rest_url,
                ws_url=ws_url,
                duration_s=duration,
                spool_bytes=spool_mb << 20,
                snapshot_limit=snapshot_limit,
            )
        finally:
            market_store.close()
    except PivotalError as exc:
        raise fail(str(exc)) from None
    if as_json:
        from dataclasses import asdict

        emit_json(asdict(report))
        return
    table = Table("symbol", "depth msgs", "duplicates", "gaps", "resyncs", "snapshots", "trades", title=f"{exchange} capture")
    for s in names:
        c = report.depth[s]
        table.add_row(s, str(c.messages), str(c.duplicates), str(c.gaps), str(c.resyncs), str(c.snapshots), str(report.trades[s]))
    console.print(table)
    w = report.writer
    console.print(
        f"reconnects {report.reconnects}, rollovers {report.rollovers}, trade id gaps {report.trade_gaps}; "
        f"store: {w.batches} batches / {w.rows} rows written, {w.spooled} spooled during outages, {w.drained} drained, "
        f"{report.spooled_pending} still spooled"
    )
    if report.spooled_pending:
        console.print("the store refused some batches; they are kept on disk and written first by the next capture")
