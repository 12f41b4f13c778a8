"""Performance metrics from arrays (pure functions, no strategy or store knowledge).

Two families:
- **per-trade** (:func:`trade_stats`, numba): compounded net profit, trade count, win rate, profit factor, max
  drawdown of the trade-by-trade equity and the per-trade Sharpe of spec B.2 (**not annualised**: trades are not
  evenly spaced in time). The sweep kernels call the same function, so event engine and sweep report identical numbers.
- **per-bar** (:func:`bar_stats`): Sharpe and Sortino annualised for the timeframe (365-day year, ``core.stats``),
  max drawdown (``max_drawdown_mtm``: of the mark-to-market equity at each bar close, so it counts open-trade losses
  that the per-trade ``max_drawdown`` misses), CAGR, Calmar and exposure from a mark-to-market equity curve.

Sharpe/Sortino and annualisation come from :mod:`pivotal.core.stats` (NaN when undefined). These tables feed
rankings and sorted reports, so an undefined ratio is turned into 0.0 here, explicitly, via ``nan_to_zero`` (the
numba path: the same test inline). Other conventions: returns are fractions (0.01 = +1 %); ``net_profit_pct`` is in
percent; ``max_drawdown`` is a positive fraction of the running peak; ``profit_factor`` is ``inf`` when there are wins
and no losses.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from pivotal.core.stats import MS_PER_YEAR, max_drawdown, nan_to_zero, periods_per_year, sharpe, sharpe_nb, sortino

TRADE_METRICS = ("net_profit_pct", "trades", "win_rate", "profit_factor", "max_drawdown", "sharpe")
__all__ = ["MS_PER_YEAR", "TRADE_METRICS", "bar_stats", "max_drawdown", "trade_metrics", "trade_stats"]


@njit(cache=True)
def trade_stats(returns: np.ndarray) -> tuple[float, int, float, float, float, float]:
    """(net_profit_pct, trades, win_rate, profit_factor, max_drawdown, sharpe) of net per-trade returns in time order."""
    n = returns.shape[0]
    if n == 0:
        return 0.0, 0, 0.0, 0.0, 0.0, 0.0
    equity = 1.0
    peak = 1.0
    max_dd = 0.0
    wins = 0
    gross_win = 0.0
    gross_loss = 0.0
    for i in range(n):
        r = returns[i]
        equity *= 1.0 + r
        peak = max(peak, equity)
        max_dd = max(max_dd, 1.0 - equity / peak)
        if r > 0:
            wins += 1
            gross_win += r
        else:
            gross_loss -= r
    profit_factor = gross_win / gross_loss if gross_loss > 0 else (math.inf if gross_win > 0 else 0.0)
    per_trade = sharpe_nb(returns, 1.0)  # core.stats definition, periods=1: not annualised
    sharpe_value = 0.0 if math.isnan(per_trade) else per_trade  # nan_to_zero: rankings must not see NaN
    return (equity - 1.0) * 100.0, n, wins / n, profit_factor, max_dd, sharpe_value


def trade_metrics(returns: np.ndarray) -> dict[str, float]:
    """Per-trade metrics plus average win/loss and expectancy (mean net return per trade)."""
    r = np.ascontiguousarray(returns, dtype=np.float64)
    values = dict(zip(TRADE_METRICS, trade_stats(r), strict=True))
    wins, losses = r[r > 0], r[r <= 0]
    values["avg_win"] = float(wins.mean()) if wins.size else 0.0
    values["avg_loss"] = float(losses.mean()) if losses.size else 0.0
    values["expectancy"] = float(r.mean()) if r.size else 0.0
    return values


def bar_stats(equity: np.ndarray, in_position: np.ndarray, timeframe_ms: int) -> dict[str, float]:
    """Annualised per-bar metrics of a mark-to-market equity curve starting from 1.0 before the first bar."""
    eq = np.asarray(equity, dtype=np.float64)
    if eq.size == 0:
        return {
            "sharpe_annual": 0.0,
            "sortino_annual": 0.0,
            "cagr": 0.0,
            "calmar": 0.0,
            "max_drawdown_mtm": 0.0,
            "exposure": 0.0,
        }
    if timeframe_ms <= 0:
        raise ValueError(f"timeframe_ms must be positive (got {timeframe_ms})")
    bars_per_year = periods_per_year(timeframe_ms)
    rets = np.diff(np.concatenate(([1.0], eq))) / np.concatenate(([1.0], eq[:-1]))
    years = eq.size / bars_per_year
    with np.errstate(over="ignore"):  # annualising a gain over a few bars overflows to inf, which is what it is
        cagr = float(eq[-1] ** (1.0 / years) - 1.0) if eq[-1] > 0 else -1.0
    mdd = max_drawdown(np.concatenate(([1.0], eq)))
    return {
        "sharpe_annual": nan_to_zero(sharpe(rets, bars_per_year)),
        "sortino_annual": nan_to_zero(sortino(rets, bars_per_year)),
        "cagr": cagr,
        "calmar": cagr / mdd if mdd > 0 else 0.0,
        "max_drawdown_mtm": mdd,
        "exposure": float(np.mean(np.asarray(in_position, dtype=bool))),
    }
