"""Spec B.7 hand-worked vectors SV1/SV2, through both the sweep fast path and the event-driven engine."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from pivotal.data.candles import Candles
from pivotal.execution.engine import BacktestConfig, run_backtest
from pivotal.features.volatility import volume_ma, wilder_atr
from pivotal.strategies.ls3.params import LS3_GRID, LS3Constants, LS3Params
from pivotal.strategies.ls3.strategy import LiquiditySweepV3
from pivotal.strategies.ls3.sweep import evaluate, prepare_market, signals

# B.7 test constants: ATR 3, VMA 5, WMS k = 1, max hold 5, no fee, no slippage (warm-up t >= 5)
SV_CONSTANTS = LS3Constants(atr_period=3, vma_period=5, pivot_k=1, max_hold_bars=5, fee_rate=0.0, slippage=0.0)

SV1 = [
    (100, 102, 98, 101, 10),
    (101, 103, 99, 100, 10),
    (100, 101, 97, 98, 10),
    (98, 99, 95, 96, 10),
    (96, 98, 94, 97, 10),
    (97, 100, 96, 99, 10),
    (99, 102, 98, 101, 10),
    (101, 103, 99, 100, 10),
    (100, 101, 97, 98, 10),
    (98, 100, 96, 97, 10),
    (97, 99, 95, 98, 10),
    (95, 98, 93, 97, 40),
    (97, 100, 96, 99, 10),
    (99, 103, 98, 102, 10),
    (102, 106, 101, 105, 10),
    (105, 107, 104, 106, 10),
    (106, 108, 105, 107, 10),
    (107, 109, 106, 108, 10),
]
SV2 = [
    (100, 102, 98, 99, 10),
    (99, 101, 97, 100, 10),
    (100, 103, 99, 102, 10),
    (102, 105, 101, 104, 10),
    (104, 106, 102, 103, 10),
    (103, 104, 100, 101, 10),
    (101, 103, 99, 100, 10),
    (100, 102, 98, 101, 10),
    (101, 104, 100, 103, 10),
    (103, 105, 101, 104, 10),
    (104, 107, 103, 106, 50),
    (106, 106.5, 101, 102, 12),
    (102, 103, 99, 100, 10),
    (100, 101, 98.5, 99, 10),
    (99, 100, 98.2, 98.5, 10),
]

SIGNAL_DIMS = ("pierce_depth", "rejection_candles", "volume_spike_threshold", "reversal_candle_size", "key_level_lookback")


def candles(rows: list[tuple[float, ...]]) -> Candles:
    a = np.array(rows, dtype=np.float64)
    return Candles(np.arange(len(a), dtype=np.int64), a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4])


def market(rows: list[tuple[float, ...]], constants: LS3Constants = SV_CONSTANTS):
    c = candles(rows)
    return prepare_market(c.open, c.high, c.low, c.close, c.volume, c.ts, constants)


def signal_configs() -> list[LS3Params]:
    """All 8,400 combinations of the signal parameters (stop/target fixed: they cannot change signals)."""
    return [LS3Params(**dict(zip(SIGNAL_DIMS, v, strict=True))) for v in itertools.product(*(LS3_GRID[d] for d in SIGNAL_DIMS))]


def event_trades(rows, params: LS3Params, fee: float = 0.0, slip: float = 0.0):
    constants = LS3Constants(**{**SV_CONSTANTS.__dict__, "fee_rate": fee, "slippage": slip})
    strategy = LiquiditySweepV3(params, constants)
    result = run_backtest(candles(rows), strategy, BacktestConfig(fee_rate=fee, slippage=slip, sparse=False))
    return result.trades, strategy


def test_sv1_levels_and_atr() -> None:
    m = market(SV1)
    sup = sorted(zip(m.lvl_index[m.lvl_side > 0], m.lvl_price[m.lvl_side > 0], m.lvl_conf[m.lvl_side > 0], strict=True))
    res = sorted(zip(m.lvl_index[m.lvl_side < 0], m.lvl_price[m.lvl_side < 0], m.lvl_conf[m.lvl_side < 0], strict=True))
    assert sup == [(4, 94.0, 5), (11, 93.0, 12)]
    assert res == [(1, 103.0, 2), (7, 103.0, 8)]
    a = np.array(SV1, dtype=np.float64)
    atr = wilder_atr(a[:, 1], a[:, 2], a[:, 3], 3)
    assert np.isnan(atr[:2]).all()
    assert atr[2:11].tolist() == [4.0] * 9
    assert volume_ma(a[:, 4], 5)[11] == 10.0


def test_sv1_signal_fires_iff_volume_and_size_allow_over_all_8400_configs() -> None:
    m = market(SV1)
    configs = signal_configs()
    assert len(configs) == 8400
    for p in configs:
        sig = signals(m, p)
        expected = p.volume_spike_threshold <= 4.0 and p.reversal_candle_size <= 1.25
        assert len(sig["bar"]) == (1 if expected else 0), p
        if expected:
            assert (sig["bar"][0], sig["direction"][0], sig["pierce_bar"][0], sig["level"][0]) == (11, 1, 11, 94.0)
            assert sig["atr_ref"][0] == 4.0


@pytest.mark.parametrize(
    ("stop", "target", "sl", "tp", "exit_bar", "reason", "net_pct"),
    [
        (1.0, 2.0, 93.0, 105.0, 14, "TP", 8.2474),
        (0.5, 1.5, 95.0, 100.0, 12, "TP", 3.0928),
        (1.5, 1.5, 91.0, 106.0, 14, "TP", 9.2784),
        (1.0, 3.0, 93.0, 109.0, 16, "TIME", 10.3093),
    ],
)
def test_sv1_trades_in_sweep_and_event_engine(stop, target, sl, tp, exit_bar, reason, net_pct) -> None:
    p = LS3Params(0.005, 1, 4.0, 1.25, 20, stop, target)
    for trades in (evaluate(market(SV1), p).trades, event_trades(SV1, p)[0]):
        assert len(trades) == 1
        t = trades[0]
        assert (t.signal_bar, t.direction, t.entry_bar, t.entry_fill) == (11, 1, 12, 97.0)
        assert (t.stop, t.target, t.exit_bar, t.exit_reason) == (sl, tp, exit_bar, reason)
        assert round(t.net_return * 100, 4) == net_pct


def test_sv1_with_fee_and_slippage() -> None:
    p = LS3Params(0.005, 1, 4.0, 1.25, 20, 1.0, 2.0)
    constants = LS3Constants(**{**SV_CONSTANTS.__dict__, "fee_rate": 0.001, "slippage": 0.0005})
    for trades in (evaluate(market(SV1, constants), p).trades, event_trades(SV1, p, 0.001, 0.0005)[0]):
        t = trades[0]
        assert t.entry_fill == pytest.approx(97.0485, rel=1e-12)
        assert t.stop == pytest.approx(93.0485, rel=1e-12)
        assert t.target == pytest.approx(105.0485, rel=1e-12)
        assert t.exit_reason == "TP"
        assert t.exit_fill == pytest.approx(104.99597575, rel=1e-12)
        assert round(t.net_return * 100, 4) == 7.9810


def test_sv2_short_signal_iff_two_bar_rejection_and_size_allow() -> None:
    m = market(SV2)
    assert sorted(zip(m.lvl_index[m.lvl_side < 0], m.lvl_price[m.lvl_side < 0], m.lvl_conf[m.lvl_side < 0], strict=True))[0] == (
        4,
        106.0,
        5,
    )
    for p in signal_configs():
        sig = signals(m, p)
        at_11 = np.flatnonzero(sig["bar"] == 11)
        expected = p.rejection_candles >= 2 and p.reversal_candle_size <= 1.25
        assert len(at_11) == (1 if expected else 0), p
        if expected:
            j = at_11[0]
            assert (sig["direction"][j], sig["pierce_bar"][j], sig["level"][j], sig["atr_ref"][j]) == (-1, 10, 106.0, 4.0)


@pytest.mark.parametrize(
    ("stop", "target", "sl", "tp", "exit_bar", "reason", "net_pct"),
    [(1.0, 1.5, 106.0, 96.0, 14, "EOD", 3.4314), (0.5, 1.5, 104.0, 99.0, 12, "TP", 2.9412)],
)
def test_sv2_trades_in_sweep_and_event_engine(stop, target, sl, tp, exit_bar, reason, net_pct) -> None:
    p = LS3Params(0.005, 2, 5.0, 1.25, 20, stop, target)
    for trades in (evaluate(market(SV2), p).trades, event_trades(SV2, p)[0]):
        assert len(trades) == 1
        t = trades[0]
        assert (t.signal_bar, t.direction, t.level, t.entry_bar, t.entry_fill) == (11, -1, 106.0, 12, 102.0)
        assert (t.stop, t.target, t.exit_bar, t.exit_reason) == (sl, tp, exit_bar, reason)
        assert round(t.net_return * 100, 4) == net_pct


def test_sv2_one_bar_rejection_expires_at_the_pierce_bar() -> None:
    p = LS3Params(0.005, 1, 5.0, 1.25, 20, 1.0, 1.5)
    trades, strategy = event_trades(SV2, p)
    assert len(trades) == 0
    assert strategy.signals == []


def test_event_strategy_signals_match_sweep_on_a_sample_of_signal_configs() -> None:
    configs = signal_configs()
    rng = np.random.default_rng(7)
    for rows in (SV1, SV2):
        m = market(rows)
        for i in rng.choice(len(configs), 60, replace=False):
            p = configs[i]
            _, strategy = event_trades(rows, p)
            fast = signals(m, p)
            slow = [(s.bar, s.side, s.pierce_bar, s.level) for s in strategy.signals]
            assert slow == list(zip(fast["bar"], fast["direction"], fast["pierce_bar"], fast["level"], strict=True)), p


@pytest.mark.parametrize("rejection", [1, 3])
def test_a_level_is_one_shot_once_its_episode_ends(rejection: int) -> None:
    """SV1 with bar 9 piercing 94 deeply and closing on it: with rejection 1 the episode expires at bar 9, with 3 it
    reclaims at bar 10 without a volume spike; either way level 94 is consumed and the bar-11 sweep cannot fire."""
    rows = list(SV1)
    rows[9] = (98, 100, 93.4, 94, 10)
    params = LS3Params(0.005, rejection, 1.5, 0.5, 20, 1.0, 2.0)
    assert len(signals(market(SV1), params)["bar"]) == 1  # the unmodified vector fires
    assert len(signals(market(rows), params)["bar"]) == 0
    assert event_trades(rows, params)[1].signals == []
    # a shallower pierce depth reaches the new L1 low 9@93.4 (confirmed at 10) instead
    shallow = LS3Params(0.004, rejection, 1.5, 0.5, 20, 1.0, 2.0)
    sig = signals(market(rows), shallow)
    assert (sig["bar"].tolist(), sig["level"].tolist(), sig["pierce_bar"].tolist()) == ([11], [93.4], [11])
    assert [(s.bar, s.level) for s in event_trades(rows, shallow)[1].signals] == [(11, 93.4)]


def test_signal_resolution_earliest_pierce_then_most_extreme_level_and_conflicts() -> None:
    from pivotal.strategies.ls3.kernels import resolve

    r = np.array([5, 5, 5, 7, 9, 9])
    side = np.array([1, 1, 1, -1, 1, -1])
    s = np.array([4, 3, 3, 6, 8, 8])
    price = np.array([90.0, 95.0, 92.0, 110.0, 80.0, 120.0])
    vol = np.array([8, 8, 8, 8, 8, 8], dtype=np.int8)
    size = np.array([7, 7, 7, 7, 7, 1], dtype=np.int8)
    # bar 5: earliest pierce (s=3) wins, then the lowest support (92); bar 9: long and short both fire -> no trade
    assert resolve(r, side, s, price, vol, size, 0, 0).tolist() == [2, 3]
    # with a stricter size threshold the bar-9 short no longer fires, so the long is taken
    assert resolve(r, side, s, price, vol, size, 0, 1).tolist() == [2, 3, 4]
    short_r, short_side = np.array([3, 3]), np.array([-1, -1])
    assert resolve(short_r, short_side, np.array([2, 2]), np.array([101.0, 103.0]), vol[:2], size[:2], 0, 0).tolist() == [1]
