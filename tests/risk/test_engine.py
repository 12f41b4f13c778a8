"""The risk engine as a gate: pre-trade checks at their limits, trading states, resets, stop-loss auto-close, audit
log round trip, and backtests under it (identical trades with nothing configured)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from pivotal.core.clock import SimulatedClock
from pivotal.core.errors import UserInputError
from pivotal.core.orders import Order
from pivotal.core.trades import Trade
from pivotal.core.vocabulary import ExitReason
from pivotal.execution.engine import BacktestConfig, EventEngine, run_backtest
from pivotal.risk import AuditLog, AuditLogBusy, MarketRules, RiskConfig, RiskEngine, RiskManaged, TradingState, read_audit
from pivotal.risk.audit import active_trips
from pivotal.risk.pretrade import on_step
from tests.risk.helpers import MIN, Scripted, bar, candles, fill

pytestmark = pytest.mark.unit
NO_COSTS = BacktestConfig(fee_rate=0.0, slippage=0.0)


def engine(markets: dict[str, MarketRules] | None = None, **settings: object) -> RiskEngine:
    e = RiskEngine(RiskConfig.off(**settings), base=None, markets=markets)
    e.on_bar_close(bar(0, 100.0), 1000.0)  # mark 100, equity 1000
    return e


def reason(e: RiskEngine, order: Order) -> str:
    d = e.check(order, bar(1, 100.0), False, False)
    return "allowed" if d.allowed else d.reason


# -- pre-trade checks -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("setting", "limit", "rule"),
    [
        ("max_position_size", 2.0, "position size"),
        ("max_order_notional", 200.0, "order notional"),
        ("max_symbol_notional", 200.0, "symbol notional"),
        ("max_total_notional", 200.0, "total notional"),
        ("max_leverage", 0.2, "leverage"),
    ],
)
def test_caps_allow_up_to_and_including_the_limit(setting: str, limit: float, rule: str) -> None:
    e = engine(**{setting: limit})  # 2 units at 100 = notional 200 = 0.2 x equity 1000
    assert reason(e, Order.enter(+1, quantity=1.99)) == "allowed"
    assert reason(e, Order.enter(+1, quantity=2.0)) == "allowed"
    assert reason(e, Order.enter(-1, quantity=2.01)) == rule
    _, denial = e.denied[-1]
    assert (denial.rule, denial.limit, denial.symbol) == (rule, limit, "BTC/USDT")
    assert denial.value == pytest.approx({"position size": 2.01, "leverage": 0.201}.get(rule, 201.0))


def test_symbol_cap_counts_the_open_position() -> None:
    e = engine(max_symbol_notional=300.0)
    e.on_fill(fill("entry", +1, 100.0, 2.0))  # 2 units at mark 100
    assert reason(e, Order.enter(+1, quantity=1.0)) == "allowed"
    assert reason(e, Order.enter(+1, quantity=1.01)) == "symbol notional"
    assert reason(e, Order.enter(-1, quantity=5.0)) == "allowed"  # to -3: 300
    assert reason(e, Order.enter(-1, quantity=5.01)) == "symbol notional"


def test_total_cap_and_leverage_include_the_other_symbols() -> None:
    e = engine(max_total_notional=500.0)
    e.on_fill(fill("entry", -1, 10.0, 20.0, symbol="ETH/USDT"))
    e.on_bar_close(bar(1, 12.0, symbol="ETH/USDT"), 1000.0)  # ETH 240
    assert reason(e, Order.enter(+1, quantity=2.6)) == "allowed"  # 260 + 240 = 500
    assert reason(e, Order.enter(+1, quantity=2.61)) == "total notional"
    lev = engine(max_leverage=0.5)
    lev.on_fill(fill("entry", -1, 10.0, 20.0, symbol="ETH/USDT"))
    lev.on_bar_close(bar(1, 12.0, symbol="ETH/USDT"), 1000.0)
    assert reason(lev, Order.enter(+1, quantity=2.6)) == "allowed"
    assert reason(lev, Order.enter(+1, quantity=2.61)) == "leverage"


def test_fraction_orders_are_sized_from_equity_at_the_mark() -> None:
    e = engine(max_order_notional=500.0)
    assert reason(e, Order.enter(+1, fraction=0.5)) == "allowed"  # 0.5 x 1000
    assert reason(e, Order.enter(+1, fraction=0.51)) == "order notional"


def test_order_rate_per_second_and_per_minute() -> None:
    clock = SimulatedClock(0)
    e = RiskEngine(RiskConfig.off(max_orders_per_second=2, max_orders_per_minute=3), clock=clock, base=None)
    order = Order.enter(+1, quantity=1.0)
    assert [e.check(order, bar(0, 1), False, False).reason for _ in range(3)] == ["", "", "orders per second"]
    clock.set(1_000)  # the first two are now older than a second (window (0, 1000])
    assert e.check(order, bar(0, 1), False, False).allowed
    assert e.check(order, bar(0, 1), False, False).reason == "orders per minute"  # 3 inside (−59000, 1000]
    assert e.check(Order.exit(), bar(0, 1), True, False).allowed  # exits are never refused
    clock.set(60_000)  # the two orders at 0 left the minute (−0, 60000]; 1000, 1000 (the exit) remain
    assert e.check(order, bar(0, 1), False, False).allowed
    assert e.check(order, bar(0, 1), False, False).reason == "orders per minute"
    clock.set(61_000)
    assert e.check(order, bar(0, 1), False, False).allowed


def test_precision_amount_step_min_amount_min_notional() -> None:
    rules = MarketRules(amount_step=0.001, price_step=0.01, min_amount=0.002, min_notional=5.0)
    e = engine(markets={"BTC/USDT": rules})
    assert reason(e, Order.enter(+1, quantity=0.05)) == "allowed"
    assert reason(e, Order.enter(+1, quantity=0.0505)) == "amount step"
    assert reason(e, Order.enter(+1, quantity=0.001)) == "min amount"
    assert reason(e, Order.enter(+1, quantity=0.049)) == "min notional"  # 4.9 < 5
    assert reason(e, Order.enter(+1, fraction=0.0050001)) == "allowed"  # venue rounds a fraction order; 5.0001 notional
    assert reason(e, Order.enter(+1, fraction=0.0049)) == "min notional"
    assert on_step(0.3, 0.1) and not on_step(0.35, 0.1)
    assert rules.round_amount(0.0509) == pytest.approx(0.05) and rules.round_price(100.004) == pytest.approx(100.0)
    with pytest.raises(UserInputError, match="market rules: amount_step must be a positive number"):
        MarketRules(amount_step=0)


def test_config_errors_name_the_setting() -> None:
    with pytest.raises(UserInputError, match=r"max_leverage must be a positive number or None \(got -1\)"):
        RiskConfig(max_leverage=-1)
    with pytest.raises(UserInputError, match="max_adverse_selection is a share"):
        RiskConfig(max_adverse_selection=1.5)
    with pytest.raises(UserInputError, match="max_drawdown is a fraction"):
        RiskConfig(max_drawdown=1.0)


# -- states and resets ------------------------------------------------------------------------------------------------
def test_reducing_lets_only_exits_and_smaller_positions_through() -> None:
    e = engine(consecutive_losses_limit=1)
    e.on_fill(fill("entry", +1, 100.0, 3.0))
    e.on_trade_closed("ETH/USDT", _trade(-0.01))
    assert e.state == TradingState.REDUCING
    assert reason(e, Order.enter(+1, quantity=1.0)) == "reducing: consecutive_losses"
    assert reason(e, Order.enter(-1, quantity=4.0, symbol="ETH/USDT")) == "reducing: consecutive_losses"
    assert reason(e, Order.enter(-1, quantity=3.0)) == "allowed"  # to flat
    assert reason(e, Order.enter(-1, quantity=3.5)) == "reducing: consecutive_losses"  # flips: new exposure
    assert reason(e, Order.exit()) == "allowed"


def test_halted_until_an_explicit_audited_reset(tmp_path: Path) -> None:
    e = RiskEngine(RiskConfig.off(max_drawdown=0.1), base=None, audit=tmp_path / "audit.jsonl")
    e.on_bar_close(bar(0, 100.0), 1.0)
    e.on_bar_close(bar(1, 100.0), 0.9)
    status = e.status()
    assert (status["state"], status["reason"], status["since"]) == ("HALTED", "max_drawdown", 2 * MIN)
    assert reason(e, Order.enter(+1, quantity=1.0)) == "halted: max_drawdown"
    e.on_bar_close(bar(2, 100.0), 0.95)
    assert e.state == TradingState.HALTED  # recovering does not clear a trip
    with pytest.raises(UserInputError, match="say who resets"):
        e.reset("max_drawdown", by="", reason="x")
    with pytest.raises(UserInputError, match=r"no active trip of 'latency'; active: max_drawdown"):
        e.reset("latency", by="ops", reason="x")
    e.reset("max_drawdown", by="ops", reason="reviewed")
    assert e.state == TradingState.ACTIVE and reason(e, Order.enter(+1, quantity=1.0)) == "allowed"
    e.on_bar_close(bar(3, 100.0), 0.86)  # the peak restarts at the reset: 0.95 -> 0.86 is 9.5 %
    assert e.state == TradingState.ACTIVE
    e.on_bar_close(bar(4, 100.0), 0.85)  # more than 10 % below 0.95
    assert e.state == TradingState.HALTED
    events = [(x["event"], x["rule"], x.get("by")) for x in read_audit(tmp_path / "audit.jsonl")]
    assert events == [("trip", "max_drawdown", None), ("reset", "max_drawdown", "ops"), ("trip", "max_drawdown", None)]


def test_manual_halt_and_entries_filled_while_halted_are_closed() -> None:
    e = engine()
    e.halt(by="ops", reason="exchange incident")
    assert e.state == TradingState.HALTED and reason(e, Order.enter(+1, quantity=1.0)) == "halted: manual"
    e.on_fill(fill("entry", +1, 100.0))  # decided before the halt
    assert e.exit_orders("BTC/USDT") == [Order.exit(tag="risk:halted", symbol="BTC/USDT", reason=ExitReason.BREAKER)]


# -- stop-loss auto-close -----------------------------------------------------------------------------------------------
def test_stop_loss_closes_a_position_without_a_stop_at_the_configured_distance() -> None:
    e = engine(stop_loss=0.05)
    assert e.check(Order.enter(-1, quantity=1.0), bar(1, 100.0), False, False).allowed  # no stop of its own
    e.on_fill(fill("entry", -1, 100.0))
    e.on_price("BTC/USDT", 104.99)
    assert e.exit_orders("BTC/USDT") == []
    e.on_price("BTC/USDT", 105.0)  # 5 % against the short
    assert e.exit_orders("BTC/USDT") == [Order.exit(tag="risk:stop_loss", symbol="BTC/USDT", reason=ExitReason.BREAKER)]
    assert e.audit.entries[-1]["event"] == "stop_loss" and e.state == TradingState.ACTIVE  # an action, not a trip
    own = engine(stop_loss=0.05)
    own.check(Order.enter(+1, 2.0, quantity=1.0), bar(1, 100.0), False, False)
    own.on_fill(fill("entry", +1, 100.0))
    own.on_price("BTC/USDT", 90.0)
    assert own.exit_orders("BTC/USDT") == []  # it has its own stop (the venue's bracket)


def test_backtest_under_the_engine_closes_at_the_next_open_after_the_stop_breach() -> None:
    c = candles([100, 100, 97, 94.9, 93, 92])
    strategy = Scripted({0: [Order.enter(+1)]})
    risk = RiskEngine(RiskConfig.off(stop_loss=0.05))
    res = EventEngine(c, NO_COSTS, gate=risk).run(RiskManaged(strategy, risk))
    assert [(t.entry_bar, t.exit_bar, t.exit_reason, t.exit_fill) for t in res.trades] == [(1, 4, "BREAKER", 94.9)]
    assert risk.positions == {} and [f.kind for f in strategy.fills] == ["entry", "exit"]


def test_nothing_configured_gives_the_default_gate_trades() -> None:
    c = candles([100, 101, 99, 103, 104, 98, 97, 99, 102, 101] * 3)
    orders = {i: [Order.enter(1 if i % 4 else -1, 2.0, 3.0)] for i in range(0, 30, 3)} | {7: [Order.exit()]}
    default = run_backtest(c, Scripted(orders), NO_COSTS)
    risk = RiskEngine(RiskConfig.off())
    under = EventEngine(c, NO_COSTS, gate=risk).run(RiskManaged(Scripted(orders), risk))
    assert under.trades == default.trades and under.denials == default.denials and len(default.trades) >= 5
    assert risk.audit.entries == []


def test_trips_inside_a_backtest_deny_entries_with_the_reason() -> None:
    c = candles([100, 99, 98, 97, 96, 95, 94, 93])
    risk = RiskEngine(RiskConfig.off(consecutive_losses_limit=2))
    orders = {i: [Order.enter(+1, max_hold_bars=1)] for i in range(0, 8, 2)}
    res = EventEngine(c, NO_COSTS, gate=risk).run(RiskManaged(Scripted(orders), risk))
    assert len(res.trades) == 2 and res.denials == {"reducing: consecutive_losses": 2}


# -- audit log -----------------------------------------------------------------------------------------------------------
def test_audit_log_round_trip_restores_active_trips_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "risk" / "audit.jsonl"
    clock = SimulatedClock(1_000)
    e = RiskEngine(RiskConfig.off(latency_threshold_ms=500, latency_samples=1), clock=clock, audit=path, base=None)
    e.on_latency(750)
    e.halt(by="ops", reason="drill")
    clock.advance(5)
    e.reset("manual", by="ops", reason="drill over")
    with pytest.raises(AuditLogBusy, match="open in another writer"):
        AuditLog(path)
    e.audit.close()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines == e.audit.entries == read_audit(path)
    assert lines[0] == {"seq": 1, "event": "trip", "time": 1_000, "rule": "latency", "symbol": "", "value": 750.0,
                        "threshold": 500, "state": "REDUCING"}  # fmt: skip
    assert lines[1]["value"] is None  # a manual halt has no value (JSON null, never NaN)
    assert lines[2] == {"seq": 3, "event": "reset", "time": 1_005, "rule": "manual", "symbol": None, "by": "ops",
                        "reason": "drill over"}  # fmt: skip
    with path.open("a") as f:
        f.write('{"seq": 4, "event": "tr')  # a crash mid-write
    again = RiskEngine(RiskConfig.off(), clock=clock, audit=path, base=None)
    assert again.state == TradingState.REDUCING and list(again.trips) == [("latency", "")]
    assert again.trips[("latency", "")].time == 1_000 and len(again.audit.entries) == 3
    again.reset("latency", by="ops", reason="network fixed")
    assert again.audit.entries[-1]["seq"] == 4 and active_trips(read_audit(path)) == {}


def test_audit_log_refuses_a_corrupt_line_in_the_middle(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"seq": 1}\nnot json\n{"seq": 2}\n')
    with pytest.raises(UserInputError, match=r"a.jsonl: line 2 is not JSON"):
        read_audit(path)


def _trade(net: float) -> Trade:
    return Trade(0, 1, math.nan, 1, 0, 100.0, math.nan, math.nan, 2, 0, "SIGNAL", 100.0, net)
