"""The unmodified ccxt ``binance`` client against the test exchange: markets, recorded klines/depth/trades, signed
orders with fills and balances, Binance's rejects, REST faults, and reconciliation of an order whose response never
came."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import ccxt
import numpy as np
import pandas as pd
import pytest

from pivotal.data.loaders import load_candles_file
from pivotal.testexchange import Faults, TestExchange

pytestmark = pytest.mark.realdata

Make = Callable[..., TestExchange]
IN_TRADES = "2024-08-08T23:56:00"  # inside the recorded BTCUSDT trade capture (2024-08-08 23:54:15 → 00:05:05)
IN_TRADES_MS = 1723161360000


def _recorded_trades(shared: Path) -> pd.DataFrame:
    return pd.read_parquet(shared / "binance" / "BTCUSDT-trades.parquet").sort_values(["timestamp", "trade_id"], kind="stable")


def test_markets_carry_binances_filters(make_exchange: Make) -> None:
    with make_exchange() as ex:
        market = ex.ccxt_client().load_markets()["BTC/USDT"]
    assert market["precision"]["amount"] == 1e-05 and market["precision"]["price"] == 0.01
    assert market["limits"]["cost"]["min"] == 5.0 and market["limits"]["amount"]["min"] == 1e-05


def test_klines_are_the_recorded_bars_and_only_closed_ones(make_exchange: Make, shared_data: Path) -> None:
    recorded = load_candles_file(shared_data / "binance" / "BTCUSDT-1m-2024.parquet", timeframe="1m")
    with make_exchange() as ex:
        client = ex.ccxt_client()
        now = ex.now_ms()
        since = now - now % 60_000 - 300 * 60_000
        rows = client.fetch_ohlcv("BTC/USDT", "1m", since=since, limit=200)
        latest = client.fetch_ohlcv("BTC/USDT", "1m", limit=5)
    i = int(np.searchsorted(recorded.ts, since))
    expected = [
        [
            int(recorded.ts[j]),
            *(float(a[j]) for a in (recorded.open, recorded.high, recorded.low, recorded.close, recorded.volume)),
        ]
        for j in range(i, i + 200)
    ]
    assert rows == expected
    assert latest[-1][0] + 60_000 <= now < latest[-1][0] + 120_000  # the newest closed bar; the open one is not served


def test_order_book_is_the_recorded_snapshot(make_exchange: Make, shared_data: Path) -> None:
    snap = pd.read_parquet(shared_data / "binance" / "BTCUSDT-book_snapshot.parquet")
    with make_exchange() as ex:  # the default start is the snapshot's time
        book = ex.ccxt_client().fetch_order_book("BTC/USDT", limit=5)
    bids = snap[snap.side == "bid"].sort_values("level").head(5)
    asks = snap[snap.side == "ask"].sort_values("level").head(5)
    assert book["bids"] == [[p, q] for p, q in zip(bids.price, bids.qty, strict=True)]
    assert book["asks"] == [[p, q] for p, q in zip(asks.price, asks.qty, strict=True)]
    assert book["nonce"] == int(snap.last_update_id.iloc[0])


def test_recent_trades_are_the_recorded_ones_up_to_the_replay_clock(make_exchange: Make, shared_data: Path) -> None:
    recorded = _recorded_trades(shared_data)
    with make_exchange(start=IN_TRADES) as ex:
        trades = ex.ccxt_client().fetch_trades("BTC/USDT", limit=3)
    upto = recorded[recorded.timestamp <= IN_TRADES_MS].tail(3)
    assert [(int(t["id"]), t["price"], t["amount"], t["timestamp"]) for t in trades] == [
        (int(i), p, q, int(t)) for i, p, q, t in zip(upto.trade_id, upto.price, upto.qty, upto.timestamp, strict=True)
    ]


def test_market_order_fills_against_the_next_recorded_trades_partially_then_fully(make_exchange: Make, shared_data: Path) -> None:
    recorded = _recorded_trades(shared_data)
    nxt = recorded[recorded.timestamp >= IN_TRADES_MS].head(2)
    first, second = nxt.iloc[0], nxt.iloc[1]
    with make_exchange(start=IN_TRADES, balances={"USDT": 100_000, "BTC": 0}) as ex:
        client = ex.ccxt_client()
        order = client.create_order("BTC/USDT", "market", "buy", 0.05)
        assert order["status"] == "open" and order["filled"] == first.qty  # the first trade offered only 0.02 BTC
        ex.advance_to(int(second.timestamp))
        done = client.fetch_order(order["id"], "BTC/USDT")
        fills = client.fetch_my_trades("BTC/USDT")
        balance = client.fetch_balance()
    assert done["status"] == "closed" and done["filled"] == 0.05
    assert [(f["price"], f["amount"], f["timestamp"]) for f in fills] == [
        (first.price, first.qty, int(first.timestamp)),
        (second.price, 0.03, int(second.timestamp)),
    ]
    cost = Decimal(repr(float(first.price))) * Decimal("0.02") + Decimal(repr(float(second.price))) * Decimal("0.03")
    assert Decimal(str(balance["USDT"]["free"])) == Decimal(100_000) - cost
    assert balance["BTC"]["free"] == 0.04995  # 0.1 % taker commission taken in BTC


def test_limit_order_fills_only_once_a_trade_goes_through_its_price(make_exchange: Make, shared_data: Path) -> None:
    recorded = _recorded_trades(shared_data)
    later = recorded[recorded.timestamp > IN_TRADES_MS]
    limit = round(float(later.price.iloc[0]) - 10.0, 2)
    through = later[later.price < limit].iloc[0]
    with make_exchange(start=IN_TRADES, balances={"USDT": 1000, "BTC": 0}) as ex:
        client = ex.ccxt_client()
        order = client.create_order("BTC/USDT", "limit", "buy", 0.001, limit)
        ex.advance_to(int(through.timestamp) - 1)
        assert client.fetch_order(order["id"], "BTC/USDT")["status"] == "open"
        assert client.fetch_balance()["USDT"]["used"] == round(0.001 * limit, 8)
        ex.advance_to(int(through.timestamp))
        done = client.fetch_order(order["id"], "BTC/USDT")
        fill = client.fetch_my_trades("BTC/USDT")[0]
    assert done["status"] == "closed" and fill["price"] == limit and fill["takerOrMaker"] == "maker"
    assert fill["timestamp"] == int(through.timestamp)


def test_stop_loss_limit_is_accepted_and_rejected_when_it_would_trigger_at_once(make_exchange: Make) -> None:
    with make_exchange(start=IN_TRADES, balances={"USDT": 0, "BTC": 1}) as ex:
        client = ex.ccxt_client()
        order = client.create_order("BTC/USDT", "STOP_LOSS_LIMIT", "sell", 0.001, 50_000, params={"stopPrice": 51_000})
        assert order["status"] == "open" and client.fetch_order(order["id"], "BTC/USDT")["triggerPrice"] == 51_000
        with pytest.raises(ccxt.InvalidOrder, match=re.escape("Stop price would trigger immediately.")):
            client.create_order("BTC/USDT", "STOP_LOSS_LIMIT", "sell", 0.001, 70_000, params={"stopPrice": 70_000})


def test_repeated_client_order_id_is_rejected_with_binances_duplicate_error(make_exchange: Make) -> None:
    with make_exchange() as ex:
        client = ex.ccxt_client()
        client.create_order("BTC/USDT", "limit", "buy", 0.001, 50_000, params={"newClientOrderId": "pivotal-1"})
        with pytest.raises(ccxt.InvalidOrder, match=re.escape('"code":-2010,"msg":"Duplicate order sent."')):
            client.create_order("BTC/USDT", "limit", "buy", 0.001, 50_000, params={"newClientOrderId": "pivotal-1"})
        assert len(client.fetch_open_orders("BTC/USDT")) == 1


def test_bad_key_or_signature_is_refused(make_exchange: Make) -> None:
    with make_exchange() as ex:
        with pytest.raises(ccxt.AuthenticationError, match=re.escape("Signature for this request is not valid.")):
            ex.ccxt_client(secret="wrong").fetch_balance()  # pragma: allowlist secret
        with pytest.raises(ccxt.AuthenticationError, match="Invalid API-key"):
            ex.ccxt_client(apiKey="wrong").fetch_balance()  # pragma: allowlist secret


def test_rejects_insufficient_balance_and_filter_failure(make_exchange: Make) -> None:
    with make_exchange(balances={"USDT": 100, "BTC": 0}) as ex:
        client = ex.ccxt_client()
        with pytest.raises(ccxt.InsufficientFunds, match=re.escape("Account has insufficient balance for requested action.")):
            client.create_order("BTC/USDT", "market", "buy", 0.01)  # ~618 USDT
        with pytest.raises(ccxt.BadRequest, match="Filter failure: NOTIONAL"):
            client.create_order("BTC/USDT", "limit", "buy", 0.00001, 50_000)


def _raw_get(url: str) -> tuple[int, dict, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read())


def test_rest_faults_reach_the_client(make_exchange: Make) -> None:
    plan = {
        "/api/v3/ping": {1: "418", 2: "503"},
        "/api/v3/time": {1: "429", 2: "500", 3: "503"},
        "POST /api/v3/order": {1: "insufficient", 2: "filter"},
    }
    with make_exchange(faults=Faults(rest=plan, retry_after_s=7)) as ex:
        status, headers, body = _raw_get(ex.url + "/api/v3/ping")
        assert (status, headers["Retry-After"], body["code"]) == (418, "7", -1003) and "banned" in body["msg"]
        status, headers, body = _raw_get(ex.url + "/api/v3/ping")
        assert (status, headers["Retry-After"], body["code"]) == (503, "7", -1008)
        status, headers, body = _raw_get(ex.url + "/api/v3/time")
        assert (status, headers["Retry-After"], body["code"]) == (429, "7", -1003)
        client = ex.ccxt_client()
        with pytest.raises(ccxt.OperationFailed, match="-1001"):
            client.fetch_time()
        with pytest.raises(ccxt.ExchangeError, match="-1008"):  # ccxt maps -1001 and -1008 to these; both retryable
            client.fetch_time()
        assert client.fetch_time() == ex.now_ms()
        with pytest.raises(ccxt.InsufficientFunds):
            client.create_order("BTC/USDT", "limit", "buy", 0.001, 50_000)
        with pytest.raises(ccxt.InvalidOrder, match="Filter failure: LOT_SIZE"):
            client.create_order("BTC/USDT", "limit", "buy", 0.001, 50_000)
        assert ex.faults.served == [
            "/api/v3/ping#1:418",
            "/api/v3/ping#2:503",
            "/api/v3/time#1:429",
            "/api/v3/time#2:500",
            "/api/v3/time#3:503",
            "POST /api/v3/order#1:insufficient",
            "POST /api/v3/order#2:filter",
        ]


def test_an_order_whose_response_timed_out_is_found_by_its_client_id(make_exchange: Make) -> None:
    faults = Faults(rest={"POST /api/v3/order": {1: "timeout_after_accept"}}, hold_s=5)
    with make_exchange(faults=faults) as ex:
        client = ex.ccxt_client(timeout_ms=500)
        client.load_markets()
        with pytest.raises(ccxt.RequestTimeout):
            client.create_order("BTC/USDT", "market", "buy", 0.001, params={"newClientOrderId": "pivotal-timeout-1"})
        found = client.fetch_order(None, "BTC/USDT", params={"origClientOrderId": "pivotal-timeout-1"})
        assert found["clientOrderId"] == "pivotal-timeout-1" and found["status"] == "closed" and found["filled"] == 0.001
        with pytest.raises(ccxt.InvalidOrder, match=re.escape("Duplicate order sent.")):  # a blind retry would be refused
            client.create_order("BTC/USDT", "market", "buy", 0.001, params={"newClientOrderId": "pivotal-timeout-1"})


def test_a_sandbox_mode_client_still_reaches_the_test_exchange(make_exchange: Make) -> None:
    with make_exchange() as ex:
        client = ex.ccxt_client()
        client.set_sandbox_mode(True)  # testnet mode swaps in ccxt's testnet URLs: those point here too
        order = client.create_order("BTC/USDT", "market", "buy", 0.001)
        assert order["status"] == "closed" and client.fetch_balance()["BTC"]["total"] == 0.000999
