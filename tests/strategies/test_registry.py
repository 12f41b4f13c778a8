"""The strategy registry: names, defaults, validation messages, fresh instances; the base class's causal access."""

from __future__ import annotations

import numpy as np
import pytest

from pivotal.core.errors import UserInputError
from pivotal.core.orders import Bar
from pivotal.data.candles import Candles
from pivotal.execution.backtest import backtest
from pivotal.strategies.base import BarContext, Strategy
from pivotal.strategies.ls3 import LiquiditySweepV3, LS3Params
from pivotal.strategies.registry import StrategySpec, get_strategy, register, strategy_names
from pivotal.strategies.sma_cross import SmaCross

pytestmark = pytest.mark.unit


def test_builtins_are_registered_with_every_default_and_a_space() -> None:
    assert {"liquidity_sweep", "sma_cross"} <= set(strategy_names())
    ls3 = get_strategy("liquidity_sweep")
    assert ls3.defaults == LS3Params().to_dict() and set(ls3.space) == set(ls3.defaults)
    assert ls3.space["stop_distance"] == ("choice", [0.5, 1.0, 1.5, 2.0]) and ls3.sweep is not None
    assert get_strategy("sma_cross").defaults == {"fast": 10, "slow": 30}


def test_validate_types_values_and_names_the_valid_parameters() -> None:
    spec = get_strategy("liquidity_sweep")
    values = spec.validate({"rejection_candles": "4", "stop_distance": "1.5"})
    assert values["rejection_candles"] == 4 and isinstance(values["rejection_candles"], int)
    assert values["stop_distance"] == 1.5 and values["pierce_depth"] == 0.002
    with pytest.raises(UserInputError, match=r"unknown parameter\(s\) fast; valid: key_level_lookback, pierce_depth"):
        spec.validate({"fast": 3})
    with pytest.raises(UserInputError, match=r"rejection_candles='2.5' must be a whole number"):
        spec.validate({"rejection_candles": "2.5"})
    with pytest.raises(UserInputError, match=r"stop_distance=-1\.0"):
        spec.validate({"stop_distance": -1})
    with pytest.raises(UserInputError, match="strategy sma_cross: SMA cross needs 1 <= fast < slow"):
        get_strategy("sma_cross").validate({"fast": 30, "slow": 10})


def test_unknown_strategy_lists_the_registered_names() -> None:
    with pytest.raises(UserInputError, match=r"unknown strategy 'nope'; registered: .*liquidity_sweep, model, sma_cross"):
        get_strategy("nope")


def test_factory_gives_fresh_instances() -> None:
    spec = get_strategy("liquidity_sweep")
    a, b = spec.create(), spec.create({"stop_distance": 2.0})
    assert isinstance(a, LiquiditySweepV3) and a is not b and b.params.stop_distance == 2.0
    assert isinstance(get_strategy("sma_cross").create({"fast": 5}), SmaCross)


def test_register_adds_a_strategy_in_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    from pivotal.strategies import registry

    strategy_names()  # discover the built-ins, then register into a copy that the test throws away
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    spec = register(StrategySpec("always_long_test", lambda p: _AlwaysLong(), {"hold": 3}, {"hold": ("int", 1, 10, 1)}))
    assert "always_long_test" in strategy_names() and get_strategy("always_long_test") is spec
    with pytest.raises(ValueError, match="search space names unknown parameters"):
        register(StrategySpec("bad_space_test", lambda p: _AlwaysLong(), {}, {"x": ("int", 1, 2, 1)}))


class _AlwaysLong(Strategy):
    def next(self) -> None:
        if self.position is None:
            self.buy(max_hold=3)


class _Recorder(Strategy):
    """Records what it can see at each bar."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, float, int]] = []

    def next(self) -> None:
        self.seen.append((self.bar.index, float(self.close[-1]), len(self.close)))


def candles(closes: list[float]) -> Candles:
    c = np.array(closes, dtype=np.float64)
    ts = np.arange(len(c), dtype=np.int64) * 3_600_000
    return Candles(ts, c, c + 1, c - 1, c, np.ones(len(c)), timeframe="1h")


def test_base_class_sees_history_up_to_the_current_bar_only() -> None:
    s = _Recorder()
    backtest(s, candles([10.0, 11.0, 12.0, 13.0]), fee_rate=0.0, slippage=0.0)
    assert s.seen == [(0, 10.0, 1), (1, 11.0, 2), (2, 12.0, 3), (3, 13.0, 4)]
    assert isinstance(s, Strategy) and isinstance(SmaCross(), Strategy)


def test_base_class_indicators_and_pivots_are_causal() -> None:
    class Probe(Strategy):
        def __init__(self) -> None:
            self.rows: list[tuple[float, int]] = []

        def next(self) -> None:
            self.rows.append((self.sma(3), len(self.pivots(1))))

    s = Probe()
    closes = [10.0, 12.0, 15.0, 12.0, 10.0, 12.0, 14.0]
    backtest(s, candles(closes), fee_rate=0.0, slippage=0.0)
    assert np.isnan(s.rows[1][0]) and s.rows[2][0] == pytest.approx(37 / 3) and s.rows[6][0] == pytest.approx(12.0)
    # the swing high at bar 2 is confirmed at bar 4 (k=2), the swing low at bar 4 at bar 6: never earlier
    assert [n for _, n in s.rows] == [0, 0, 0, 0, 1, 1, 2]


def test_one_call_backtest_by_class_by_name_and_bad_options() -> None:
    c = candles([10.0, 11.0, 12.0, 13.0, 14.0, 15.0])
    res = backtest(_AlwaysLong, c, fee_rate=0.0, slippage=0.0)
    assert [(t.entry_bar, t.exit_bar, t.exit_reason) for t in res.trades] == [(1, 3, "TIME"), (4, 5, "EOD")]
    assert "trades          2" in res.summary()
    assert len(backtest("sma_cross", c, params={"fast": 2, "slow": 3}).trades) == 0
    with pytest.raises(UserInputError, match="unknown backtest option"):
        backtest(_AlwaysLong(), c, fees=0.1)
    ctx = BarContext(Bar(0, 0, 1.0, 1.0, 1.0, 1.0, 1.0), None, -1)
    assert _AlwaysLong().on_bar(ctx)[0].direction == 1
