"""One call that backtests a strategy on candles, in the spirit of backtesting.py::

    result = backtest(MyStrategy(), candles, fee_rate=0.001, slippage=0.0005)
    print(result.summary())

``strategy`` is a strategy instance, a ``Strategy`` subclass (instantiated with no arguments) or a registered name
(with ``params``). ``config`` keywords are those of :class:`BacktestConfig`; ``detail`` finer bars are optional.
"""

from __future__ import annotations

from typing import Any

from pivotal.core.errors import UserInputError
from pivotal.data.candles import Candles
from pivotal.execution.engine import BacktestConfig, BacktestResult, EventEngine
from pivotal.strategies.base import StrategyProtocol


def backtest(
    strategy: StrategyProtocol | type | str,
    candles: Candles | dict[str, Candles],
    *,
    params: dict[str, Any] | None = None,
    detail: Candles | dict[str, Candles] | None = None,
    **config: Any,
) -> BacktestResult:
    """Run ``strategy`` through the event engine on ``candles``; keywords: fee_rate, slippage, trade_window, risk,
    initial_cash."""
    if isinstance(strategy, str):
        from pivotal.strategies.registry import get_strategy

        strategy = get_strategy(strategy).create(params)
    elif isinstance(strategy, type):
        strategy = strategy()
    elif params:
        raise UserInputError("params apply to a strategy given by name; configure an instance yourself")
    unknown = sorted(set(config) - set(BacktestConfig.__dataclass_fields__))
    if unknown:
        raise UserInputError(
            f"unknown backtest option(s) {', '.join(unknown)}; valid: {', '.join(BacktestConfig.__dataclass_fields__)}"
        )
    return EventEngine(candles, BacktestConfig(**config), detail).run(strategy)  # type: ignore[arg-type]


def summary(result: BacktestResult) -> str:
    """``result.summary()``: trades, net profit, win rate, profit factor, drawdown, Sharpe."""
    return result.summary()
