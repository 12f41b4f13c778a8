"""Exact L2 order-book reconstruction from a depth snapshot plus diff messages (pure computation, no I/O).

``OrderBook`` follows Binance's update-id rules (spot ``U``/``u``, USD-M ``pu``) and raises ``SequenceGap`` instead of
papering over a missing message; ``DictOrderBook`` is the plain-Python reference with the same API.
"""

from pivotal.data.orderbook.book import OrderBook, SequenceGap
from pivotal.data.orderbook.reference import DictOrderBook

__all__ = ["DictOrderBook", "OrderBook", "SequenceGap"]
