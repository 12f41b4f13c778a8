"""The consolidator: two local test exchanges in one process, one replaying the recorded Binance BTCUSDT spot capture
(2024-08-08) and one the USD-M BTCUSDT perpetual capture (2024-07-18, with an injected dropped diff), each to its own
unmodified ccxt.pro client. The captures are three weeks apart, so this checks the plumbing — exact per-venue books,
health, staleness exclusion, the merge — and makes no market claim about the spread between them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pivotal.runtime.consolidator import Consolidator, VenueSpec
from pivotal.testexchange import Faults, TestExchange
from pivotal.testexchange.tape import SymbolData

pytestmark = [pytest.mark.realdata, pytest.mark.timeout(120)]


def _ticker_at(ticker: pd.DataFrame, u: int) -> tuple[float, float, float, float]:
    i = int(np.searchsorted(ticker.update_id.to_numpy(), u, side="right")) - 1
    row = ticker.iloc[i]
    return float(row.bid_px), float(row.bid_qty), float(row.ask_px), float(row.ask_qty)


def test_spot_and_usdm_consolidate_with_health(
    shared_data: Path,
    btc_spot: dict[str, SymbolData],
    btc_usdm: dict[str, SymbolData],
    book_ticker: pd.DataFrame,
    recorded_usdm: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    faults = Faults(streams={"btcusdt@depth@100ms": {150: "drop"}})
    spot = TestExchange(shared_data, ["BTC/USDT"], timeframes=("1m",), preloaded=btc_spot, speed=20)
    usdm = TestExchange(shared_data, ["BTC/USDT"], (), preloaded=btc_usdm, speed=20, faults=faults, venue="usdm")
    with spot, usdm:
        venues = [
            VenueSpec("binance", spot.ccxt_pro_client, ("BTC/USDT",)),
            VenueSpec("binanceusdm", usdm.ccxt_pro_client, ("BTC/USDT:USDT",), exchange_id="binanceusdm"),
        ]
        con = Consolidator(venues, depth=10, backoff_base_s=0.01)

        def enough(c: Consolidator) -> bool:
            h = c.health("BTC/USDT")
            return all(x.messages >= 300 and x.synced for x in h.values())

        asyncio.run(con.run(duration_s=60, until=enough))
    health = con.health("BTC/USDT")
    assert set(health) == {"binance", "binanceusdm"}
    assert health["binanceusdm"].symbol == "BTC/USDT:USDT"
    assert health["binance"].gaps == 0 and health["binanceusdm"].resyncs == health["binanceusdm"].gaps
    assert usdm.state is not None and len(usdm.state.hub.dropped) == 1
    # the USD-M recording is three weeks older: by exchange time it is far behind, and left out with the reason
    behind = health["binanceusdm"].behind_ms
    assert behind is not None and behind > 86_400_000 and health["binance"].behind_ms == 0
    assert health["binance"].included and not health["binanceusdm"].included
    assert health["binanceusdm"].reason == f"{behind} ms behind the freshest venue (limit 5000 ms)"
    assert con.book("BTC/USDT").venues == ("binance",)
    # each venue's live book is exact: its best bid/ask equals its own recorded bookTicker at its last update id
    tickers = {"binance": book_ticker, "binanceusdm": recorded_usdm[1]}
    tops = {}
    for venue, h in health.items():
        book = con.captures[venue].syncs[h.symbol].book
        bb, ba = book.best_bid(), book.best_ask()
        assert bb is not None and ba is not None
        assert (*bb, *ba) == _ticker_at(tickers[venue], book.last_update_id)
        tops[venue] = book.top(10)
    con.max_age_ms = 10**12  # accept the old recording: the merge itself
    merged = con.book("BTC/USDT:USDT")
    assert merged.symbol == "BTC/USDT" and merged.venues == ("binance", "binanceusdm")
    best_bid = max(float(t[0][0, 0]) for t in tops.values())
    best_ask = min(float(t[1][0, 0]) for t in tops.values())
    assert merged.best_bid is not None and merged.best_bid[0] == best_bid
    assert merged.best_ask is not None and merged.best_ask[0] == best_ask
    np.testing.assert_allclose(merged.bid_share.sum(axis=1), merged.bids[:, 1])
    assert set(merged.cross_venue_spread()) == {("binance", "binanceusdm"), ("binanceusdm", "binance")}
