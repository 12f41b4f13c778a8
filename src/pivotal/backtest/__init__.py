"""Backtesting: the event-driven engine (reference), the ``Strategy`` seam, metrics, trade/equity containers, breakers.

Fast parameter sweeps live with their strategy (``pivotal.strategies.ls3_sweep``) and are tested for identical trades
against :func:`run_backtest`.
"""

from pivotal.backtest.engine import BacktestConfig, BacktestEngine, BacktestResult, run_backtest
from pivotal.backtest.strategy import Bar, BarContext, Fill, Order, Position, Strategy
from pivotal.backtest.trades import EquityCurve, Trade, TradeList

__all__ = [
    "BacktestConfig",
    "BacktestEngine",
    "BacktestResult",
    "Bar",
    "BarContext",
    "EquityCurve",
    "Fill",
    "Order",
    "Position",
    "Strategy",
    "Trade",
    "TradeList",
    "run_backtest",
]
