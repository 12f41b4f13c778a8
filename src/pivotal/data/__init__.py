"""Market data lake: columnar candles/trades/depth, stores, importers, downloader, as-of queries."""

from pivotal.core.timeframes import TIMEFRAMES, timeframe_ms
from pivotal.data.candles import Candles

__all__ = ["TIMEFRAMES", "Candles", "timeframe_ms"]
