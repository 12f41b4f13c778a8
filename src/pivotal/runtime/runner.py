"""``pivotal run`` driven: a prepared run (``services.run.prepare``) through the event engine, whole (``backtest``)
or as a replay session of its bars through a trading node (``replay``), optionally journaled. Both return the
``BacktestRun`` that ``pivotal backtest`` returns, so the CLI prints and exports them the same way.

With a risk configuration the node trades under ``risk.engine.RiskEngine`` (its gate, and ``RiskManaged`` around
the strategy for its closing orders), the audit log at ``request.audit``; a backtest with one runs through the node
too (same engine, same trades as the whole-series path), since the whole-series path has no risk engine hook.
The audit log follows the journal's protocol (``RederivedAudit``): a run is re-derived from the feed's start, so
entries already in the file are matched, not rewritten, and only new ones are appended."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pivotal.config import Settings
from pivotal.core.clock import Clock
from pivotal.core.errors import UserInputError
from pivotal.core.events import BarClosed, MarketEvent
from pivotal.core.timeframes import TIMEFRAMES
from pivotal.data.candles import Candles
from pivotal.execution.engine import BacktestConfig
from pivotal.execution.exchange_venue import ExchangeVenue
from pivotal.risk.audit import AuditLog
from pivotal.risk.engine import RiskEngine
from pivotal.risk.managed import RiskManaged
from pivotal.runtime.feed import Feed
from pivotal.runtime.feeds.historical import HistoricalFeed
from pivotal.runtime.journal import Journal
from pivotal.runtime.node import NodeSnapshot, TradingNode
from pivotal.runtime.replay import ReplaySession, ReplayState, Sleeper, check_speed
from pivotal.services.backtest import BacktestRun, BuyAndHold, run_backtest
from pivotal.services.run import LIVE_DATA, PreparedRun
from pivotal.services.strategies import strategy_spec


@dataclass(frozen=True)
class RunOutcome:
    """A finished run: the backtest-shaped result, and for a replay its session state and node counters."""

    run: BacktestRun
    mode: str
    session: ReplayState | None = None
    events: int = 0
    resumed_from: int | None = None  # a journaled replay restarted: the journal's last event time
    journal: Path | None = None
    snapshot: NodeSnapshot | None = None  # the node after the end of the feed (money in quote currency)
    audit: Path | None = None  # the risk engine's audit log
    sent: int | None = None  # testnet/live: orders this process sent to the exchange (a restart re-sends none)


class RederivedAudit(AuditLog):
    """The risk audit log of a run the node re-derives from its feed's start (a journaled restart, or a rerun).

    A plain ``AuditLog`` hands its entries to ``RiskEngine``, which restores the trips never reset: right for a live
    node that continues, wrong for a replay that starts over (it would meet HALTED from its first bar and trade
    differently). Here the engine starts with no trips, and each entry it writes is compared with the file's entry
    of the same ``seq``: equal, it is not written again; different, the log belongs to another run (one line);
    beyond the file's end, appended. A crash anywhere therefore leaves each entry written exactly once."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self.known, self.entries = self.entries, []

    def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        seq = len(self.entries) + 1
        if seq > len(self.known):
            return super().append(entry)
        known, record = self.known[seq - 1], json.loads(json.dumps({"seq": seq, **entry}, allow_nan=True))
        if known != record:
            raise UserInputError(
                f"{self.path}: the risk audit log belongs to another run (entry {seq} is {known}, this run gives "
                f"{record}); use a new audit file or journal"
            )
        self.entries.append(known)
        return known


def execute(
    prepared: PreparedRun,
    *,
    clock: Clock | None = None,
    sleep: Sleeper | None = None,
    observer: Callable[[MarketEvent], None] | None = None,
    on_start: Callable[[TradingNode], None] | None = None,
) -> RunOutcome:
    """Run ``prepared`` in its mode; ``observer`` sees each replayed event after the node processed it, ``on_start``
    the node before the first event (the status view keeps it to take snapshots)."""
    req, bars = prepared.request, prepared.bars
    if req.mode in LIVE_DATA:
        return execute_live(prepared, observer=observer, on_start=on_start)
    if req.mode == "backtest" and req.risk is None:
        run = run_backtest(bars, req.strategy, prepared.params, fee_rate=req.fee_rate, slippage=req.slippage,
                           source=req.source.describe(), capital=req.capital)  # fmt: skip
        return RunOutcome(run, req.mode)
    speed = check_speed(req.speed) if req.mode == "replay" else 0.0  # a backtest under risk: as fast as possible
    config = BacktestConfig(fee_rate=req.fee_rate, slippage=req.slippage)
    journal = Journal(req.journal) if req.journal is not None else None
    risk: RiskEngine | None = None
    try:
        strategy = strategy_spec(req.strategy).factory(prepared.params)
        if req.risk is not None:
            risk = RiskEngine(req.risk, audit=None if req.audit is None else RederivedAudit(req.audit))
            strategy = RiskManaged(strategy, risk)
        node = TradingNode(strategy, [(bars.symbol, bars.timeframe)], exchange=bars.exchange, config=config,
                           journal=journal, run=prepared.header(), gate=risk)  # fmt: skip
        if on_start is not None:
            on_start(node)
        resumed = node.recovery.last_event_time if node.recovery is not None else None
        sink = node.on_event
        if observer is not None:

            def sink(event: MarketEvent) -> None:
                node.on_event(event)
                observer(event)

        session = ReplaySession(HistoricalFeed([bars]), sink, speed=speed, clock=clock, sleep=sleep)
        state = session.run()
        result = node.finish()
        snapshot = node.snapshot(node.last_time, req.capital)
    finally:
        if journal is not None:
            journal.close()
        if risk is not None:
            risk.audit.close()
    tf_ms = TIMEFRAMES.get(bars.timeframe, 0)
    run = BacktestRun(
        req.strategy, prepared.params, req.source.describe(), len(bars), result, config, capital=req.capital,
        timeframe=bars.timeframe, first_ts=int(bars.ts[0]), end_ts=int(bars.ts[-1]) + tf_ms,
        buy_and_hold=BuyAndHold.of(bars, req.fee_rate, req.slippage),
    )  # fmt: skip
    return RunOutcome(
        run, req.mode, session.status() if state else None, node.events, resumed, req.journal, snapshot,
        req.audit if risk is not None else None,
    )  # fmt: skip


def execute_live(
    prepared: PreparedRun,
    *,
    feed: Feed | None = None,
    venue: ExchangeVenue | None = None,
    settings: Settings | None = None,
    observer: Callable[[MarketEvent], None] | None = None,
    on_start: Callable[[TradingNode], None] | None = None,
) -> RunOutcome:
    """A paper, testnet or live run: the live feed's events through a trading node until the bar closing at
    ``source.end`` (or Ctrl-C), then the node finishes as a backtest does (what is open exits at the last close).
    ``feed`` / ``venue`` replace the ones the request describes (``live_feed_for`` on a ccxt.pro client, and for
    testnet/live ``CcxtVenue`` with the keys of ``settings``): tests pass their own. Paper fills with the simulated
    venue; testnet/live through ``exchange_node.ExchangeBook``. Restarting on a journal re-derives the run from
    ``source.start`` (required with a journal) and reconciles the orders it sent with the exchange by client id."""
    from pivotal.config import Settings as _Settings
    from pivotal.execution.ccxt_venue import CcxtVenue
    from pivotal.runtime.exchange_node import ExchangeBook, feed_client_factory
    from pivotal.runtime.feeds.live import live_feed_for

    req, empty = prepared.request, prepared.bars
    src = req.source
    tf_ms = TIMEFRAMES[empty.timeframe]
    if req.journal is not None and src.start is None:
        raise UserInputError(f"--journal with --mode {req.mode} needs --start: a restart re-derives the run from it")
    exchange = req.venue_exchange or empty.exchange
    sandbox = req.mode != "live"
    if feed is None:
        feed = live_feed_for(feed_client_factory(exchange, sandbox=sandbox and req.mode == "testnet", rest_url=req.rest_url,
                                                 ws_url=req.ws_url), [empty.symbol], [empty.timeframe])  # fmt: skip
    config = BacktestConfig(fee_rate=req.fee_rate, slippage=req.slippage if req.mode == "paper" else 0.0)
    journal = Journal(req.journal) if req.journal is not None else None
    risk: RiskEngine | None = None
    book: ExchangeBook | None = None
    seen: list[tuple[int, float, float, float, float, float]] = []
    try:
        if req.mode != "paper":
            if venue is None:
                venue = CcxtVenue.from_settings(settings or _Settings(), exchange, sandbox=req.mode == "testnet",
                                                rest_url=req.rest_url)  # fmt: skip
            book = ExchangeBook(venue, capital=req.capital, fee_rate=req.fee_rate)
        strategy = strategy_spec(req.strategy).factory(prepared.params)
        if req.risk is not None:
            risk = RiskEngine(req.risk, audit=None if req.audit is None else RederivedAudit(req.audit))
            strategy = RiskManaged(strategy, risk)
        node = TradingNode(strategy, [(empty.symbol, empty.timeframe)], exchange=empty.exchange, config=config,
                           journal=journal, run=prepared.header(), gate=risk, venue=book)  # fmt: skip
        if book is not None:
            book.attach(node)
        if on_start is not None:
            on_start(node)
        resumed = node.recovery.last_event_time if node.recovery is not None else None
        try:
            for event in feed.events(None if src.start is None else src.start + tf_ms):
                if src.end is not None and event.known_at > src.end:
                    break
                node.on_event(event)
                if isinstance(event, BarClosed) and event.bar.symbol == empty.symbol and event.bar.timeframe == empty.timeframe:
                    b = event.bar
                    seen.append((b.ts, b.open, b.high, b.low, b.close, b.volume))
                if observer is not None:
                    observer(event)
                if src.end is not None and event.known_at >= src.end:
                    break
        except KeyboardInterrupt:
            pass
        finally:
            stop = getattr(feed, "stop", None)
            if callable(stop):
                stop()
        if not seen:
            raise UserInputError(f"--mode {req.mode}: the feed delivered no closed bar of {empty.symbol} {empty.timeframe}")
        result = node.finish()
        snapshot = node.snapshot(node.last_time, req.capital)
    finally:
        if journal is not None:
            journal.close()
        if risk is not None:
            risk.audit.close()
    cols = list(zip(*seen, strict=True))
    o, h, lo, c, v = (np.asarray(col, float) for col in cols[1:])
    bars = Candles(np.asarray(cols[0], np.int64), o, h, lo, c, v, empty.exchange, empty.symbol, empty.timeframe)
    run = BacktestRun(
        req.strategy, prepared.params, req.source.describe(), len(bars), result, config, capital=req.capital,
        timeframe=bars.timeframe, first_ts=int(bars.ts[0]), end_ts=int(bars.ts[-1]) + tf_ms,
        buy_and_hold=BuyAndHold.of(bars, req.fee_rate, req.slippage),
    )  # fmt: skip
    return RunOutcome(run, req.mode, None, node.events, resumed, req.journal, snapshot, req.audit if risk else None,
                      sent=None if book is None else book.sent)  # fmt: skip
