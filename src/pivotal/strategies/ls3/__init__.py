"""LIQUIDITY SWEEP V3 (spec B) in one place, registered as ``liquidity_sweep``.

- ``params``: the 7 grid parameters (``LS3Params``), fixed constants (``LS3Constants``), the 201,600-point grid;
- ``strategy``: the event form (``LiquiditySweepV3``) for the event engine and the runtime, on the incremental
  pivot detector;
- ``sweep`` (+ ``kernels``, ``pierce``): the numba fast path for one or many configurations, bit-identical trades.
"""

from __future__ import annotations

from typing import Any

from pivotal.strategies.ls3.params import LS3_GRID, LS3Constants, LS3Params, grid_index, grid_point, grid_size
from pivotal.strategies.ls3.strategy import LiquiditySweepV3
from pivotal.strategies.ls3.sweep import LS3Market, evaluate, evaluate_many, prepare_market
from pivotal.strategies.registry import StrategySpec, register

NAME = "liquidity_sweep"


def _factory(params: dict[str, Any]) -> LiquiditySweepV3:
    return LiquiditySweepV3(LS3Params(**params))


def sweep_candles(candles: Any, params: dict[str, Any], start: int = 0, end: int | None = None) -> Any:
    """Vectorised adapter: one configuration on ``candles`` through the numba sweep (same trades as the engine with
    default fees/slippage and ``trade_window=(start, end)``); returns ``sweep.TradeStats``."""
    c = candles
    market = prepare_market(c.open, c.high, c.low, c.close, c.volume, c.ts)
    return evaluate(market, LS3Params(**params), start, end)


SPEC = register(
    StrategySpec(
        name=NAME,
        factory=_factory,
        defaults=LS3Params().to_dict(),
        space={name: ("choice", list(values)) for name, values in LS3_GRID.items()},
        description="LIQUIDITY SWEEP V3: fade a pierce of a confirmed L1 key level that is reclaimed on volume (spec B)",
        sweep=sweep_candles,
    )
)

__all__ = [
    "LS3_GRID",
    "NAME",
    "SPEC",
    "LS3Constants",
    "LS3Market",
    "LS3Params",
    "LiquiditySweepV3",
    "evaluate",
    "evaluate_many",
    "grid_index",
    "grid_point",
    "grid_size",
    "prepare_market",
]
