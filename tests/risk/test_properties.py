"""Properties of the risk engine over random positions, orders, states and event sequences (hypothesis)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pivotal.core.orders import Order
from pivotal.risk import RULES, DefaultRiskGate, RiskConfig, RiskEngine, TradingState
from pivotal.risk.audit import active_trips
from tests.risk.helpers import bar, fill

pytestmark = pytest.mark.unit

REDUCING_RULES = [r for r, (state, _) in RULES.items() if state == TradingState.REDUCING]
qty = st.floats(0.001, 100.0, allow_nan=False)
side = st.sampled_from([1, -1])


@given(
    held_side=side, held=qty, order_side=side, order_qty=qty, rule=st.sampled_from(REDUCING_RULES),
    halted=st.booleans(), symbol=st.sampled_from(["BTC/USDT", "ETH/USDT"]),
)  # fmt: skip
@settings(max_examples=300, deadline=None)
def test_reducing_and_halted_never_let_exposure_grow(
    held_side: int, held: float, order_side: int, order_qty: float, rule: str, halted: bool, symbol: str
) -> None:
    e = RiskEngine(RiskConfig.off(), base=None)
    e.on_bar_close(bar(0, 100.0), 1.0)
    e.on_fill(fill("entry", held_side, 100.0, held))
    e.trip(rule, symbol, 1.0, 1.0)  # on the symbol of the order (book-wide rules: every symbol)
    if halted:
        e.trip("manual", "", math.nan, math.nan)
    d = e.check(Order.enter(order_side, quantity=order_qty, symbol=symbol), bar(1, 100.0), False, False)
    before = held_side * held if symbol == "BTC/USDT" else 0.0
    after = before + order_side * order_qty
    if d.allowed:
        assert abs(after) < abs(before) and after * before >= 0
    else:
        assert d.reason.startswith("halted:" if halted else "reducing:")
    assert e.check(Order.exit(symbol=symbol), bar(1, 100.0), True, False).allowed  # exits always pass


events = st.lists(
    st.tuples(st.floats(50.0, 150.0), st.floats(0.5, 1.5), st.sampled_from(["bar", "fill", "trade", "latency", "request"])),
    max_size=60,
)


@given(events=events)
@settings(max_examples=100, deadline=None)
def test_nothing_configured_never_trips_and_decides_like_the_default_gate(events: list[tuple[float, float, str]]) -> None:
    e = RiskEngine(RiskConfig.off(), window=(2, 40))
    gate = DefaultRiskGate(None, (2, 40))
    for i, (price, equity, kind) in enumerate(events):
        if kind == "bar":
            e.on_bar_close(bar(i, price), equity)
        elif kind == "fill":
            e.on_fill(fill("entry" if i % 2 else "exit", 1, price))
        elif kind == "latency":
            e.on_latency(price * 100)
        elif kind == "request":
            e.on_request(ok=False)
        order = Order.enter(1, quantity=equity) if i % 3 else Order.exit()
        args = (order, bar(i, price), bool(i % 2), bool(i % 5 == 0))
        assert e.check(*args) == gate.check(*args)
    assert e.trips == {} and e.audit.entries == []


@given(ops=st.lists(st.tuples(st.sampled_from(["latency", "consecutive_losses", "unusual_market"]), st.booleans()), max_size=30))
@settings(max_examples=100, deadline=None)
def test_the_audit_log_alone_rebuilds_the_active_trips(ops: list[tuple[str, bool]]) -> None:
    e = RiskEngine(RiskConfig.off(), base=None)
    for k, (rule, reset) in enumerate(ops):
        symbol = "BTC/USDT" if k % 2 else "ETH/USDT"
        if reset and any(r == rule for r, _ in e.trips):
            e.reset(rule, by="test", reason="property")
        else:
            e.trip(rule, symbol, float(k), 0.0)
    assert set(active_trips(e.audit.entries)) == set(e.trips)
    assert [x["seq"] for x in e.audit.entries] == list(range(1, len(e.audit.entries) + 1))
