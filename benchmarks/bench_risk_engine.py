"""Risk engine overhead (run: .venv/bin/python benchmarks/bench_risk_engine.py).

Real data: Binance BTC/USDT 1h 2018-2026 (../shared/data, 73,264 bars). SMA cross (10/30) through the event engine
with every bar an event, three ways, each measured in this run (best of 3):

- reference: the default gate (``DefaultRiskGate``, no breakers);
- ``RiskEngine(RiskConfig.off())`` + ``RiskManaged``: the full engine with nothing configured (identical trades);
- ``RiskEngine(RiskConfig())``: the A-Plus defaults (3σ, regime break, adverse selection, daily loss, streak) plus
  drawdown and stop-loss watching.

Prints bars/s and the ratio to the reference. Goal: the engine with the defaults within 2x of the reference.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq

from pivotal.data.candles import Candles
from pivotal.execution.engine import BacktestConfig, EventEngine
from pivotal.risk import RiskConfig, RiskEngine, RiskManaged
from pivotal.strategies.registry import get_strategy

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "binance" / "BTCUSDT-1h-2018-2026.parquet"


def best(fn: Callable[[], None], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    c = Candles.from_arrow(pq.read_table(DATA), symbol="BTC/USDT", timeframe="1h")
    spec = get_strategy("sma_cross")
    cfg = BacktestConfig(sparse=False)

    def reference() -> None:
        EventEngine(c, cfg).run(spec.factory(spec.defaults))

    def under(config: RiskConfig) -> Callable[[], None]:
        def run() -> None:
            risk = RiskEngine(config)
            EventEngine(c, cfg, gate=risk).run(RiskManaged(spec.factory(spec.defaults), risk))

        return run

    ref = best(reference)
    print(f"bars {len(c):,}")
    print(f"default gate (reference)   {ref:6.3f} s  {len(c) / ref:12,.0f} bars/s")
    for name, config in (
        ("risk engine, nothing set", RiskConfig.off()),
        ("risk engine, defaults", RiskConfig(max_drawdown=0.5, stop_loss=0.2)),
    ):
        t = best(under(config))
        print(f"{name:26s} {t:6.3f} s  {len(c) / t:12,.0f} bars/s  {t / ref:5.2f}x the reference")


if __name__ == "__main__":
    main()
