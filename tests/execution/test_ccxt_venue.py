"""``CcxtVenue`` against the local test exchange (real ccxt, recorded BTCUSDT): fills with the exchange's numbers,
precision and minimums, idempotent client ids, retries, the timeout-after-accept reconciliation, cancel, rejects,
and keys that never leak."""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pivotal.config import Settings
from pivotal.core.errors import UserInputError
from pivotal.core.ids import OrderIdFactory
from pivotal.core.vocabulary import OrderSide, OrderStatus, OrderType
from pivotal.execution.ccxt_venue import CcxtVenue, RetryPolicy
from pivotal.execution.exchange_venue import (
    Accepted,
    ExchangeVenue,
    OrderRequest,
    Rejected,
    RejectReason,
    VenueError,
    VenueUnavailable,
)
from pivotal.testexchange import Faults, TestExchange
from pivotal.testexchange.tape import SymbolData, load_symbol

KEY = secrets.token_hex(12)  # made per test session: the scrubbing tests look for these values
SECRET = secrets.token_hex(24)
IN_TRADES = "2024-08-08T23:56:00"  # inside the recorded BTCUSDT trade capture (2024-08-08 23:54:15 → 00:05:05)
BTC = "BTC/USDT"
BUY, SELL = OrderSide.BUY, OrderSide.SELL
Make = Callable[..., TestExchange]


# --- the test-exchange fixture pattern of tests/testexchange/conftest.py ------------------------------------------------
@pytest.fixture(scope="module")
def btc_market(shared_data: Path) -> dict[str, SymbolData]:
    return {"BTCUSDT": load_symbol(shared_data, "BTCUSDT", ("1m", "1h"))}


@pytest.fixture
def make_exchange(shared_data: Path, btc_market: dict[str, SymbolData]) -> Make:
    def make(**options: Any) -> TestExchange:
        return TestExchange(shared_data, [BTC], preloaded=btc_market, api_key=KEY, api_secret=SECRET, **options)

    return make


@pytest.fixture(autouse=True)
def _no_exchange_left_running() -> Iterator[None]:
    yield
    alive = [t.name for t in threading.enumerate() if t.name == "pivotal-testexchange"]
    assert alive == [], f"test exchange threads still running: {alive}"


@pytest.fixture
def keys_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIVOTAL_EXCHANGE_API_KEY", KEY)
    monkeypatch.setenv("PIVOTAL_EXCHANGE_API_SECRET", SECRET)


def venue_for(ex: TestExchange, sleeps: list[float] | None = None, timeout_ms: int = 3000, prefix: str = "run1") -> CcxtVenue:
    """The venue as testnet mode builds it: keys from ``Settings`` (environment), sandbox URLs, REST sent to ``ex``."""
    sleep = sleeps.append if sleeps is not None else (lambda s: None)
    return CcxtVenue.from_settings(
        Settings(), "binance", sandbox=True, rest_url=ex.url, timeout_ms=timeout_ms, ids=OrderIdFactory(prefix), sleep=sleep
    )


def all_orders(ex: TestExchange) -> list[dict[str, Any]]:
    """The exchange's own record (``GET /api/v3/allOrders``), read with a plain ccxt client."""
    return [o["info"] for o in ex.ccxt_client().fetch_orders(BTC)]


# --- fills ---------------------------------------------------------------------------------------------------------------
def test_market_order_fills_with_the_exchanges_numbers(make_exchange: Make, keys_in_env: None) -> None:
    with make_exchange(start=IN_TRADES, balances={"USDT": 10_000, "BTC": 0}) as ex:
        venue = venue_for(ex)
        assert isinstance(venue, ExchangeVenue)
        result = venue.submit(OrderRequest(BTC, BUY, 0.001, client_order_id="run1-1"))
        assert isinstance(result, Accepted) and not result.reconciled
        ex.advance(60_000)  # let a partial fill complete
        order = venue.fetch(BTC, "run1-1")
        trades = ex.ccxt_client().fetch_my_trades(BTC)
    assert order is not None and order.status is OrderStatus.FILLED and order.filled == 0.001
    assert [(f.price, f.quantity, f.ts, f.client_order_id, f.direction, f.kind) for f in order.fills] == [
        (t["price"], t["amount"], t["timestamp"], "run1-1", 1, "entry") for t in trades
    ]
    assert [f.fee for f in order.fills] == [t["fee"]["cost"] * t["price"] for t in trades]  # charged in BTC, shown in USDT
    assert order.fees == {"BTC": pytest.approx(sum(t["fee"]["cost"] for t in trades))}


def test_limit_order_rests_then_fills_at_its_price(make_exchange: Make, keys_in_env: None) -> None:
    with make_exchange(start=IN_TRADES, balances={"USDT": 1000, "BTC": 0}) as ex:
        venue = venue_for(ex)
        last = ex.ccxt_client().fetch_trades(BTC, limit=1)[-1]["price"]
        limit = round(last - 5.0, 2)
        result = venue.submit(OrderRequest(BTC, BUY, 0.001, OrderType.LIMIT, price=limit, client_order_id="run1-7"))
        assert isinstance(result, Accepted) and result.order.status is OrderStatus.NEW and result.order.fills == ()
        assert [o.client_order_id for o in venue.open_orders(BTC)] == ["run1-7"]
        ex.advance(3_600_000)
        order = venue.fetch(BTC, "run1-7")
        trades = ex.ccxt_client().fetch_my_trades(BTC)
    assert order is not None and order.status is OrderStatus.FILLED
    assert [(f.price, f.quantity, f.ts) for f in order.fills] == [(t["price"], t["amount"], t["timestamp"]) for t in trades]
    assert {f.price for f in order.fills} == {limit}


# --- precision and minimums ------------------------------------------------------------------------------------------
def test_amount_and_price_are_rounded_with_the_markets_precision(make_exchange: Make, keys_in_env: None) -> None:
    with make_exchange(balances={"USDT": 1000, "BTC": 0}) as ex:
        venue = venue_for(ex)
        result = venue.submit(OrderRequest(BTC, BUY, 0.0012345678, OrderType.LIMIT, price=50_000.12789))
        assert isinstance(result, Accepted) and result.client_order_id == "run1-1"  # from the OrderIdFactory
        (raw,) = all_orders(ex)
    assert (raw["origQty"], raw["price"], raw["clientOrderId"]) == ("0.00123000", "50000.13000000", "run1-1")
    assert (result.order.quantity, result.order.price) == (0.00123, 50000.13)


def test_orders_under_the_minimum_are_refused_with_one_line_and_never_sent(make_exchange: Make, keys_in_env: None) -> None:
    with make_exchange() as ex:
        venue = venue_for(ex)
        tiny_notional = venue.submit(OrderRequest(BTC, BUY, 0.00009, OrderType.LIMIT, price=50_000.0))  # 4.5 USDT
        tiny_market = venue.submit(OrderRequest(BTC, SELL, 0.00005, reference_price=60_000.0))  # 3 USDT
        market_no_ref = venue.submit(OrderRequest(BTC, BUY, 0.00005))  # notional from the last closed 1m bar
        rounds_to_zero = venue.submit(OrderRequest(BTC, BUY, 0.000004, OrderType.LIMIT, price=50_000.0))
        posted = ex.faults.count("POST /api/v3/order")
        assert all_orders(ex) == []
    for r in (tiny_notional, tiny_market, market_no_ref, rounds_to_zero):
        assert isinstance(r, Rejected) and r.reason is RejectReason.BELOW_MINIMUM
        assert "\n" not in r.message and r.message.endswith("no order sent")
    assert isinstance(tiny_notional, Rejected) and "= 4.5 USDT, below the minimum 5 USDT" in tiny_notional.message
    assert isinstance(rounds_to_zero, Rejected) and "rounds to 0" in rounds_to_zero.message
    assert posted == 0


def test_stop_order_is_a_stop_limit_with_both_prices_rounded(make_exchange: Make, keys_in_env: None) -> None:
    with make_exchange(balances={"USDT": 0, "BTC": 1}) as ex:
        venue = venue_for(ex)
        request = OrderRequest(BTC, SELL, 0.001, OrderType.STOP, price=50_000.004, stop_price=51_000.006)
        result = venue.submit(request)
        (raw,) = all_orders(ex)
    assert isinstance(result, Accepted) and result.order.status is OrderStatus.NEW and result.order.fills == ()
    assert (raw["type"], raw["price"], raw["stopPrice"]) == ("STOP_LOSS_LIMIT", "50000.00000000", "51000.01000000")


# --- idempotency, retries, reconciliation -----------------------------------------------------------------------------
def test_a_client_id_never_creates_a_second_order(make_exchange: Make, keys_in_env: None) -> None:
    request = OrderRequest(BTC, BUY, 0.001, OrderType.LIMIT, price=50_000.0, client_order_id="run1-3")
    with make_exchange() as ex:
        venue = venue_for(ex)
        first = venue.submit(request)
        again = venue.submit(request)  # the same venue: looked up, not sent
        restarted = venue_for(ex).submit(request)  # a fresh venue (a restart): the exchange says duplicate → found
        other_side = venue_for(ex).submit(
            OrderRequest(BTC, SELL, 0.001, OrderType.LIMIT, price=70_000.0, client_order_id="run1-3")
        )
        bigger = venue_for(ex).submit(OrderRequest(BTC, BUY, 0.002, OrderType.LIMIT, price=50_000.0, client_order_id="run1-3"))
        rows = all_orders(ex)
    assert isinstance(bigger, Rejected) and bigger.reason is RejectReason.DUPLICATE_MISMATCH
    assert bigger.message == "client order id run1-3 already names a buy order of 0.001 BTC/USDT (new); nothing sent"
    assert isinstance(first, Accepted) and isinstance(again, Accepted) and isinstance(restarted, Accepted)
    assert first.order.exchange_order_id == again.order.exchange_order_id == restarted.order.exchange_order_id
    assert restarted.reconciled
    assert isinstance(other_side, Rejected) and other_side.reason is RejectReason.DUPLICATE_MISMATCH
    assert [r["clientOrderId"] for r in rows] == ["run1-3"]


def test_429_and_5xx_are_retried_honouring_retry_after(make_exchange: Make, keys_in_env: None) -> None:
    plan = {"POST /api/v3/order": {1: "429", 2: "500", 3: "503"}, "GET /api/v3/order": {1: "503"}}
    sleeps: list[float] = []
    with make_exchange(faults=Faults(rest=plan, retry_after_s=7)) as ex:
        venue = venue_for(ex, sleeps)
        result = venue.submit(OrderRequest(BTC, BUY, 0.001, OrderType.LIMIT, price=50_000.0))
        rows = all_orders(ex)
        served = list(ex.faults.served)
    assert isinstance(result, Accepted) and [r["clientOrderId"] for r in rows] == ["run1-1"]
    assert served == [
        "POST /api/v3/order#1:429",
        "POST /api/v3/order#2:500",
        "GET /api/v3/order#1:503",  # the reconciliation after the 500 is itself retried
        "POST /api/v3/order#3:503",
    ]
    assert sleeps[0] == 7.0 and sleeps.count(7.0) >= 3  # every Retry-After honoured; backoff between the lookups


def test_a_retry_after_beyond_the_policy_is_not_waited_out(make_exchange: Make, keys_in_env: None) -> None:
    plan = {"POST /api/v3/order": {1: "418"}}
    with make_exchange(faults=Faults(rest=plan, retry_after_s=3600)) as ex:
        venue = venue_for(ex)
        with pytest.raises(VenueUnavailable, match=r"asks to wait 3600 s .*-1003"):
            venue.submit(OrderRequest(BTC, BUY, 0.001, OrderType.LIMIT, price=50_000.0))


def test_timeout_after_accept_is_reconciled_and_never_sent_twice(make_exchange: Make, keys_in_env: None) -> None:
    faults = Faults(rest={"POST /api/v3/order": {1: "timeout_after_accept"}}, hold_s=3)
    with make_exchange(start=IN_TRADES, faults=faults) as ex:
        venue = venue_for(ex, timeout_ms=500)
        result = venue.submit(OrderRequest(BTC, BUY, 0.001, client_order_id="run1-9"))
        posted = ex.faults.count("POST /api/v3/order")
        rows = all_orders(ex)
    assert isinstance(result, Accepted) and result.reconciled
    assert result.order.client_order_id == "run1-9" and result.order.filled > 0
    assert posted == 1 and [r["clientOrderId"] for r in rows] == ["run1-9"]


def test_reconcile_reports_found_missing_and_unexpected_orders(make_exchange: Make, keys_in_env: None) -> None:
    with make_exchange() as ex:
        venue = venue_for(ex)
        venue.submit(OrderRequest(BTC, BUY, 0.001, OrderType.LIMIT, price=50_000.0, client_order_id="run1-1"))
        ex.ccxt_client().create_order(BTC, "limit", "buy", 0.001, 49_000.0, {"newClientOrderId": "by-hand"})
        report = venue_for(ex).reconcile([(BTC, "run1-1"), (BTC, "run1-2")])
        everything = venue_for(ex).open_orders()  # all symbols
        balances = venue.balances()
    assert set(report.found) == {"run1-1"} and report.missing == ("run1-2",)
    assert [o.client_order_id for o in report.unexpected] == ["by-hand"]
    assert sorted(o.client_order_id for o in everything) == ["by-hand", "run1-1"]
    assert balances["USDT"].used == pytest.approx(50 + 49) and balances["USDT"].total == 10_000


def test_cancel(make_exchange: Make, keys_in_env: None) -> None:
    with make_exchange() as ex:
        venue = venue_for(ex)
        venue.submit(OrderRequest(BTC, BUY, 0.001, OrderType.LIMIT, price=50_000.0, client_order_id="run1-4"))
        canceled = venue.cancel(BTC, "run1-4")
        again = venue.cancel(BTC, "run1-4")  # already final: reported as it ended
        unknown = venue.cancel(BTC, "never-sent")
        assert venue.open_orders(BTC) == []
    assert canceled is not None and canceled.status is OrderStatus.CANCELED and again == canceled
    assert unknown is None


# --- rejects ---------------------------------------------------------------------------------------------------------------
def test_exchange_rejections_are_typed_with_the_exchanges_message(make_exchange: Make, keys_in_env: None) -> None:
    with make_exchange(balances={"USDT": 100, "BTC": 0}, faults=Faults(rest={"POST /api/v3/order": {2: "filter"}})) as ex:
        venue = venue_for(ex)
        poor = venue.submit(OrderRequest(BTC, BUY, 0.01, OrderType.LIMIT, price=50_000.0))  # 500 USDT > 100
        filtered = venue.submit(OrderRequest(BTC, BUY, 0.001, OrderType.LIMIT, price=50_000.0))
    assert isinstance(poor, Rejected) and poor.reason is RejectReason.INSUFFICIENT_BALANCE and poor.code == -2010
    assert poor.message == "-2010: Account has insufficient balance for requested action."
    assert isinstance(filtered, Rejected) and filtered.reason is RejectReason.FILTER_FAILURE
    assert filtered.message == "-1013: Filter failure: LOT_SIZE"


# --- keys ------------------------------------------------------------------------------------------------------------------
def test_keys_never_appear_in_repr_errors_or_logs(
    make_exchange: Make, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("PIVOTAL_EXCHANGE_API_KEY", KEY)
    monkeypatch.setenv("PIVOTAL_EXCHANGE_API_SECRET", SECRET[::-1])  # a wrong secret: the exchange refuses it
    errors: list[BaseException] = []
    faults = Faults(rest={"POST /api/v3/order": {1: "timeout_after_accept"}}, hold_s=2)
    with make_exchange(faults=faults) as ex:
        bad = venue_for(ex)
        with pytest.raises(VenueError, match="refused the API key or signature") as refused:
            bad.balances()
        errors.append(refused.value)
        monkeypatch.setenv("PIVOTAL_EXCHANGE_API_SECRET", SECRET)
        good = venue_for(ex, timeout_ms=500)
        good.submit(OrderRequest(BTC, BUY, 0.001, OrderType.LIMIT, price=50_000.0))  # timeout + reconcile, logged
        with pytest.raises(VenueError) as unknown:
            good.fetch("NOPE/USDT", "x")
        errors.append(unknown.value)
    texts = [repr(bad), repr(good), str(bad), *(str(e) for e in errors), *(repr(e) for e in errors), caplog.text]
    for text in texts:
        assert KEY not in text and SECRET not in text and SECRET[::-1] not in text
    assert "X-MBX-APIKEY" in caplog.text  # ccxt's debug log of the request headers went through the redactor


def test_missing_keys_are_one_line_naming_the_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIVOTAL_EXCHANGE_API_KEY", raising=False)
    monkeypatch.setenv("PIVOTAL_EXCHANGE_API_SECRET", SECRET)
    with pytest.raises(UserInputError) as missing:
        CcxtVenue.from_settings(Settings(), "binance", retry=RetryPolicy())
    assert str(missing.value) == "exchange trading needs API keys in the environment: set PIVOTAL_EXCHANGE_API_KEY"


# --- hermetic pieces -------------------------------------------------------------------------------------------------------
def test_backoff_doubles_with_bounded_jitter_and_retry_after_wins() -> None:
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=4.0, jitter=0.25)
    for n, base in enumerate((0.5, 1.0, 2.0, 4.0, 4.0)):
        assert base <= policy.delay(n, None) <= base * 1.25
    assert policy.delay(3, 7.0) == 7.0 and policy.delay(0, 0.0) == 0.0


def test_exchange_messages_and_retry_after_are_read_from_binances_answers() -> None:
    from pivotal.execution.ccxt_venue import _exchange_message, _retry_after

    assert _exchange_message('binance {"code":-2010,"msg":"Duplicate order sent."}') == (-2010, "Duplicate order sent.")
    assert _exchange_message("binance GET http://x/api/v3/order") == (None, "binance GET http://x/api/v3/order")
    assert (
        _retry_after({"retry-after": "7"}) == 7.0 and _retry_after({}) is None and _retry_after({"Retry-After": "soon"}) is None
    )
