"""Metrics (hand-computed values and properties) and the volatility features they rest on."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pivotal.core.metrics import bar_stats, max_drawdown, trade_metrics, trade_stats
from pivotal.features.volatility import TrailingMeanState, WilderATRState, sma, volume_ma, wilder_atr

returns_st = st.lists(st.floats(-0.5, 0.5, allow_nan=False), min_size=0, max_size=60)


def test_trade_stats_by_hand() -> None:
    r = np.array([0.10, -0.05, 0.20, -0.10])
    net, n, win, pf, mdd, sharpe = trade_stats(r)
    assert net == pytest.approx((1.1 * 0.95 * 1.2 * 0.9 - 1) * 100)
    assert (n, win) == (4, 0.5)
    assert pf == pytest.approx(0.30 / 0.15)
    assert mdd == pytest.approx(0.10)  # peak 1.254 -> 1.1286
    assert sharpe == pytest.approx(np.mean(r) / np.std(r, ddof=1))


def test_undefined_ratios_are_zero_and_profit_factor_without_losses_is_inf() -> None:
    assert trade_stats(np.empty(0)) == (0.0, 0, 0.0, 0.0, 0.0, 0.0)
    _, n, win, pf, mdd, sharpe = trade_stats(np.array([0.02]))
    assert (n, win, pf, mdd, sharpe) == (1, 1.0, math.inf, 0.0, 0.0)
    assert trade_stats(np.array([-0.02, -0.02]))[3] == 0.0


def test_trade_metrics_adds_averages_and_expectancy() -> None:
    m = trade_metrics(np.array([0.10, -0.05, 0.20, -0.10]))
    assert m["avg_win"] == pytest.approx(0.15)
    assert m["avg_loss"] == pytest.approx(-0.075)
    assert m["expectancy"] == pytest.approx(0.0375)


@given(returns_st)
def test_net_profit_is_the_compounded_product_and_drawdown_is_bounded(values: list[float]) -> None:
    r = np.array(values)
    net, n, win, _, mdd, _ = trade_stats(r)
    assert n == len(values)
    assert net == pytest.approx((np.prod(1 + r) - 1) * 100, rel=1e-9, abs=1e-9)
    assert 0.0 <= mdd < 1.0
    assert 0.0 <= win <= 1.0
    equity = np.concatenate(([1.0], np.cumprod(1 + r)))
    assert mdd == pytest.approx(max_drawdown(equity), abs=1e-12)


def test_bar_stats_annualise_for_the_timeframe() -> None:
    rets = np.array([0.01, -0.005, 0.02, 0.0, -0.01, 0.015])
    equity = np.cumprod(1 + rets)
    daily = bar_stats(equity, np.ones(6, bool), 86_400_000)
    hourly = bar_stats(equity, np.ones(6, bool), 3_600_000)
    assert daily["sharpe_annual"] == pytest.approx(rets.mean() / rets.std(ddof=1) * math.sqrt(365))
    assert hourly["sharpe_annual"] == pytest.approx(daily["sharpe_annual"] * math.sqrt(24))
    downside = math.sqrt(np.mean(np.minimum(rets, 0) ** 2))
    assert daily["sortino_annual"] == pytest.approx(rets.mean() / downside * math.sqrt(365))
    assert daily["max_drawdown_mtm"] == pytest.approx(1 - equity[4] / equity[2])
    assert daily["calmar"] == pytest.approx(daily["cagr"] / daily["max_drawdown_mtm"])
    assert bar_stats(equity, np.array([1, 0, 0, 1, 0, 0], bool), 86_400_000)["exposure"] == pytest.approx(1 / 3)


def test_wilder_atr_spec_order_and_nan_warmup() -> None:
    high = np.array([10.0, 11, 12, 11, 13, 12])
    low = np.array([9.0, 9, 10, 10, 11, 10])
    close = np.array([9.5, 10, 11, 10.5, 12.5, 11])
    tr = [1.0, 2.0, 2.0, 1.0, 2.5, 2.5]
    atr = wilder_atr(high, low, close, 3)
    assert np.isnan(atr[:2]).all()
    assert atr[2] == sum(tr[:3]) / 3
    assert atr[3] == (atr[2] * 2 + tr[3]) / 3
    assert atr[5] == (atr[4] * 2 + tr[5]) / 3
    state = WilderATRState(3)
    incremental = [state.update(h, lo, c) for h, lo, c in zip(high, low, close, strict=True)]
    assert np.array_equal(np.array(incremental), atr, equal_nan=True)


def test_volume_ma_excludes_the_current_bar_and_matches_the_incremental_state() -> None:
    v = np.array([1.0, 2, 3, 4, 100, 6])
    vma = volume_ma(v, 3)
    assert np.isnan(vma[:3]).all()
    assert vma[3:].tolist() == [2.0, 3.0, (3 + 4 + 100) / 3]
    state = TrailingMeanState(3)
    values = []
    for x in v:
        values.append(state.value)
        state.push(x)
    assert np.array_equal(np.array(values), vma, equal_nan=True)


def test_sma_includes_the_current_bar() -> None:
    assert sma(np.array([1.0, 2, 3, 4]), 2)[1:].tolist() == [1.5, 2.5, 3.5]
    assert math.isnan(sma(np.array([1.0, 2]), 2)[0])
    with pytest.raises(ValueError, match="period"):
        sma(np.ones(3), 0)


def test_ls3_params_from_dict_names_the_bad_field() -> None:
    from pivotal.strategies.ls3.params import LS3Params

    assert LS3Params.from_dict({"rejection_candles": 2.0, "pierce_depth": "0.001"}) == LS3Params(0.001, 2)
    with pytest.raises(ValueError, match=r"p\.json: rejection_candles=2\.5 must be a whole number"):
        LS3Params.from_dict({"rejection_candles": 2.5}, "p.json")
    with pytest.raises(ValueError, match="stop_distance='wide' is not a number"):
        LS3Params.from_dict({"stop_distance": "wide"})
    with pytest.raises(ValueError, match=r"invalid stop_distance=-1\.0"):
        LS3Params(stop_distance=-1.0)
