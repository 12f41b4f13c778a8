"""Feed implementations: historical (the market store / candle files) and live (ccxt.pro, ``feeds.live``; ccxt is
imported only when a live feed runs)."""

from pivotal.runtime.feeds.historical import HistoricalFeed
from pivotal.runtime.feeds.live import FeedHealth, LiveFeed, LiveFeedError, backoff_delay, live_feed_for

__all__ = ["FeedHealth", "HistoricalFeed", "LiveFeed", "LiveFeedError", "backoff_delay", "live_feed_for"]
