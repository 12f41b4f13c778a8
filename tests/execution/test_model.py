"""The execution model's parts on hand-written bars: orders and fills carry symbol/quantity/fee/id, the portfolio's
accounting, the risk gate's reasons, several symbols in one engine, the one risk config, exit-reason names/codes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pivotal.core.orders import Bar, Fill, Order
from pivotal.core.trades import exit_reason_code, exit_reason_name
from pivotal.core.vocabulary import EXIT_SL_GAP, EXIT_TIME, ExitReason, OrderSide
from pivotal.data.candles import Candles
from pivotal.execution import Portfolio, SimulatedVenue, Venue
from pivotal.execution.engine import BacktestConfig, EventEngine, run_backtest
from pivotal.optimize.configs import CIRCUIT_BREAKER_DEFAULTS as OPTIMIZE_DEFAULTS
from pivotal.risk import CIRCUIT_BREAKER_DEFAULTS, DefaultRiskGate, RiskConfig, RiskGate
from pivotal.risk.config import NOT_ENFORCED_YET
from pivotal.strategies.base import BarContext

pytestmark = pytest.mark.unit
HOUR = 3_600_000


def bars(rows: list[tuple[float, float, float, float]], symbol: str = "", t0: int = 0) -> Candles:
    a = np.array(rows, dtype=np.float64)
    ts = t0 + np.arange(len(a), dtype=np.int64) * HOUR
    return Candles(ts, a[:, 0], a[:, 1], a[:, 2], a[:, 3], np.ones(len(a)), symbol=symbol, timeframe="1h")


class Scripted:
    def __init__(self, orders: dict[tuple[str, int], list[Order]]) -> None:
        self.orders, self.fills, self.bars = orders, [], []

    def on_bar(self, ctx: BarContext) -> list[Order]:
        self.bars.append((ctx.bar.symbol, ctx.bar.index, ctx.bar.ts))
        return self.orders.get((ctx.bar.symbol, ctx.bar.index), [])

    def on_fill(self, fill: Fill) -> None:
        self.fills.append(fill)


def test_fills_carry_symbol_quantity_fee_and_client_order_id() -> None:
    c = bars([(100, 101, 99, 100), (200, 201, 199, 200), (250, 251, 249, 250)], symbol="BTC/USDT")
    order = Order.enter(+1, client_order_id="abc", fraction=0.5)
    assert order.side is OrderSide.BUY and Order.exit().side is None
    s = Scripted({("BTC/USDT", 0): [order]})
    res = run_backtest(c, s, BacktestConfig(fee_rate=0.001, slippage=0.0))
    entry, exit_ = s.fills
    assert (entry.symbol, entry.kind, entry.side, entry.client_order_id) == ("BTC/USDT", "entry", OrderSide.BUY, "abc")
    assert entry.quantity == pytest.approx(0.5 / 200) and entry.fee == pytest.approx(0.001 * 0.5)
    assert (exit_.reason, exit_.side, exit_.quantity) == (ExitReason.EOD, OrderSide.SELL, entry.quantity)
    assert exit_.fee == pytest.approx(0.001 * entry.quantity * 250)
    net = (250 - 200) / 200 - 0.001 * (1 + 250 / 200)
    assert res.trades[0].net_return == pytest.approx(net)
    assert res.equity.equity[-1] == pytest.approx(1 + 0.5 * net)  # half the equity was at stake


def test_quantity_orders_commit_quantity_times_fill() -> None:
    c = bars([(100, 101, 99, 100), (100, 101, 99, 100), (110, 111, 109, 110)])
    s = Scripted({("", 0): [Order.enter(+1, quantity=0.002)]})
    res = run_backtest(c, s, BacktestConfig(fee_rate=0.0, slippage=0.0))
    assert s.fills[0].quantity == 0.002
    assert res.equity.equity.tolist() == pytest.approx([1.0, 1.0, 1.0 + 0.2 * 0.1])


def test_portfolio_positions_cash_and_pnl() -> None:
    p = Portfolio(1000.0)
    venue = SimulatedVenue(fee_rate=0.0, slippage=0.0)
    order = Order.enter(-1, fraction=0.25)
    fill = venue.fill_entry(order, "ETH", 3, 30, 2000.0, p.equity())
    p.open(order, 2, fill, *venue.bracket(order, fill.price), p.allocation_for(order, fill.price))
    assert p.quantity("ETH") == pytest.approx(-0.125) and p.cash == pytest.approx(750.0)
    p.mark("ETH", 1900.0)
    assert p.unrealised_pnl() == pytest.approx(12.5) and p.equity() == pytest.approx(1012.5)
    exit_fill = venue.fill_exit(p.positions["ETH"], 5, 50, 1900.0, EXIT_TIME)
    trade = p.close(exit_fill, venue.net_return(-1, 2000.0, exit_fill.price), "TIME")
    assert trade.exit_reason == "TIME" and p.realised_pnl() == pytest.approx(12.5) and not p.positions
    with pytest.raises(ValueError, match="initial cash"):
        Portfolio(0.0)
    assert isinstance(venue, Venue)


def test_gate_denies_with_a_reason_and_always_allows_exits() -> None:
    gate = DefaultRiskGate(window=(2, 4))
    bar = Bar(1, 0, 1.0, 1.0, 1.0, 1.0, 1.0)
    assert isinstance(gate, RiskGate)
    assert gate.check(Order.enter(+1), bar, False, False) == (False, "outside the trade window")
    assert gate.check(Order.enter(+1), bar._replace(index=2), True, False) == (False, "position open")
    assert gate.check(Order.enter(+1), bar._replace(index=2), False, True) == (False, "one entry per bar")
    assert gate.check(Order.exit(), bar, True, False).allowed
    c = bars([(100, 101, 99, 100)] * 6)
    res = run_backtest(c, Scripted({("", 0): [Order.enter(+1)], ("", 1): [Order.enter(+1)]}), BacktestConfig(0.0, 0.0))
    assert res.blocked_entries == 1 and res.denials == {"position open": 1}


def test_reversal_exit_then_entry_at_one_open() -> None:
    c = bars([(100, 101, 99, 100), (100, 101, 99, 100), (104, 105, 103, 104), (108, 109, 107, 108)])
    s = Scripted({("", 0): [Order.enter(+1)], ("", 1): [Order.exit(), Order.enter(-1)]})
    res = run_backtest(c, s, BacktestConfig(0.0, 0.0))
    assert [(t.direction, t.entry_bar, t.exit_bar, t.exit_reason) for t in res.trades] == [
        (1, 1, 2, "SIGNAL"),
        (-1, 2, 3, "EOD"),
    ]


def test_two_symbols_share_one_portfolio_and_are_merged_by_time() -> None:
    a = bars([(100, 101, 99, 100), (100, 101, 99, 100), (110, 111, 109, 110)], symbol="A")
    b = bars([(50, 51, 49, 50), (50, 51, 49, 50), (45, 46, 44, 45)], symbol="B", t0=HOUR // 2)
    s = Scripted({("A", 0): [Order.enter(+1, fraction=0.5)], ("B", 0): [Order.enter(+1, fraction=0.5)]})
    res = EventEngine({"A": a, "B": b}, BacktestConfig(0.0, 0.0)).run(s)
    assert [(sym, i) for sym, i, _ in s.bars] == [("A", 0), ("B", 0), ("A", 1), ("B", 1), ("A", 2), ("B", 2)]
    assert [t.exit_reason for t in res.symbol_trades["A"]] == ["EOD"] and len(res.symbol_trades["B"]) == 1
    assert res.trades.returns.tolist() == pytest.approx([0.1, -0.1])
    # A's allocation was 0.5; B's 0.5 of the equity marked at B's first fill (A still at its entry): 0.5
    assert res.equity.equity[-1] == pytest.approx(1 + 0.5 * 0.1 - 0.5 * 0.1)
    assert res.equity.ts.tolist() == sorted(set(a.ts.tolist()) | set(b.ts.tolist()))


def test_one_risk_config_holds_the_seven_a_plus_defaults() -> None:
    assert CIRCUIT_BREAKER_DEFAULTS == {
        "max_daily_loss": 0.02,
        "max_correlation_spike": 0.8,
        "unusual_market_threshold": 3.0,
        "latency_threshold_ms": 500,
        "consecutive_losses_limit": 5,
        "max_adverse_selection": 0.6,
        "regime_break_threshold": 0.3,
    }
    assert OPTIMIZE_DEFAULTS is CIRCUIT_BREAKER_DEFAULTS  # one definition
    assert set(NOT_ENFORCED_YET) == {
        "max_correlation_spike",
        "latency_threshold_ms",
        "max_adverse_selection",
        "regime_break_threshold",
    }
    assert RiskConfig().breaker_values() == CIRCUIT_BREAKER_DEFAULTS


def test_exit_reasons_are_names_in_files_and_codes_in_kernels() -> None:
    assert exit_reason_name(EXIT_SL_GAP) == "SL_GAP" and exit_reason_code("TIME") == EXIT_TIME
    assert [exit_reason_code(exit_reason_name(int(m))) for m in ExitReason] == [int(m) for m in ExitReason]
    with pytest.raises(ValueError, match="unknown exit reason 'STOP'"):
        exit_reason_code("STOP")
    assert not math.isnan(Order.enter(1).fraction)
