"""Event engine execution rules on tiny hand-written bars: fills, fees, slippage, bracket order, gaps, detail bars."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pivotal.core.orders import Fill, Order
from pivotal.data.candles import Candles
from pivotal.execution.engine import BacktestConfig, run_backtest
from pivotal.risk.config import RiskConfig
from pivotal.strategies.base import BarContext, Strategy

HOUR = 3_600_000
NO_COSTS = BacktestConfig(fee_rate=0.0, slippage=0.0)


class Scripted:
    """A test strategy that places given orders at given bars and records what it was told."""

    def __init__(self, orders: dict[int, list[Order]]) -> None:
        self.orders = orders
        self.fills: list[Fill] = []
        self.contexts: list[BarContext] = []

    def on_bar(self, ctx: BarContext) -> list[Order]:
        self.contexts.append(ctx)
        return self.orders.get(ctx.bar.index, [])

    def on_fill(self, fill: Fill) -> None:
        self.fills.append(fill)


def bars(rows: list[tuple[float, float, float, float]], timeframe: str = "1h", step: int = HOUR, t0: int = 0) -> Candles:
    a = np.array(rows, dtype=np.float64)
    ts = t0 + np.arange(len(a), dtype=np.int64) * step
    return Candles(ts, a[:, 0], a[:, 1], a[:, 2], a[:, 3], np.ones(len(a)), timeframe=timeframe)


FLAT = [(100, 101, 99, 100)] * 3


def test_scripted_strategy_satisfies_the_protocol() -> None:
    assert isinstance(Scripted({}), Strategy)


def test_entry_fills_at_next_open_with_slippage_and_fees() -> None:
    c = bars([(100, 101, 99, 100), (102, 103, 101, 102), (102, 112, 101, 111), (111, 112, 110, 111)])
    s = Scripted({0: [Order.enter(+1, stop_offset=5.0, target_offset=8.0)]})
    res = run_backtest(c, s, BacktestConfig(fee_rate=0.001, slippage=0.0005))
    (t,) = res.trades
    ef = 102 * 1.0005
    assert (t.signal_bar, t.entry_bar, t.entry_time, t.entry_fill) == (0, 1, HOUR, ef)
    assert (t.stop, t.target) == (ef - 5.0, ef + 8.0)
    assert (t.exit_bar, t.exit_reason) == (2, "TP")
    xf = (ef + 8.0) * (1 - 0.0005)
    assert t.exit_fill == xf
    assert t.net_return == (xf - ef) / ef - 0.001 * (1 + xf / ef)
    assert [f.kind for f in s.fills] == ["entry", "exit"]


def test_stop_is_checked_before_target_when_one_bar_touches_both() -> None:
    c = bars([(100, 101, 99, 100), (100, 101, 99, 100), (100, 120, 80, 100)])
    res = run_backtest(c, Scripted({0: [Order.enter(+1, 5.0, 5.0)]}), NO_COSTS)
    assert [(t.exit_bar, t.exit_reason, t.exit_fill) for t in res.trades] == [(2, "SL", 95.0)]


def test_gap_through_stop_exits_at_the_open_not_the_stop() -> None:
    c = bars([(100, 101, 99, 100), (100, 101, 99, 100), (90, 91, 89, 90)])
    res = run_backtest(c, Scripted({0: [Order.enter(+1, 5.0, 5.0)]}), NO_COSTS)
    assert [(t.exit_bar, t.exit_reason, t.exit_fill) for t in res.trades] == [(2, "SL_GAP", 90.0)]
    assert res.trades[0].net_return == pytest.approx(-0.10)


def test_short_gap_through_target_exits_at_the_open() -> None:
    c = bars([(100, 101, 99, 100), (100, 101, 99, 100), (90, 91, 89, 90)])
    res = run_backtest(c, Scripted({0: [Order.enter(-1, 5.0, 5.0)]}), NO_COSTS)
    (t,) = res.trades
    assert (t.direction, t.stop, t.target, t.exit_reason, t.exit_fill) == (-1, 105.0, 95.0, "TP_GAP", 90.0)
    assert t.net_return == pytest.approx(0.10)


def test_no_gap_exit_on_the_entry_bar_itself() -> None:
    """On the entry bar the open is the fill; only its high/low can trigger the bracket."""
    c = bars([(100, 101, 99, 100), (100, 100.5, 94, 100)])
    res = run_backtest(c, Scripted({0: [Order.enter(+1, 5.0, 5.0)]}), NO_COSTS)
    assert [(t.exit_bar, t.exit_reason) for t in res.trades] == [(1, "SL")]


def test_time_exit_at_the_close_of_the_last_held_bar_and_eod() -> None:
    c = bars(FLAT * 3)
    res = run_backtest(c, Scripted({0: [Order.enter(+1, 50.0, 50.0, max_hold_bars=3)], 5: [Order.enter(+1)]}), NO_COSTS)
    assert [(t.entry_bar, t.exit_bar, t.exit_reason) for t in res.trades] == [(1, 3, "TIME"), (6, 8, "EOD")]


def test_order_on_the_last_bar_never_fills() -> None:
    res = run_backtest(bars(FLAT), Scripted({2: [Order.enter(+1)]}), NO_COSTS)
    assert len(res.trades) == 0


def test_exit_order_fills_at_next_open_and_entries_while_open_are_blocked() -> None:
    c = bars([(100, 101, 99, 100), (101, 102, 100, 101), (102, 103, 101, 102), (104, 105, 103, 104), (106, 107, 105, 106)])
    s = Scripted({0: [Order.enter(+1)], 1: [Order.enter(-1)], 2: [Order.exit()]})
    res = run_backtest(c, s, NO_COSTS)
    assert [(t.entry_bar, t.exit_bar, t.exit_reason, t.exit_fill) for t in res.trades] == [(1, 3, "SIGNAL", 104.0)]
    assert res.blocked_entries == 1
    assert s.contexts[3].last_exit_bar == 3 and s.contexts[3].position is None
    assert s.contexts[2].position is not None and s.contexts[2].position.entry_fill == 101.0


def test_trade_window_only_admits_orders_decided_inside_it() -> None:
    s = Scripted({0: [Order.enter(+1, 50.0, 50.0, 1)], 3: [Order.enter(+1, 50.0, 50.0, 1)]})
    res = run_backtest(bars(FLAT * 2), s, BacktestConfig(0.0, 0.0, trade_window=(2, 5)))
    assert [t.signal_bar for t in res.trades] == [3]


def test_detail_candles_settle_which_level_was_hit_first() -> None:
    main = bars([(100, 101, 99, 100), (100, 101, 99, 100), (100, 120, 80, 100)])
    quarter = 15 * 60_000
    # inside bar 2 the target (105) prints in the first quarter, the stop (95) only later
    detail = bars([(100, 106, 99, 104), (104, 104, 80, 85), (85, 120, 84, 110), (110, 111, 99, 100)], "15m", quarter, 2 * HOUR)
    coarse = run_backtest(main, Scripted({0: [Order.enter(+1, 5.0, 5.0)]}), NO_COSTS)
    fine = run_backtest(main, Scripted({0: [Order.enter(+1, 5.0, 5.0)]}), NO_COSTS, detail=detail)
    assert coarse.trades[0].exit_reason == "SL"
    assert (fine.trades[0].exit_reason, fine.trades[0].exit_fill) == ("TP", 105.0)


def test_detail_candle_gap_fills_at_the_detail_open() -> None:
    main = bars([(100, 101, 99, 100), (100, 101, 99, 100), (100, 100, 80, 90)])
    quarter = 15 * 60_000
    detail = bars([(100, 100, 99, 99.5), (92, 93, 91, 92), (92, 92, 80, 85), (85, 90, 84, 90)], "15m", quarter, 2 * HOUR)
    res = run_backtest(main, Scripted({0: [Order.enter(+1, 5.0, 5.0)]}), NO_COSTS, detail=detail)
    assert [(t.exit_reason, t.exit_fill) for t in res.trades] == [("SL_GAP", 92.0)]


def test_detail_needs_the_main_timeframe() -> None:
    c = Candles(np.arange(3, dtype=np.int64), *np.ones((5, 3)))
    with pytest.raises(ValueError, match="timeframe"):
        run_backtest(c, Scripted({}), NO_COSTS, detail=c)


def test_equity_curve_marks_to_market_and_ends_at_the_compounded_result() -> None:
    c = bars([(100, 101, 99, 100), (100, 101, 99, 100), (100, 104, 99, 103), (103, 111, 102, 110)])
    res = run_backtest(c, Scripted({0: [Order.enter(+1, 50.0, 10.0)]}), NO_COSTS)
    assert res.equity.equity.tolist() == pytest.approx([1.0, 1.0, 1.03, 1.10])
    assert res.equity.in_position.tolist() == [False, True, True, True]
    assert res.metrics["net_profit_pct"] == pytest.approx(10.0)
    assert res.metrics["exposure"] == pytest.approx(0.75)


def test_consecutive_loss_breaker_blocks_entries_for_the_rest_of_the_day() -> None:
    down = [(100, 100.5, 94, 95)] * 8
    s = Scripted({i: [Order.enter(+1, 1.0, 50.0)] for i in range(0, 8, 2)})
    off = run_backtest(bars(down), s, NO_COSTS)
    assert len(off.trades) == 4
    s = Scripted({i: [Order.enter(+1, 1.0, 50.0)] for i in range(0, 8, 2)})
    cfg = BacktestConfig(
        0.0, 0.0, risk=RiskConfig(max_daily_loss=None, consecutive_losses_limit=2, unusual_market_threshold=None)
    )
    on = run_backtest(bars(down), s, cfg)
    assert len(on.trades) == 2 and on.blocked_entries == 2


def test_daily_loss_breaker_blocks_new_entries_after_a_2pct_loss() -> None:
    rows = [(100, 100.5, 99.5, 100), (100, 100.5, 96, 97), (97, 97.5, 96.5, 97), (97, 98, 96, 97), (97, 98, 96, 97)]
    orders = {0: [Order.enter(+1, 3.0, 50.0)], 2: [Order.enter(+1, 50.0, 50.0)]}
    cfg = BacktestConfig(0.0, 0.0, risk=RiskConfig())
    res = run_backtest(bars(rows), Scripted(orders), cfg)
    assert [t.exit_reason for t in res.trades] == ["SL"]
    assert res.blocked_entries == 1


def test_trade_list_exports_csv_and_json(tmp_path: Path) -> None:
    c = bars([(100, 101, 99, 100), (102, 103, 101, 102), (102, 112, 101, 111)])
    res = run_backtest(c, Scripted({0: [Order.enter(+1, 5.0, 8.0, level=99.0)]}), NO_COSTS)
    res.trades.write(tmp_path / "t.csv")
    res.trades.write(tmp_path / "t.json")
    frame = pd.read_csv(tmp_path / "t.csv")
    assert frame.loc[0, ["signal_bar", "side", "level", "entry_bar", "exit_reason"]].tolist() == [0, "LONG", 99.0, 1, "TP"]
    rows = json.loads((tmp_path / "t.json").read_text())
    assert rows[0]["exit_fill"] == 110.0 and rows[0]["entry_time"] == HOUR
    with pytest.raises(ValueError, match=r"use \.csv or \.json"):
        res.trades.write(tmp_path / "t.xlsx")


def test_unusual_move_breaker_blocks_entries_decided_on_a_3_sigma_bar() -> None:
    calm = [(100, 100.6, 99.4, 100.5 if i % 2 else 100.0) for i in range(120)]
    rows = [*calm, (100, 110, 100, 110), (110, 110.5, 109.5, 110), (110, 110.5, 109.5, 110)]
    orders = {120: [Order.enter(+1)], 121: [Order.enter(+1)]}
    only_sigma = RiskConfig(max_daily_loss=None, consecutive_losses_limit=None, unusual_market_threshold=3.0)
    res = run_backtest(bars(rows), Scripted(orders), BacktestConfig(0.0, 0.0, risk=only_sigma))
    assert [t.signal_bar for t in res.trades] == [121]
    assert res.blocked_entries == 1
