"""``pivotal testexchange serve``: run the local Binance-speaking test exchange on 127.0.0.1 (argument parsing and
printing only; the exchange is ``pivotal.testexchange``, imported when the command runs)."""

from __future__ import annotations

import time
from pathlib import Path

import typer

app = typer.Typer(
    help="The local test exchange: Binance's REST and WebSocket wire formats, replaying recorded data.", no_args_is_help=True
)


@app.command("serve")
def serve(
    data: Path = typer.Option(Path("../shared/data"), "--data", help="The shared/data folder with the recorded Binance files."),
    symbols: str = typer.Option("BTC/USDT", "--symbols", "-s", help="Comma-separated symbols, e.g. BTC/USDT,ETH/USDT."),
    timeframes: str = typer.Option("1m,1h", "--timeframes", "-t", help="Kline timeframes to replay (recorded files only)."),
    start: str | None = typer.Option(
        None, "--start", help="Replay start (ISO UTC or epoch ms; default: the newest trade capture)."
    ),
    speed: float = typer.Option(
        1.0, "--speed", help="Replay speed: 60 = one recorded minute per second; 0 = as fast as clients read."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (loopback by default)."),
    port: int = typer.Option(0, "--port", help="Port; 0 picks a free one."),
    api_key: str | None = typer.Option(
        None, "--api-key", help="The API key clients must send (default: made at start, printed)."
    ),
    api_secret: str | None = typer.Option(
        None, "--api-secret", help="The secret clients sign with (default: made at start, printed)."
    ),
    taker_fee: str = typer.Option("0.001", "--taker-fee", help="Taker fee rate (0.001 = 0.1 %)."),
    maker_fee: str = typer.Option("0.001", "--maker-fee", help="Maker fee rate."),
    serve_for: float = typer.Option(0.0, "--for", help="Stop after this many seconds (0: until Ctrl-C)."),
) -> None:
    """Serve the test exchange until interrupted; prints its URLs and credentials."""
    from pivotal.core.timeframes import parse_timeframes
    from pivotal.testexchange import TestExchange

    names = [s.strip() for s in symbols.split(",") if s.strip()]
    try:
        tfs = parse_timeframes(timeframes)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--timeframes") from None
    exchange = TestExchange(
        data,
        names,
        tfs,
        start,
        speed,
        host=host,
        port=port,
        api_key=api_key,
        api_secret=api_secret,
        taker_fee=taker_fee,
        maker_fee=maker_fee,
    )
    with exchange:
        urls = exchange.urls
        # plain lines (no wrapping) so that scripts can read the URLs
        typer.echo(f"rest {urls['rest']}")
        typer.echo(f"ws {urls['ws']}")
        typer.echo(f"stream {urls['stream']}")
        typer.echo(f"ws-api {urls['ws_api']}")
        typer.echo(f"symbols {','.join(names)} start {exchange.start_ms} speed {speed} "
                   f"api-key {exchange.api_key} secret {exchange.api_secret}")
        deadline = time.monotonic() + serve_for if serve_for > 0 else float("inf")
        try:
            while time.monotonic() < deadline:
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        except KeyboardInterrupt:
            pass
    typer.echo("test exchange stopped")
