"""Run a strategy under the risk engine: fills go to the engine too, and the engine's closing orders go out.

The event engine already asks its gate about every order and shows it every bar; what it cannot do is hand the gate
the fills or send orders the gate decides on. ``RiskManaged`` does both from the strategy seat, so a backtest, a
replay and a paper node run the risk engine with no change to the event engine::

    risk = RiskEngine(RiskConfig(stop_loss=0.05, max_drawdown=0.2))
    EventEngine(candles, config, gate=risk).run(RiskManaged(strategy, risk))

The engine's closing orders (tag ``risk:<rule>``) come after the strategy's orders of that bar and execute at the
next open like any exit.
"""

from __future__ import annotations

from pivotal.core.orders import Fill, Order
from pivotal.risk.engine import RiskEngine
from pivotal.strategies.base import BarContext, StrategyProtocol


class RiskManaged:
    """A strategy wrapper (no ``wake_bars``: the risk engine must see every bar)."""

    def __init__(self, strategy: StrategyProtocol, engine: RiskEngine) -> None:
        self.strategy = strategy
        self.engine = engine

    def on_bar(self, ctx: BarContext) -> list[Order]:
        orders = self.strategy.on_bar(ctx)
        forced = self.engine.exit_orders(ctx.bar.symbol)
        if not forced:
            return orders
        return [*(orders or []), *forced]

    def on_fill(self, fill: Fill) -> None:
        self.engine.on_fill(fill)
        self.strategy.on_fill(fill)
