"""Bars for a command from ``--input FILE`` or a stored series (``--exchange/--symbol/--timeframe``), one of the two."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pivotal.cli.common import fail, parse_time, settings_from

if TYPE_CHECKING:
    from pivotal.data.candles import Candles


def load_bars(
    data_dir: Path | None,
    store: str | None,
    exchange: str | None,
    symbol: str | None,
    timeframe: str | None,
    input_file: Path | None,
    start: str | None,
    end: str | None,
) -> tuple[Candles, str]:
    """Bars with ``start <= ts < end`` and a human name of their source; a clear CLI error for bad input."""
    from pivotal.structure.io import BarsError, load_bars_file, load_bars_store  # numba, scipy: lazy for a fast --help

    start_ms, end_ms = parse_time(start), parse_time(end)
    try:
        if input_file is not None:
            if exchange or symbol:
                raise fail("use either --input FILE or --exchange/--symbol/--timeframe, not both")
            bars, source = load_bars_file(input_file, start_ms, end_ms, timeframe), str(input_file)
        else:
            if not (exchange and symbol and timeframe):
                raise fail("name a stored series with --exchange, --symbol and --timeframe, or pass --input FILE")
            bars = load_bars_store(settings_from(data_dir, store), exchange, symbol, timeframe, start_ms, end_ms)
            source = f"{exchange} {symbol} {timeframe}"
    except BarsError as exc:
        raise fail(str(exc)) from None
    if len(bars) == 0:
        raise fail(f"no bars in {source} between --start {start or '(first)'} and --end {end or '(last)'}; widen the range")
    return bars, source
