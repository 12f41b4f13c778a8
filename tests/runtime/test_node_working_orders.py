"""Working orders (limit, partial fills under a volume cap, maker/taker fees) through the trading node: the node
trades exactly as the engine's backtest on the same real bars, journals every partial fill with the position it
leaves, and a restart from a journal cut at any point reproduces the run without a duplicate record."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from pivotal.core.clock import SimulatedClock
from pivotal.core.orders import Fill, Order
from pivotal.data.candles import Candles
from pivotal.execution.engine import BacktestConfig, EventEngine
from pivotal.execution.simulated_venue import FeeSchedule
from pivotal.runtime.feeds.historical import HistoricalFeed
from pivotal.runtime.journal import Journal
from pivotal.runtime.node import TradingNode
from pivotal.runtime.replay import ReplaySession
from pivotal.strategies.base import BarContext

RUN = {"strategy": "dip_limits", "params": {}}


class DipLimits:
    """After a down bar, bid 0.5 % under its close for up to 3 bars (2 BTC), bracket 2 % / 3 % from the fill."""

    def on_bar(self, ctx: BarContext) -> list[Order]:
        b = ctx.bar
        if ctx.position is None and b.close < b.open:
            return [Order.limit(+1, b.close * 0.995, 0.02 * b.close, 0.03 * b.close, 24, expire_bars=3, quantity=2.0)]
        return []

    def on_fill(self, fill: Fill) -> None:
        """No fill-dependent state."""


def _config() -> BacktestConfig:
    # quote-currency cash so the 2-unit orders are sized in BTC; a 0.05 % participation cap splits fills over bars
    return BacktestConfig(fee_rate=0.001, slippage=0.0005, fee_schedule=FeeSchedule.for_exchange("binance"),
                          participation=0.0005, initial_cash=1_000_000.0)  # fmt: skip


def _bars(shared_data: Path) -> Candles:
    import pyarrow.parquet as pq

    return Candles.from_arrow(pq.read_table(shared_data / "binance" / "BTCUSDT-1h.parquet").slice(0, 400),
                              exchange="binance", symbol="BTC/USDT", timeframe="1h")  # fmt: skip


def _replay(bars: Candles, journal: Journal | None = None) -> TradingNode:
    node = TradingNode(DipLimits(), [("BTC/USDT", "1h")], exchange="binance", config=_config(), journal=journal,
                       run=RUN, run_id="w")  # fmt: skip
    try:
        ReplaySession(HistoricalFeed([bars]), node.on_event, clock=SimulatedClock(0)).run()
        node.finish()
    finally:
        if journal is not None:
            journal.close()
    return node


def test_working_orders_through_the_node_equal_the_backtest(shared_data: Path, tmp_path: Path) -> None:
    bars = _bars(shared_data)
    want = EventEngine(bars, _config()).run(DipLimits())  # type: ignore[arg-type]
    partial = [f for f in want.fills if f.kind == "entry"]
    assert len(want.trades) >= 3 and len(partial) > len(want.trades)  # the cap splits entries over several bars
    journal = Journal(tmp_path / "run.jsonl")
    node = _replay(bars, journal)
    assert node.result is not None
    assert list(node.result.trades) == list(want.trades)
    same = [replace(f, client_order_id="") for f in node.result.fills]
    assert same == [replace(f, client_order_id="") for f in want.fills]  # the node names orders by its run id
    fills = [r for r in Journal(tmp_path / "run.jsonl", readonly=True).records if r["k"] == "fill"]
    assert len(fills) == len(want.fills)
    grown = [r for r in fills if r["kind"] == "entry" and r["position"]["quantity"] > r["quantity"]]
    assert grown  # a later partial fill journals the whole position it leaves (VWAP entry)
    assert all("liquidity" not in r for r in fills)  # journal format unchanged


@pytest.mark.parametrize("fraction", [0.2, 0.5, 0.8])
def test_restart_mid_run_with_partial_fills_writes_each_record_once(shared_data: Path, tmp_path: Path, fraction: float) -> None:
    bars = _bars(shared_data)
    _replay(bars, Journal(tmp_path / "full.jsonl"))
    full = [r for r in Journal(tmp_path / "full.jsonl", readonly=True).records if r["k"] != "progress"]
    lines = (tmp_path / "full.jsonl").read_bytes().splitlines(keepends=True)
    cut = int(len(lines) * fraction)
    path = tmp_path / "cut.jsonl"
    path.write_bytes(b"".join(lines[:cut]) + lines[cut][: len(lines[cut]) // 2])  # killed mid-write
    _replay(bars, Journal(path))
    got = [r for r in Journal(path, readonly=True).records if r["k"] != "progress"]
    assert len(got) == len(full)
    keys = Counter((r["k"], r.get("key")) for r in got)
    assert not [k for k, n in keys.items() if n > 1]
