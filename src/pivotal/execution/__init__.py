"""One execution model: the event engine drives strategy → risk gate → venue → portfolio on timestamped bars.

``SimulatedVenue`` holds the fill rules (next open, slippage, fees, brackets with detail bars), ``Portfolio`` the
positions and equity; ``backtest()`` is the one-call facade. The numba sweep of LS3 follows the same rules and is
tested for identical trades.
"""

from pivotal.execution.backtest import backtest, summary
from pivotal.execution.engine import BacktestConfig, BacktestResult, EventEngine, run_backtest
from pivotal.execution.portfolio import Portfolio
from pivotal.execution.simulated_venue import SimulatedVenue
from pivotal.execution.venue import Venue

__all__ = [
    "BacktestConfig",
    "BacktestResult",
    "EventEngine",
    "Portfolio",
    "SimulatedVenue",
    "Venue",
    "backtest",
    "run_backtest",
    "summary",
]
