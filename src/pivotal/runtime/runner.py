"""``pivotal run`` driven: a prepared run (``services.run.prepare``) through the event engine, whole (``backtest``)
or as a replay session of its bars through a trading node (``replay``), optionally journaled. Both return the
``BacktestRun`` that ``pivotal backtest`` returns, so the CLI prints and exports them the same way."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pivotal.core.clock import Clock
from pivotal.core.events import MarketEvent
from pivotal.core.timeframes import TIMEFRAMES
from pivotal.execution.engine import BacktestConfig
from pivotal.runtime.feeds.historical import HistoricalFeed
from pivotal.runtime.journal import Journal
from pivotal.runtime.node import TradingNode
from pivotal.runtime.replay import ReplaySession, ReplayState, Sleeper, check_speed
from pivotal.services.backtest import BacktestRun, BuyAndHold, run_backtest
from pivotal.services.run import PreparedRun
from pivotal.strategies.registry import get_strategy


@dataclass(frozen=True)
class RunOutcome:
    """A finished run: the backtest-shaped result, and for a replay its session state and node counters."""

    run: BacktestRun
    mode: str
    session: ReplayState | None = None
    events: int = 0
    resumed_from: int | None = None  # a journaled replay restarted: the journal's last event time
    journal: Path | None = None


def execute(
    prepared: PreparedRun,
    *,
    clock: Clock | None = None,
    sleep: Sleeper | None = None,
    observer: Callable[[MarketEvent], None] | None = None,
) -> RunOutcome:
    """Run ``prepared`` in its mode; ``observer`` sees each replayed event after the node processed it."""
    req, bars = prepared.request, prepared.bars
    if req.mode == "backtest":
        run = run_backtest(bars, req.strategy, prepared.params, fee_rate=req.fee_rate, slippage=req.slippage,
                           source=req.source.describe(), capital=req.capital)  # fmt: skip
        return RunOutcome(run, req.mode)
    speed = check_speed(req.speed)
    config = BacktestConfig(fee_rate=req.fee_rate, slippage=req.slippage)
    journal = Journal(req.journal) if req.journal is not None else None
    try:
        strategy = get_strategy(req.strategy).factory(prepared.params)
        node = TradingNode(strategy, [(bars.symbol, bars.timeframe)], exchange=bars.exchange, config=config,
                           journal=journal, run=prepared.header())  # fmt: skip
        resumed = node.recovery.last_event_time if node.recovery is not None else None
        sink = node.on_event
        if observer is not None:

            def sink(event: MarketEvent) -> None:
                node.on_event(event)
                observer(event)

        session = ReplaySession(HistoricalFeed([bars]), sink, speed=speed, clock=clock, sleep=sleep)
        state = session.run()
        result = node.finish()
    finally:
        if journal is not None:
            journal.close()
    tf_ms = TIMEFRAMES.get(bars.timeframe, 0)
    run = BacktestRun(
        req.strategy, prepared.params, req.source.describe(), len(bars), result, config, capital=req.capital,
        timeframe=bars.timeframe, first_ts=int(bars.ts[0]), end_ts=int(bars.ts[-1]) + tf_ms,
        buy_and_hold=BuyAndHold.of(bars, req.fee_rate, req.slippage),
    )  # fmt: skip
    return RunOutcome(run, req.mode, session.status() if state else None, node.events, resumed, req.journal)
