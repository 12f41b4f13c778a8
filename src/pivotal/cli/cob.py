"""`pivotal cob features|heatmap`: per-second order-book (COB) features and their heatmap from stored depth."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from pivotal.cli.common import DataDirOption, StoreOption, console, err_console, parse_time, settings_from

if TYPE_CHECKING:
    from pivotal.services.cob import CobResult

app = typer.Typer(
    help="Order-book (COB) features: exact book rebuild from stored depth, 1 s buckets, heatmap.", no_args_is_help=True
)

ExchangeOpt = typer.Option(..., "--exchange", "-e", help="Exchange id as stored, e.g. binance or binanceusdm.")
SymbolOpt = typer.Option(..., "--symbol", "-s", help="Unified symbol, e.g. BTC/USDT or BTC/USDT:USDT.")
StartOpt = typer.Option(None, "--start", help="First second (UTC date/time or epoch ms), inclusive.")
EndOpt = typer.Option(None, "--end", help="End (UTC date/time or epoch ms), exclusive.")
FilesOpt = typer.Option(
    None,
    "--files",
    help="Read a folder in the shared Parquet layout (<SYMBOL>-book_snapshot/-depth_updates/-trades) instead of the store.",
)
BucketOpt = typer.Option(None, "--bucket-size", help="Price bucket size in quote units (default: BTC 10, ETH 1).")


def _compute(
    exchange: str, symbol: str, start: str | None, end: str | None, files: Path | None, bucket_size: float | None,
    data_dir: Path | None, store: str | None,
) -> CobResult:  # fmt: skip
    from pivotal.data.backends import open_store
    from pivotal.features.cob import CobConfig
    from pivotal.services.cob import compute_cob, load_cob_inputs

    lo, hi = parse_time(start), parse_time(end)
    config = CobConfig.for_symbol(symbol, bucket_size)
    if files is not None:
        inputs = load_cob_inputs(exchange, symbol, files=files, start=lo, end=hi)
    else:
        market = open_store(settings_from(data_dir, store))
        try:
            inputs = load_cob_inputs(exchange, symbol, store=market, start=lo, end=hi)
        finally:
            market.close()
    result = compute_cob(inputs, config, lo, hi)
    for gap in result.gaps:
        err_console.print(f"[yellow]warning:[/] {gap}", markup=True, highlight=False, soft_wrap=True)
    return result


@app.command("features")
def features(
    exchange: str = ExchangeOpt,
    symbol: str = SymbolOpt,
    out: Path = typer.Option(..., "--out", "-o", help="Output file: .parquet or .csv."),
    start: str | None = StartOpt,
    end: str | None = EndOpt,
    files: Path | None = FilesOpt,
    bucket_size: float | None = BucketOpt,
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Per-second COB features (±20 buckets, imbalance MAs, aggressor ratio; each row with known_at) to a file."""
    from pivotal.services.cob import write_features

    result = _compute(exchange, symbol, start, end, files, bucket_size, data_dir, store)
    rows = write_features(result.features, out)
    console.print(f"{rows} COB rows of {exchange} {symbol} written to {out}", highlight=False)


@app.command("heatmap")
def heatmap(
    exchange: str = ExchangeOpt,
    symbol: str = SymbolOpt,
    out: Path = typer.Option(..., "--out", "-o", help="Output PNG file."),
    start: str | None = StartOpt,
    end: str | None = EndOpt,
    seconds: int = typer.Option(300, "--seconds", min=1, help="Time axis: the last N seconds before --end."),
    buckets: int = typer.Option(10, "--buckets", min=1, max=20, help="Buckets on each side of the mid."),
    files: Path | None = FilesOpt,
    bucket_size: float | None = BucketOpt,
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """PNG heatmap (time × price bucket) of imbalance and volume, with the spread."""
    from pivotal.services.cob import heatmap_of, render_heatmap

    result = _compute(exchange, symbol, start, end, files, bucket_size, data_dir, store)
    path = render_heatmap(heatmap_of(result.features, seconds, buckets), out, f"{exchange} {symbol}")
    console.print(f"heatmap of {min(seconds, len(result.features))} s written to {path}", highlight=False)
