"""The consolidated book (pure): exact merged levels, per-venue shares, best bid/ask across venues, cross-venue
spreads and symbol normalization, on hand-written books."""

from __future__ import annotations

import numpy as np
import pytest

from pivotal.core.errors import UserInputError
from pivotal.data.orderbook.book import OrderBook
from pivotal.data.orderbook.consolidated import consolidate, normalize_symbol


def book(bids: list[tuple[float, float]], asks: list[tuple[float, float]]) -> OrderBook:
    b = OrderBook()
    b.apply_snapshot(1, bids, asks)
    return b


def test_levels_sum_across_venues_with_each_venues_share() -> None:
    spot = book([(100.0, 1.0), (99.0, 2.0)], [(101.0, 1.0), (102.0, 4.0)])
    perp = book([(100.5, 3.0), (99.0, 0.5)], [(101.0, 2.0), (103.0, 1.0)])
    c = consolidate("BTC/USDT:USDT", {"binance": spot, "binanceusdm": perp}, depth=3)
    assert c.symbol == "BTC/USDT" and c.venues == ("binance", "binanceusdm")
    np.testing.assert_array_equal(c.bids, [[100.5, 3.0], [100.0, 1.0], [99.0, 2.5]])
    np.testing.assert_array_equal(c.bid_share, [[0.0, 3.0], [1.0, 0.0], [2.0, 0.5]])
    np.testing.assert_array_equal(c.asks, [[101.0, 3.0], [102.0, 4.0], [103.0, 1.0]])
    np.testing.assert_array_equal(c.ask_share, [[1.0, 2.0], [4.0, 0.0], [0.0, 1.0]])
    assert c.best_bid == (100.5, 3.0, "binanceusdm") and c.best_ask == (101.0, 3.0, "binanceusdm")
    assert c.spread == 0.5
    assert c.cross_venue_spread() == {("binance", "binanceusdm"): 1.0, ("binanceusdm", "binance"): 0.5}
    assert c.depth_share("bid") == {"binance": 3.0 / 6.5, "binanceusdm": 3.5 / 6.5}


def test_crossed_venues_show_a_negative_spread_and_empty_sides_are_handled() -> None:
    a = book([(105.0, 1.0)], [(106.0, 1.0)])
    b = book([], [(104.0, 2.0)])
    c = consolidate("ETHUSDT", {"a": a, "b": b})
    assert c.spread == -1.0  # bid 105 on a, ask 104 on b
    assert c.cross_venue_spread() == {("a", "b"): -1.0}
    assert c.tops["b"].bid is None and c.tops["b"].ask == (104.0, 2.0)
    empty = consolidate("ETH/USDT", {"a": OrderBook()})
    assert empty.best_bid is None and empty.spread is None and empty.bids.shape == (0, 2)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("BTC/USDT:USDT", "BTC/USDT"),
        ("BTCUSDT", "BTC/USDT"),
        ("btc-usd", "BTC/USD"),
        ("ETH/BTC", "ETH/BTC"),
        ("BTC-USDT-SWAP", "BTC/USDT"),
        ("BTC-USDT", "BTC/USDT"),
    ],
)
def test_symbols_are_normalized(raw: str, expected: str) -> None:
    assert normalize_symbol(raw) == expected


def test_bad_symbol_and_depth_are_refused() -> None:
    with pytest.raises(UserInputError, match="cannot read symbol 'XYZ'"):
        normalize_symbol("XYZ")
    with pytest.raises(UserInputError, match="cannot read symbol 'BTC-USD-240329'"):
        normalize_symbol("BTC-USD-240329")  # a dated future is another instrument
    with pytest.raises(UserInputError, match="depth must be at least 1"):
        consolidate("BTC/USDT", {}, depth=0)
