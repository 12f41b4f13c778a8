"""Market data lake: columnar candles/trades/depth, stores, importers, downloader, as-of queries."""

from pivotal.data.candles import Candles
from pivotal.core.timeframes import TIMEFRAMES, timeframe_ms

__all__ = ["TIMEFRAMES", "Candles", "timeframe_ms"]
