"""Hermetic checks of the test exchange's parts: replay clock, Binance request signing, fault schedules, and the
matching engine on a tiny hand-written bar series (exact prices, fees, balances)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from decimal import Decimal

import numpy as np
import pytest

from pivotal.core.errors import UserInputError
from pivotal.data.candles import Candles
from pivotal.testexchange.clock import ReplayClock
from pivotal.testexchange.faults import Faults
from pivotal.testexchange.markets import BINANCE_RULES, rules_for, symbol_info
from pivotal.testexchange.matching import MatchingEngine, Reject
from pivotal.testexchange.private import sign
from pivotal.testexchange.tape import BAR_CLOSE, BAR_OPEN, Event, SymbolData

pytestmark = pytest.mark.unit

M = 60_000
T0 = 1_700_000_000_000 - 1_700_000_000_000 % M
# open, high, low, close, volume of three 1m bars (hand-written)
BARS = [(100.0, 101.0, 99.0, 100.5, 2.0), (100.5, 102.0, 100.0, 101.5, 0.5), (101.5, 101.6, 98.0, 99.0, 3.0)]


def _engine(usdt: str = "1000", btc: str = "0") -> MatchingEngine:
    cols = [np.array([T0 + i * M for i in range(3)], dtype=np.int64)] + [np.array([b[k] for b in BARS]) for k in range(5)]
    data = SymbolData("BTCUSDT", {"1m": Candles.from_columns(cols, symbol="BTCUSDT", timeframe="1m")}, None, None)
    return MatchingEngine({"BTCUSDT": BINANCE_RULES["BTCUSDT"]}, {"BTCUSDT": data}, {"USDT": Decimal(usdt), "BTC": Decimal(btc)})


def _replay(engine: MatchingEngine, after: int, until: int) -> None:
    """Feed the bar events with ``after < time <= until`` in tape order (open before close at the same time)."""
    events = [Event(T0 + i * M, BAR_OPEN, "BTCUSDT", i, "1m") for i in range(3)]
    events += [Event(T0 + (i + 1) * M, BAR_CLOSE, "BTCUSDT", i, "1m") for i in range(3)]
    for e in sorted(events, key=lambda e: (e.time, e.kind)):
        if after < e.time <= until:
            engine.on_event(e)


def test_signature_is_hmac_sha256_of_the_query_string_in_hex() -> None:
    """Binance's scheme ("SIGNED endpoint security"): hex HMAC-SHA256 of the exact query string, keyed by the secret.
    The secret is made here, so no credential-like value sits in the repository; the real ccxt client signing
    against the exchange (test_rest_ccxt) checks the scheme end to end."""
    secret = secrets.token_urlsafe(48)
    query = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
    expected = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    assert sign(secret, query) == expected
    assert sign(secret, query + "&x=1") != expected


def test_replay_clock_paced_jumps_and_never_goes_back() -> None:
    wall = [100.0]
    clock = ReplayClock(T0, speed=60, wall=lambda: wall[0])
    wall[0] += 2.0
    assert clock.now_ms() == T0 + 120_000
    clock.advance_to(T0)  # backwards: ignored
    assert clock.now_ms() == T0 + 120_000
    clock.pause()
    wall[0] += 5
    assert clock.now_ms() == T0 + 120_000
    still = ReplayClock(T0, speed=0, wall=lambda: wall[0])
    wall[0] += 5
    assert still.now_ms() == T0 and still.wall_seconds_until(T0 + 1) == float("inf")
    with pytest.raises(ValueError, match="speed must be >= 0"):
        ReplayClock(T0, speed=-1)


def test_faults_are_served_once_and_unknown_names_refused() -> None:
    faults = Faults(rest={"/api/v3/klines": {2: "429"}}, ws={1: "duplicate"})
    assert [faults.rest_fault("GET", "/api/v3/klines") for _ in range(3)] == [None, "429", None]
    assert faults.ws_fault() == "duplicate" and faults.ws_fault() is None
    assert faults.served == ["/api/v3/klines#2:429", "ws#1:duplicate"]
    with pytest.raises(ValueError, match="unknown REST fault 'teapot'"):
        Faults(rest={"/api/v3/order": {1: "teapot"}})


def test_symbol_rules_are_binances_and_unknown_symbols_are_one_line_errors() -> None:
    filters = {f["filterType"]: f for f in symbol_info(rules_for("BTC/USDT"))["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert filters["NOTIONAL"]["minNotional"] == "5.00000000"
    with pytest.raises(UserInputError, match="no Binance filters known for 'DOGE/USDT'"):
        rules_for("DOGE/USDT")


def test_market_buy_fills_at_the_bar_open_with_taker_fee_in_base() -> None:
    engine = _engine()
    order = engine.place("BTCUSDT", "BUY", "MARKET", Decimal("1"), None, None, "", "a", T0 + 10)
    assert order.status == "FILLED" and order.fills[0].price == Decimal("100.0")
    assert engine.balance("BTC") == (Decimal("0.999"), Decimal(0))  # 0.1 % commission taken in BTC
    assert engine.balance("USDT") == (Decimal("900.0"), Decimal(0))


def test_market_order_larger_than_the_bar_volume_fills_partially_then_at_the_next_open() -> None:
    engine = _engine(usdt="10000")
    order = engine.place("BTCUSDT", "BUY", "MARKET", Decimal("2.3"), None, None, "", "a", T0 + 10)
    assert order.status == "PARTIALLY_FILLED" and order.executed == Decimal("2.0")  # bar 0 traded 2.0
    _replay(engine, T0 + 10, T0 + M)
    assert [(f.price, f.qty) for f in order.fills] == [(Decimal("100.0"), Decimal("2.0")), (Decimal("100.5"), Decimal("0.3"))]
    assert order.status == "FILLED"


def test_limit_fills_only_when_price_trades_through_it() -> None:
    engine = _engine()
    touch = engine.place("BTCUSDT", "BUY", "LIMIT", Decimal("1"), Decimal("100.00"), None, "GTC", "touch", T0 + M + 5)
    through = engine.place("BTCUSDT", "BUY", "LIMIT", Decimal("1"), Decimal("99.50"), None, "GTC", "through", T0 + M + 5)
    assert engine.balance("USDT") == (Decimal("800.5000"), Decimal("199.5000"))
    _replay(engine, T0 + M + 5, T0 + 2 * M)  # bar 1 low is 100.0: touches 100.00, does not trade through it
    assert touch.status == "NEW" and through.status == "NEW"
    _replay(engine, T0 + 2 * M, T0 + 3 * M)  # bar 2 low 98.0 trades through both
    assert touch.status == "FILLED" and through.status == "FILLED"
    assert [f.price for f in through.fills] == [Decimal("99.50")] and through.fills[0].is_maker


def test_stop_loss_limit_triggers_on_the_stop_and_rejects_an_immediate_trigger() -> None:
    engine = _engine(btc="1")
    with pytest.raises(Reject, match=re.escape("Stop price would trigger immediately.")):
        engine.place(
            "BTCUSDT", "SELL", "STOP_LOSS_LIMIT", Decimal("0.5"), Decimal("100.00"), Decimal("101.00"), "GTC", "x", T0 + 5
        )
    stop = engine.place(
        "BTCUSDT", "SELL", "STOP_LOSS_LIMIT", Decimal("0.5"), Decimal("98.50"), Decimal("99.00"), "GTC", "s", T0 + 2 * M + 5
    )
    assert stop.status == "NEW" and engine.balance("BTC") == (Decimal("0.5"), Decimal("0.5"))
    _replay(engine, T0 + 2 * M + 5, T0 + 3 * M)
    assert stop.status == "FILLED" and stop.fills[0].price == Decimal("99.00")  # triggered at the stop, marketable
    assert engine.balance("USDT")[0] == Decimal("1000") + Decimal("49.5") - Decimal("0.0495")


def test_rejects_use_binance_codes_and_messages() -> None:
    engine = _engine()
    cases = [
        (("BTCUSDT", "BUY", "MARKET", Decimal("0.000001"), None), -1013, "Filter failure: LOT_SIZE"),
        (("BTCUSDT", "BUY", "LIMIT", Decimal("1"), Decimal("100.001")), -1013, "Filter failure: PRICE_FILTER"),
        (("BTCUSDT", "BUY", "MARKET", Decimal("0.01"), None), -1013, "Filter failure: NOTIONAL"),
        (("BTCUSDT", "BUY", "MARKET", Decimal("20"), None), -2010, "Account has insufficient balance for requested action."),
    ]
    for (symbol, side, type_, qty, price), code, msg in cases:
        with pytest.raises(Reject) as info:
            engine.place(symbol, side, type_, qty, price, None, "GTC", f"c{code}{msg}", T0 + 5)
        assert (info.value.code, info.value.msg) == (code, msg)
    engine.place("BTCUSDT", "BUY", "LIMIT", Decimal("1"), Decimal("50.00"), None, "GTC", "same", T0 + 5)
    with pytest.raises(Reject) as dup:
        engine.place("BTCUSDT", "BUY", "LIMIT", Decimal("1"), Decimal("50.00"), None, "GTC", "same", T0 + 5)
    assert (dup.value.code, dup.value.msg) == (-2010, "Duplicate order sent.")


def test_cancel_returns_the_locked_funds() -> None:
    engine = _engine()
    order = engine.place("BTCUSDT", "BUY", "LIMIT", Decimal("2"), Decimal("90.00"), None, "GTC", "c", T0 + 5)
    assert engine.balance("USDT") == (Decimal("820.00"), Decimal("180.00"))
    engine.cancel("BTCUSDT", None, "c", T0 + 6)
    assert order.status == "CANCELED" and engine.balance("USDT") == (Decimal("1000.00"), Decimal("0.00"))
    with pytest.raises(Reject, match=re.escape("Unknown order sent.")):
        engine.cancel("BTCUSDT", order.order_id, None, T0 + 7)


def test_ioc_and_fok_limits_expire_what_the_first_step_cannot_fill() -> None:
    engine = _engine(usdt="10000")
    ioc = engine.place("BTCUSDT", "BUY", "LIMIT", Decimal("3"), Decimal("100.00"), None, "IOC", "ioc", T0 + 5)
    assert (ioc.status, ioc.executed) == ("EXPIRED", Decimal("2.0"))  # bar 0 offered 2.0 at its open, 100.0
    fok = engine.place("BTCUSDT", "BUY", "LIMIT", Decimal("1"), Decimal("101.00"), None, "FOK", "fok", T0 + M + 5)
    assert (fok.status, fok.executed) == ("EXPIRED", Decimal(0))  # bar 1 offers only 0.5
    assert engine.balance("USDT") == (Decimal("10000") - Decimal("200.0"), Decimal(0))
