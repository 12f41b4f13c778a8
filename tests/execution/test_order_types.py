"""Limit, stop, IOC, expiring and cancelled entries, OCO brackets, partial fills, trade prints and maker/taker fees
of the simulated venue, on tiny hand-written bars (exact values), with properties, and on real Binance BTC/USDT 1h."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pivotal.core.errors import UserInputError
from pivotal.core.orders import Fill, Order
from pivotal.core.vocabulary import OrderStatus, OrderType
from pivotal.data.candles import Candles
from pivotal.data.trades import Trades
from pivotal.execution.engine import BacktestConfig, BacktestResult, EventEngine, run_backtest
from pivotal.execution.simulated_venue import FeeSchedule, SimulatedVenue
from pivotal.strategies.base import BarContext

HOUR = 3_600_000
SLIP = 0.0005
FEE = 0.001
CFG = BacktestConfig(fee_rate=FEE, slippage=SLIP)


class Scripted:
    """Places given orders at given bars; records the fills it is told about."""

    def __init__(self, orders: dict[int, list[Order]]) -> None:
        self.orders = orders
        self.fills: list[Fill] = []

    def on_bar(self, ctx: BarContext) -> list[Order]:
        return self.orders.get(ctx.bar.index, [])

    def on_fill(self, fill: Fill) -> None:
        self.fills.append(fill)


def bars(rows: list[tuple[float, float, float, float]], volume: float = 1.0) -> Candles:
    a = np.array(rows, dtype=np.float64)
    ts = np.arange(len(a), dtype=np.int64) * HOUR
    return Candles(ts, a[:, 0], a[:, 1], a[:, 2], a[:, 3], np.full(len(a), volume), timeframe="1h")


def run(rows: list[tuple[float, float, float, float]], orders: dict[int, list[Order]], config: BacktestConfig = CFG,
        **kw: object) -> tuple[BacktestResult, Scripted]:  # fmt: skip
    s = Scripted(orders)
    return EventEngine(bars(rows, **kw), config).run(s), s  # type: ignore[arg-type]


def events(res: BacktestResult) -> list[tuple[str, str, int, str]]:
    return [(e.client_order_id, e.status.name, e.bar_index, e.reason) for e in res.orders]


QUIET = (100.0, 101.0, 99.0, 100.0)


# -- limit: through, not touch -------------------------------------------------------------------------------------------
def test_buy_limit_touch_is_no_fill_through_fills_at_the_limit_as_maker() -> None:
    rows = [QUIET, (100, 101, 98, 99), (99, 100, 97.5, 99), (99, 100, 98.5, 99.5)]
    res, s = run(rows, {0: [Order.limit(+1, 98.0, client_order_id="L")]})
    (fill, exit_) = res.fills
    assert (fill.bar_index, fill.price, fill.liquidity, fill.kind) == (2, 98.0, "maker", "entry")
    assert fill.quantity == 1 / 98.0 and fill.fee == FEE * (1 / 98.0) * 98.0
    assert s.fills == list(res.fills)
    (t,) = res.trades
    assert (t.signal_bar, t.entry_bar, t.entry_fill, t.exit_reason, t.exit_bar) == (0, 2, 98.0, "EOD", 3)
    xf = 99.5 * (1 - SLIP)
    assert exit_.price == xf
    assert t.net_return == pytest.approx((xf - 98) / 98 - FEE - FEE * xf / 98, abs=1e-15)
    assert events(res) == [("L", "FILLED", 2, "")]


def test_sell_limit_is_symmetric() -> None:
    rows = [QUIET, (100, 102, 99, 101), (101, 102.5, 100, 101)]
    res, _ = run(rows, {0: [Order.limit(-1, 102.0)]})
    (fill, _exit) = res.fills
    assert (fill.bar_index, fill.price, fill.direction, fill.liquidity) == (2, 102.0, -1, "maker")
    assert fill.client_order_id == "order#1"  # the engine names an order that has no id


def test_resting_limit_filled_at_a_gap_open_below_it() -> None:
    rows = [QUIET, (100, 101, 99, 100), (97, 99, 96.5, 98)]
    res, _ = run(rows, {0: [Order.limit(+1, 98.0)]})
    assert (res.fills[0].bar_index, res.fills[0].price, res.fills[0].liquidity) == (2, 97.0, "maker")


def test_limit_marketable_on_arrival_is_a_taker_fill_at_the_open_never_worse_than_the_limit() -> None:
    res, _ = run([QUIET, (97, 99, 96, 98), QUIET], {0: [Order.limit(+1, 98.0)]})
    assert (res.fills[0].bar_index, res.fills[0].price, res.fills[0].liquidity) == (1, 97 * (1 + SLIP), "taker")
    res, _ = run([QUIET, (97.99, 99, 96, 98), QUIET], {0: [Order.limit(+1, 98.0)]})
    assert res.fills[0].price == 98.0  # 97.99 * 1.0005 > 98: capped at the limit


# -- stop (stop-market) --------------------------------------------------------------------------------------------------
def test_buy_stop_triggers_at_the_trigger_and_fills_at_max_open_trigger_plus_slippage() -> None:
    rows = [QUIET, (100, 101.9, 99, 101), (101, 102, 100, 101.5), QUIET]
    res, _ = run(rows, {0: [Order.stop(+1, 102.0)]})
    f = res.fills[0]
    assert (f.bar_index, f.price, f.liquidity) == (2, 102.0 * (1 + SLIP), "taker")  # the high touches: triggered
    res, _ = run([QUIET, (103, 104, 102.5, 103), QUIET], {0: [Order.stop(+1, 102.0)]})
    assert res.fills[0].price == 103 * (1 + SLIP)  # opened through the trigger: at the open


def test_sell_stop_fills_at_min_open_trigger_minus_slippage() -> None:
    res, _ = run([QUIET, (100, 100.5, 97, 98), QUIET], {0: [Order.stop(-1, 98.0)]})
    assert (res.fills[0].bar_index, res.fills[0].price) == (1, 98.0 * (1 - SLIP))
    res, _ = run([QUIET, (96, 97, 95, 96), QUIET], {0: [Order.stop(-1, 98.0)]})
    assert res.fills[0].price == 96 * (1 - SLIP)


# -- brackets: OCO, absolute prices, same-bar ambiguity --------------------------------------------------------------
def test_bracket_stop_fills_and_cancels_the_target_oco() -> None:
    rows = [QUIET, (100, 101, 99.5, 100), (100, 100.5, 94, 95), QUIET]
    order = Order.enter(+1, client_order_id="E", stop_price=95.0, target_price=110.0)
    res, _ = run(rows, {0: [order]})
    (t,) = res.trades
    assert (t.stop, t.target, t.exit_reason, t.exit_bar, t.exit_fill) == (95.0, 110.0, "SL", 2, 95.0 * (1 - SLIP))
    assert events(res) == [("E:stop", "FILLED", 2, ""), ("E:target", "CANCELED", 2, "OCO")]


def test_bracket_target_fills_and_cancels_the_stop_and_pays_maker() -> None:
    rows = [QUIET, (100, 101, 99.5, 100), (100, 106, 99.5, 105), QUIET]
    cfg = BacktestConfig(fee_rate=FEE, slippage=0.0, fee_schedule=FeeSchedule(0.0002, 0.0005))
    res, _ = run(rows, {0: [Order.enter(+1, 4.0, 5.0, client_order_id="E")]}, cfg)
    entry, exit_ = res.fills
    assert (entry.liquidity, entry.fee) == ("taker", 0.0005 * 1.0)
    assert (exit_.reason.name, exit_.price, exit_.liquidity) == ("TP", 105.0, "maker")  # type: ignore[union-attr]
    assert exit_.fee == 0.0002 * (1 / 100) * 105.0
    assert res.trades[0].net_return == pytest.approx(0.05 - 0.0005 - 0.0002 * 1.05, abs=1e-15)
    assert events(res) == [("E:stop", "CANCELED", 2, "OCO"), ("E:target", "FILLED", 2, "")]


def test_time_exit_cancels_both_legs() -> None:
    res, _ = run([QUIET, QUIET, QUIET, QUIET], {0: [Order.enter(+1, 5.0, 5.0, max_hold_bars=2, client_order_id="E")]})
    assert res.trades[0].exit_reason == "TIME"
    assert events(res) == [("E:stop", "CANCELED", 2, "TIME"), ("E:target", "CANCELED", 2, "TIME")]


def test_limit_filled_inside_a_bar_takes_the_stop_in_that_bar_but_not_the_target() -> None:
    # bar 2 trades through the limit (98), the target (103) and the stop (96): which came first is unknown
    rows = [QUIET, QUIET, (100, 103.5, 95.5, 100), QUIET]
    res, _ = run(rows, {0: [Order.limit(+1, 98.0, stop_price=96.0, target_price=103.0)]})
    (t,) = res.trades
    assert (t.entry_bar, t.entry_fill, t.exit_bar, t.exit_reason, t.exit_fill) == (2, 98.0, 2, "SL", 96 * (1 - SLIP))
    rows = [QUIET, QUIET, (100, 103.5, 97.5, 100), (100, 103.5, 99, 100)]
    res, _ = run(rows, {0: [Order.limit(+1, 98.0, stop_price=96.0, target_price=103.0)]})
    (t,) = res.trades
    assert (t.exit_bar, t.exit_reason, t.exit_fill) == (3, "TP", 103 * (1 - SLIP))  # not in bar 2


def test_limit_filled_at_a_gap_open_resolves_its_bar_like_a_market_entry() -> None:
    rows = [QUIET, QUIET, (97, 104, 96.5, 100), QUIET]
    res, _ = run(rows, {0: [Order.limit(+1, 98.0, 2.0, 6.0)]})
    (t,) = res.trades
    assert (t.entry_fill, t.stop, t.target, t.exit_bar, t.exit_reason) == (97.0, 95.0, 103.0, 2, "TP")


def test_detail_bars_settle_where_the_limit_filled() -> None:
    main = bars([QUIET, QUIET, (100, 104, 96, 100), QUIET])
    # bar 2 in four 15m rows: the target prints in row 0 (before the fill in row 1), the stop never
    rows = [(100, 104, 99, 103), (103, 103, 97, 98), (98, 99, 97.5, 99), (99, 100, 98.5, 100)]
    d = np.array(rows)
    ts = 2 * HOUR + np.arange(4, dtype=np.int64) * (HOUR // 4)
    detail = Candles(ts, d[:, 0], d[:, 1], d[:, 2], d[:, 3], np.ones(4), timeframe="15m")
    s = Scripted({0: [Order.limit(+1, 98.0, stop_price=96.0, target_price=103.5)]})
    res = run_backtest(main, s, CFG, detail=detail)
    (t,) = res.trades
    assert (t.entry_bar, t.entry_fill, t.exit_reason, t.exit_bar) == (2, 98.0, "EOD", 3)  # the early target is not taken


# -- time in force, expiry, cancel -----------------------------------------------------------------------------------------
def test_gtc_expiry_counts_bars_from_the_first() -> None:
    rows = [QUIET, QUIET, QUIET, (99, 100, 97, 98), QUIET]
    res, _ = run(rows, {0: [Order.limit(+1, 98.0, expire_bars=2, client_order_id="L")]})
    assert res.trades.trades == () and res.fills == ()
    assert events(res) == [("L", "EXPIRED", 2, "after 2 bars")]
    res, _ = run(rows, {0: [Order.limit(+1, 98.0, expire_bars=3, client_order_id="L")]})
    assert res.fills[0].bar_index == 3


def test_ioc_only_the_opening_print_of_the_first_bar_can_fill_it() -> None:
    rows = [QUIET, (100, 101, 97, 98), QUIET]
    res, _ = run(rows, {0: [Order.limit(+1, 98.0, time_in_force="IOC", client_order_id="I")]})
    assert res.fills == () and events(res) == [("I", "CANCELED", 1, "IOC: rest cancelled")]
    rows = [QUIET, (97.5, 101, 97, 98), QUIET]
    res, _ = run(rows, {0: [Order.limit(+1, 98.0, time_in_force="IOC", client_order_id="I")]})
    assert (res.fills[0].price, res.fills[0].liquidity) == (97.5 * (1 + SLIP), "taker")
    assert events(res) == [("I", "FILLED", 1, "")]


def test_cancel_removes_a_resting_order_and_a_new_entry_may_follow() -> None:
    rows = [QUIET, QUIET, (99, 100, 97, 98), (99, 100, 97, 98), QUIET]
    orders = {0: [Order.limit(+1, 98.0, client_order_id="L")], 1: [Order.cancel("L"), Order.limit(+1, 97.5, client_order_id="M")]}
    res, _ = run(rows, orders)
    assert [(f.client_order_id, f.bar_index, f.price) for f in res.fills if f.kind == "entry"] == [("M", 2, 97.5)]
    assert events(res)[0] == ("L", "CANCELED", 1, "cancel")
    res, _ = run(rows, {1: [Order.cancel("nope")]})
    assert events(res) == [("nope", "REJECTED", 1, "cancel: no such working order")]


def test_an_exit_cancels_a_working_entry() -> None:
    rows = [QUIET, QUIET, (99, 100, 97, 98), QUIET]
    res, _ = run(rows, {0: [Order.limit(+1, 98.0, client_order_id="L")], 1: [Order.exit()]})
    assert res.fills == () and events(res) == [("L", "CANCELED", 2, "exit")]


# -- partial fills --------------------------------------------------------------------------------------------------
def test_participation_cap_fills_over_several_bars_with_vwap_entry_and_fees_per_fill() -> None:
    rows = [QUIET, (99, 100, 97.5, 99), (97, 99, 96, 98), (99, 100, 97, 98), (98, 100, 97, 99), (99, 100, 98, 99)]
    cfg = BacktestConfig(fee_rate=FEE, slippage=0.0, initial_cash=1000.0, participation=0.5)
    res, s = run(rows, {0: [Order.limit(+1, 98.0, quantity=1.2, client_order_id="L")]}, cfg, volume=1.0)
    entries = [(f.bar_index, f.quantity, f.price) for f in res.fills if f.kind == "entry"]
    assert entries == [(1, 0.5, 98.0), (2, 0.5, 97.0), (3, pytest.approx(0.2), 98.0)]
    assert s.fills == list(res.fills)  # the strategy hears of each fill
    assert [f.fee for f in res.fills if f.kind == "entry"] == [FEE * 0.5 * 98, FEE * 0.5 * 97, pytest.approx(FEE * 0.2 * 98)]
    assert [e[1] for e in events(res)] == ["PARTIALLY_FILLED", "PARTIALLY_FILLED", "FILLED"]
    (t,) = res.trades
    vwap = (0.5 * 98 + 0.5 * 97 + 0.2 * 98) / 1.2
    assert t.entry_bar == 1 and t.entry_fill == pytest.approx(vwap, rel=1e-14)
    exit_ = res.fills[-1]
    assert (exit_.quantity, exit_.price) == (pytest.approx(1.2), 99.0)
    pnl = 1.2 * (99 - vwap) - sum(f.fee for f in res.fills)
    assert res.equity.equity[-1] == pytest.approx(1000 + pnl, rel=1e-12)
    assert t.net_return == pytest.approx(pnl / (1.2 * vwap), rel=1e-12)


def test_a_market_order_under_a_cap_fills_the_rest_at_later_opens() -> None:
    rows = [QUIET, (100, 101, 99, 100), (101, 102, 100, 101), QUIET]
    cfg = BacktestConfig(fee_rate=0.0, slippage=0.0, initial_cash=1000.0, participation=0.25)
    res, _ = run(rows, {0: [Order.enter(+1, quantity=0.4)]}, cfg, volume=1.0)
    assert [(f.bar_index, f.quantity, f.price) for f in res.fills if f.kind == "entry"] == [
        (1, 0.25, 100.0),
        (2, pytest.approx(0.15), 101.0),
    ]


def test_trades_fill_a_limit_only_through_its_price_up_to_their_quantity() -> None:
    c = bars([QUIET, (99, 100, 97, 98), (99, 100, 97, 98), QUIET])
    prices = np.array([98.5, 98.0, 97.9, 97.5, 98.2, 97.0])  # bar 1: four prints; bar 2: two
    qty = np.array([1.0, 2.0, 0.3, 0.4, 5.0, 0.1])
    ts = np.array([HOUR + 1, HOUR + 2, HOUR + 3, HOUR + 4, 2 * HOUR + 1, 2 * HOUR + 2], dtype=np.int64)
    trades = Trades(ts, np.arange(6, dtype=np.int64), prices, qty, np.zeros(6, bool))
    cfg = BacktestConfig(fee_rate=0.0, slippage=0.0, initial_cash=1000.0)
    s = Scripted({0: [Order.limit(+1, 98.0, quantity=1.0)]})
    res = EventEngine(c, cfg, trades=trades).run(s)
    entries = [(f.bar_index, f.quantity, f.price) for f in res.fills if f.kind == "entry"]
    assert entries == [(1, pytest.approx(0.7), 98.0), (2, pytest.approx(0.1), 98.0)]  # the print at 98.0 is a touch


def test_fee_schedule_binance_default_and_errors() -> None:
    b = FeeSchedule.for_exchange("binance")
    assert (b.maker, b.taker) == (0.001, 0.001) and "binance.com" in b.source
    with pytest.raises(ValueError, match="no fee schedule for exchange 'nowhere'"):
        FeeSchedule.for_exchange("nowhere")
    with pytest.raises(UserInputError, match="participation must be in"):
        BacktestConfig(participation=1.5)
    with pytest.raises(UserInputError, match="fee_schedule must be a FeeSchedule"):
        BacktestConfig(fee_schedule=0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit price must be a finite number > 0"):
        Order.limit(+1, -1.0)
    with pytest.raises(ValueError, match="expire_bars must be an integer >= 1"):
        Order.stop(+1, 100.0, expire_bars=0)
    with pytest.raises(ValueError, match="time_in_force must be 'GTC' or 'IOC'"):
        Order.limit(+1, 100.0, time_in_force="FOK")  # type: ignore[arg-type]
    o = Order.stop(-1, 90.0, quantity=2.0)
    assert (o.order_type, o.price, o.quantity, o.action) == (OrderType.STOP, 90.0, 2.0, "enter")


class _Wrapped:
    """A venue without working-order matching (like an exchange adapter)."""

    def __init__(self) -> None:
        self.inner = SimulatedVenue()

    def fill_entry(self, *a: object) -> Fill:
        return self.inner.fill_entry(*a)  # type: ignore[arg-type]

    def fill_exit(self, *a: object) -> Fill:
        return self.inner.fill_exit(*a)  # type: ignore[arg-type]

    def net_return(self, *a: float) -> float:
        return self.inner.net_return(*a)  # type: ignore[arg-type]

    def bracket(self, *a: object) -> tuple[float, float]:
        return self.inner.bracket(*a)  # type: ignore[arg-type]

    def resolve(self, *a: object) -> object:
        return self.inner.resolve(*a)  # type: ignore[arg-type]


def test_a_venue_without_matching_refuses_limit_orders_in_one_line() -> None:
    engine = EventEngine(bars([QUIET, QUIET]), CFG, venue=_Wrapped())  # type: ignore[arg-type]
    with pytest.raises(UserInputError, match=r"limit / IOC / expiring orders .* _Wrapped has no match\(\)"):
        engine.run(Scripted({0: [Order.limit(+1, 98.0)]}))  # type: ignore[arg-type]


# -- properties -----------------------------------------------------------------------------------------------------
@st.composite
def bar_series(draw: st.DrawFn, n: int = 12) -> list[tuple[float, float, float, float]]:
    rows, price = [], 100.0
    for _ in range(n):
        o = price * (1 + draw(st.floats(-0.03, 0.03)))
        c = o * (1 + draw(st.floats(-0.03, 0.03)))
        h = max(o, c) * (1 + draw(st.floats(0, 0.02)))
        lo = min(o, c) * (1 - draw(st.floats(0, 0.02)))
        rows.append((o, h, lo, c))
        price = c
    return rows


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=bar_series(),
    direction=st.sampled_from([1, -1]),
    offset=st.floats(-0.04, 0.04),
    at=st.integers(0, 5),
    cap=st.one_of(st.none(), st.floats(0.05, 1.0)),
    qty=st.floats(0.1, 3.0),
    kind=st.sampled_from(["limit", "stop"]),
)
def test_limits_never_fill_worse_than_their_price_and_never_more_than_ordered(
    rows: list[tuple[float, float, float, float]], direction: int, offset: float, at: int, cap: float | None,
    qty: float, kind: str,
) -> None:  # fmt: skip
    price = rows[at][3] * (1 + offset)
    make = Order.limit if kind == "limit" else Order.stop
    order = make(direction, price, 0.05 * price, 0.05 * price, quantity=qty, client_order_id="P")
    cfg = BacktestConfig(fee_rate=FEE, slippage=SLIP, initial_cash=1000.0, participation=cap)
    res, _ = run(rows, {at: [order]}, cfg, volume=1.0)
    entries = [f for f in res.fills if f.kind == "entry"]
    assert sum(f.quantity for f in entries) <= qty * (1 + 1e-12)
    for k, f in enumerate(entries):
        assert f.bar_index > at
        _o, h, lo, _c = rows[f.bar_index]
        if kind == "limit":
            assert (f.price <= price) if direction > 0 else (f.price >= price)
            assert (lo < price) if direction > 0 else (h > price)  # traded through, not touched
        elif k == 0:  # the trigger; the rest of a triggered stop fills at later opens like a market order
            assert (h >= price) if direction > 0 else (lo <= price)
        if cap is not None:
            assert f.quantity <= cap * 1.0 * (1 + 1e-12)
    if res.trades.trades:
        (t,) = res.trades
        assert math.isfinite(t.net_return) and t.entry_bar == entries[0].bar_index


@settings(max_examples=40, deadline=None)
@given(rows=bar_series(16), signals=st.lists(st.tuples(st.integers(0, 14), st.sampled_from([1, -1, 0])), max_size=6))
def test_market_orders_fill_the_same_on_the_working_order_path(
    rows: list[tuple[float, float, float, float]], signals: list[tuple[int, int]]
) -> None:
    """A run that switches the engine to working-order matching (an IOC limit that can never fill, on a bar with
    no other order) gives the market orders exactly the trades of the plain run."""
    plan: dict[int, list[Order]] = {}
    for t, d in signals:
        plan.setdefault(t, []).append(Order.exit() if d == 0 else Order.enter(d, 0.02 * rows[t][3], 0.03 * rows[t][3]))
    plain, _ = run(rows, plan)
    mixed = {t: list(v) for t, v in plan.items()}
    mixed.setdefault(15, []).append(Order.limit(+1, 1e-6, time_in_force="IOC"))  # decided at the last bar: never acts
    switched = EventEngine(bars(rows), CFG)
    switched._working = True  # the working-order path from the first bar on
    res = switched.run(Scripted(mixed))  # type: ignore[arg-type]
    assert res.trades == plain.trades and res.fills == plain.fills
    assert np.array_equal(res.equity.equity, plain.equity.equity)


# -- real data ----------------------------------------------------------------------------------------------------------
class DipLimits:
    """After a down bar, bid 0.5 % under its close for up to 3 bars; bracket 2 % / 3 % from the fill, 24 bars max."""

    def on_bar(self, ctx: BarContext) -> list[Order]:
        b = ctx.bar
        if ctx.position is None and b.close < b.open:
            return [Order.limit(+1, b.close * 0.995, 0.02 * b.close, 0.03 * b.close, 24, expire_bars=3)]
        return []

    def on_fill(self, fill: Fill) -> None:
        """No fill-dependent state."""


class DipLimitsSparse(DipLimits):
    """The same, offering the bars where it may act (down bars) so the engine can skip the others."""

    def wake_bars(self, candles: Candles) -> np.ndarray:
        return np.flatnonzero(candles.close < candles.open)


def test_limit_entries_on_binance_btcusdt_1h(shared_data: Path) -> None:
    import pyarrow.parquet as pq

    table = pq.read_table(shared_data / "binance" / "BTCUSDT-1h.parquet").slice(0, 3000)
    c = Candles.from_arrow(table, timeframe="1h")
    cfg = BacktestConfig(fee_rate=0.001, slippage=0.0005, fee_schedule=FeeSchedule.for_exchange("binance"))
    res = EventEngine(c, cfg).run(DipLimits())  # type: ignore[arg-type]
    entries = [f for f in res.fills if f.kind == "entry"]
    assert len(res.trades) == len(entries) > 20
    limits = {e.client_order_id: e for e in res.orders}
    assert all(e.status in (OrderStatus.FILLED, OrderStatus.EXPIRED, OrderStatus.CANCELED) for e in limits.values())
    lo, op = c.low, c.open
    for f, t in zip(entries, res.trades, strict=True):
        limit = c.close[t.signal_bar] * 0.995
        assert f.price <= limit and (lo[f.bar_index] < limit)
        assert f.liquidity == ("taker" if f.bar_index == t.signal_bar + 1 and op[f.bar_index] < limit else "maker")
        assert 1 <= f.bar_index - t.signal_bar <= 3
    # every fill is a whole order here (no cap): the return is the market-order formula with the fees paid
    t0, x0 = res.trades[0], next(f for f in res.fills if f.kind == "exit")
    assert t0.net_return == pytest.approx(
        (x0.price - t0.entry_fill) / t0.entry_fill - 0.001 * (1 + x0.price / t0.entry_fill), abs=1e-12
    )
    assert sum(1 for e in res.orders if e.status is OrderStatus.EXPIRED) > 0
    # sparse driving (only the down bars are events, working orders keep the bars after them live): same result
    sparse = EventEngine(c, cfg).run(DipLimitsSparse())  # type: ignore[arg-type]
    assert sparse.trades == res.trades and sparse.fills == res.fills and sparse.orders == res.orders
    assert np.array_equal(sparse.equity.equity, res.equity.equity)


def test_limit_orders_for_one_of_two_symbols() -> None:
    a, b = bars([QUIET, QUIET, QUIET]), bars([QUIET, (100, 101, 97, 98), QUIET])
    a, b = (Candles(x.ts, x.open, x.high, x.low, x.close, x.volume, symbol=s, timeframe="1h") for x, s in ((a, "A"), (b, "B")))
    res = EventEngine({"A": a, "B": b}, CFG).run(Scripted({0: [Order.limit(+1, 98.0, symbol="B", client_order_id="L")]}))  # type: ignore[arg-type]
    (fill, _x) = res.fills
    assert (fill.symbol, fill.bar_index, fill.price) == ("B", 1, 98.0)
    assert list(res.symbol_trades["A"]) == [] and len(res.symbol_trades["B"]) == 1


@settings(max_examples=60, deadline=None)
@given(
    prices=st.lists(st.floats(95.0, 101.0), min_size=1, max_size=12),
    amounts=st.lists(st.floats(0.01, 2.0), min_size=12, max_size=12),
    qty=st.floats(0.1, 5.0),
)
def test_trade_prints_bound_a_limit_fill(prices: list[float], amounts: list[float], qty: float) -> None:
    """One bar of prints: the fill is at the limit, never more than the quantity printed strictly through it."""
    n = len(prices)
    trades = Trades(HOUR + np.arange(n, dtype=np.int64), np.arange(n, dtype=np.int64), np.array(prices),
                    np.array(amounts[:n]), np.zeros(n, bool))  # fmt: skip
    c = bars([QUIET, (99.5, 101, 95, 100)])
    res = EventEngine(c, BacktestConfig(initial_cash=1000.0), trades=trades).run(
        Scripted({0: [Order.limit(+1, 98.0, quantity=qty)]})
    )  # type: ignore[arg-type]
    through = sum(a for p, a in zip(prices, amounts, strict=False) if p < 98.0)
    entries = [f for f in res.fills if f.kind == "entry"]
    assert sum(f.quantity for f in entries) == pytest.approx(min(qty, through)) if through > 0 else entries == []
    assert all(f.price == 98.0 and f.liquidity == "maker" for f in entries)


class BidUnderClose:
    """Every 10th bar when flat: bid 0.005 % under the close for 10 bars (all equity), hold 20 bars at most."""

    def __init__(self) -> None:
        self.limits: dict[str, float] = {}
        self.n = 0

    def on_bar(self, ctx: BarContext) -> list[Order]:
        if ctx.position is not None or ctx.bar.index % 10:
            return []
        self.n += 1
        cid, price = f"bid{self.n}", ctx.bar.close * 0.99995
        self.limits[cid] = price
        return [Order.limit(+1, price, max_hold_bars=20, expire_bars=10, client_order_id=cid)]

    def on_fill(self, fill: Fill) -> None:
        """No fill-dependent state."""


def test_limits_fill_from_real_binance_trade_prints(shared_data: Path) -> None:
    from pivotal.data.importers.shared_parquet import read_shared
    from pivotal.data.resample import candles_from_trades

    trades = read_shared(shared_data / "binance" / "BTCUSDT-trades.parquet").trades  # type: ignore[attr-defined]
    bars_1s, _ = candles_from_trades(trades, "1s")
    cfg = BacktestConfig(fee_rate=0.001, slippage=0.0, initial_cash=1_000_000.0)  # quote units: about 25 BTC per entry
    s = BidUnderClose()
    res = EventEngine(bars_1s, cfg, trades=trades).run(s)  # type: ignore[arg-type]
    entries = [f for f in res.fills if f.kind == "entry"]
    assert len(res.trades) > 10 and len(entries) > len(res.trades)  # printed quantity limits the fills: several each
    bar_ts = np.asarray(bars_1s.ts)
    for f in entries:
        limit = s.limits[f.client_order_id]
        in_bar = (trades.ts >= bar_ts[f.bar_index]) & (trades.ts < bar_ts[f.bar_index] + 1_000)
        through = trades.amount[in_bar & (trades.price < limit)].sum()
        assert f.price == limit and f.liquidity == "maker" and 0 < f.quantity <= through * (1 + 1e-12)
    filled: dict[str, float] = {}
    for f in entries:
        filled[f.client_order_id] = filled.get(f.client_order_id, 0.0) + f.quantity * f.price
    assert all(v <= 1_000_000.0 * 1.5 for v in filled.values())
    # the bars alone (no prints) fill each order at once on the same first bar
    bars_only = EventEngine(bars_1s, cfg).run(BidUnderClose())  # type: ignore[arg-type]
    first = {f.client_order_id: f.bar_index for f in reversed(entries)}
    assert {f.client_order_id: f.bar_index for f in bars_only.fills if f.kind == "entry"}.items() >= first.items()
