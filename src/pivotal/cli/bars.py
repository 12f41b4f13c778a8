"""Bars for a command from ``--input FILE`` or a stored series (``--exchange/--symbol/--timeframe``), one of the two.

A thin wrapper over ``pivotal.data.loaders``: argument checks and printing only; the loader validates.
"""

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
    from pivotal.core.errors import PivotalError
    from pivotal.data.backends import open_store  # pandas, pyarrow: lazy for a fast --help
    from pivotal.data.loaders import check_range, check_timeframe, load_candles, load_candles_file

    start_ms, end_ms = parse_time(start), parse_time(end)
    try:
        if input_file is not None:
            if exchange or symbol:
                raise fail("use either --input FILE or --exchange/--symbol/--timeframe, not both")
            bars = load_candles_file(input_file, timeframe=timeframe, start=start_ms, end=end_ms)
            source = str(input_file)
        else:
            if not (exchange and symbol and timeframe):
                raise fail("name a stored series with --exchange, --symbol and --timeframe, or pass --input FILE")
            check_timeframe(timeframe)  # argument errors before the store is opened
            check_range(start_ms, end_ms)
            market = open_store(settings_from(data_dir, store))
            try:
                bars = load_candles(market, exchange, symbol, timeframe, start=start_ms, end=end_ms)
            finally:
                market.close()
            source = f"{exchange} {symbol} {timeframe}"
    except PivotalError as exc:
        raise fail(str(exc)) from None
    if len(bars) == 0:
        raise fail(f"no bars in {source} between --start {start or '(first)'} and --end {end or '(last)'}; widen the range")
    return bars, source
