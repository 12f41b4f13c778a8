"""The trading node on hand-written bars: the engine's trades, write-ahead records in order, restart from any
crash point without duplicates, and clear refusals (rewind, another run's journal, a diverging replay)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from pivotal.core.clock import SimulatedClock
from pivotal.core.errors import UserInputError
from pivotal.core.orders import Fill, Order
from pivotal.data.candles import Candles
from pivotal.execution.engine import BacktestConfig, EventEngine
from pivotal.risk.gate import Decision
from pivotal.runtime.feeds.historical import HistoricalFeed
from pivotal.runtime.journal import Journal
from pivotal.runtime.node import JournalMismatch, TradingNode, trade_fingerprint
from pivotal.runtime.replay import ReplaySession
from pivotal.strategies.base import BarContext

pytestmark = pytest.mark.unit

HOUR = 3_600_000
RUN = {"strategy": "scripted", "params": {"n": 1}}
# prices by hand: a rise, a dip through a stop, a rally through a target
ROWS = [(100, 101, 99, 100), (100, 103, 99, 102), (102, 106, 101, 105), (105, 105, 95, 96), (96, 98, 95, 97),
        (97, 99, 96, 98), (98, 110, 97, 109), (109, 111, 108, 110), (110, 112, 109, 111), (111, 112, 110, 111)]  # fmt: skip


class Scripted:
    def __init__(self, orders: dict[int, list[Order]]) -> None:
        self.orders = orders
        self.fills: list[Fill] = []

    def on_bar(self, ctx: BarContext) -> list[Order]:
        return self.orders.get(ctx.bar.index, [])

    def on_fill(self, fill: Fill) -> None:
        self.fills.append(fill)


def script() -> Scripted:
    return Scripted({
        0: [Order.enter(+1, stop_offset=4.0)],  # fills at bar 1's open
        1: [Order.exit()],  # closes it at bar 2's open
        3: [Order.exit()],  # no position left by then: dropped at bar 4's open
        4: [Order.enter(-1, target_offset=50.0), Order.enter(+1)],  # the second entry is denied (one per bar)
        6: [Order.exit(), Order.enter(+1, target_offset=2.0)],  # reversal at bar 7's open; its target hit in bar 7
    })  # fmt: skip


def candles(n: int = len(ROWS)) -> Candles:
    a = np.array(ROWS[:n], dtype=np.float64)
    ts = np.arange(n, dtype=np.int64) * HOUR
    return Candles(ts, a[:, 0], a[:, 1], a[:, 2], a[:, 3], np.ones(n), "binance", "BTC/USDT", "1h")


def replay(journal: Journal | None = None, strategy: Scripted | None = None, run: dict | None = None) -> TradingNode:
    node = TradingNode(strategy or script(), [("BTC/USDT", "1h")], exchange="binance", journal=journal, run=run or RUN,
                       run_id="t", config=BacktestConfig(fee_rate=0.001, slippage=0.0))  # fmt: skip
    try:
        ReplaySession(HistoricalFeed([candles()]), node.on_event, clock=SimulatedClock(0)).run()
        node.finish()
    finally:
        if journal is not None:
            journal.close()
    return node


def test_the_node_trades_exactly_as_the_engine_runs() -> None:
    engine = EventEngine(candles(), BacktestConfig(fee_rate=0.001, slippage=0.0)).run(script())
    node = replay()
    assert trade_fingerprint(node.trades) == trade_fingerprint(engine.trades.trades)
    assert [(t.entry_bar, t.exit_bar, t.exit_reason) for t in node.trades] == [(1, 2, "SIGNAL"), (5, 7, "SIGNAL"), (7, 7, "TP")]
    assert node.result is not None and node.result.metrics == engine.metrics and node.result.denials == engine.denials
    assert np.array_equal(node.result.equity.equity, engine.equity.equity)


def test_records_are_written_ahead_in_order(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    replay(journal)
    kinds = [(r["k"], r.get("id") or r.get("order"), r.get("status") or r.get("kind")) for r in journal.records]
    assert kinds[:7] == [
        ("run", None, None),
        ("decision", None, None),
        ("order", "t-1", "accepted"),  # judged at bar 0's close
        ("fill", "t-1", "entry"),  # at bar 1's open, before the portfolio books it
        ("decision", None, None),  # at bar 1's close
        ("order", "t-2", "accepted"),
        ("order_done", "t-1", "filled"),  # once bar 1's event is through
    ]
    done = {r["id"]: r["status"] for r in journal.records if r["k"] == "order_done"}
    assert done == {"t-1": "filled", "t-2": "filled", "t-3": "dropped", "t-4": "filled", "t-6": "filled", "t-7": "filled"}
    denied = [r for r in journal.records if r["k"] == "order" and r["status"] == "denied"]
    assert [(r["id"], r["reason"]) for r in denied] == [("t-5", "one entry per bar")]
    assert not [r for r in journal.records if r["k"] == "breaker"]  # a rule, not a breaker
    r = journal.recover()
    assert r.ended and r.positions == {} and r.open_orders == {} and r.last_event_time == 10 * HOUR


def _text(record: dict) -> str:
    return json.dumps(record, sort_keys=True)


def _keys(journal: Journal) -> list[str]:
    return [r["key"] for r in journal.records if r["key"] is not None]


def test_restart_after_a_crash_at_any_record_writes_each_record_once(tmp_path: Path) -> None:
    full = Journal(tmp_path / "full.jsonl")
    replay(full)
    want = [r for r in full.records if r["k"] != "progress"]
    lines = (tmp_path / "full.jsonl").read_bytes().splitlines(keepends=True)
    for cut in range(1, len(lines)):
        path = tmp_path / f"cut{cut}.jsonl"
        path.write_bytes(b"".join(lines[:cut]) + lines[cut][: len(lines[cut]) // 2])  # killed mid-write
        node = replay(Journal(path))
        got = [r for r in Journal(path, readonly=True).records if r["k"] != "progress"]
        assert sorted(map(_text, got)) == sorted(map(_text, want)), cut
        assert not [k for k, n in Counter(_keys(Journal(path, readonly=True))).items() if n > 1]
        assert node.positions() == {}


def test_restart_checks_the_journal_is_this_runs(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    replay(Journal(path))
    with pytest.raises(UserInputError, match="belongs to another run"):
        replay(Journal(path), run={"strategy": "scripted", "params": {"n": 2}})


def test_a_replay_that_does_not_reproduce_the_journal_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    replay(Journal(path))
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:4]))  # up to the first entry fill: a long position is journaled
    with pytest.raises(JournalMismatch, match="does not reproduce its journal"):
        replay(Journal(path), strategy=Scripted({}))


def test_events_must_not_go_back_in_time() -> None:
    node = TradingNode(Scripted({}), [("BTC/USDT", "1h")])
    events = list(HistoricalFeed([candles(3)]).events())
    node.on_event(events[1])
    with pytest.raises(UserInputError, match="cannot rewind"):
        node.on_event(events[0])
    with pytest.raises(UserInputError, match="one timeframe per symbol"):
        TradingNode(Scripted({}), [("BTC/USDT", "1h"), ("BTC/USDT", "1m")])


def test_other_events_are_counted_not_traded() -> None:
    node = TradingNode(Scripted({}), [("BTC/USDT", "1h")])
    other = Candles(candles().ts, *(getattr(candles(), f) for f in ("open", "high", "low", "close", "volume")),
                    "binance", "ETH/USDT", "1h")  # fmt: skip
    ReplaySession(HistoricalFeed([candles(), other]), node.on_event, clock=SimulatedClock(0)).run()
    assert node.events == 20 and node.ignored == 10 and node.engine.feeds[0].n == 10


class Tripping:
    """A gate whose breaker trips at bar 4: entries decided there are denied with the breaker's reason."""

    watches_bars = False

    def check(self, order: Order, bar: object, has_position: bool, entry_pending: bool) -> Decision:
        if order.action == "enter" and getattr(bar, "index", 0) == 4:
            return Decision(False, "max daily loss 2 % reached")
        return Decision(True)

    def on_bar_close(self, bar: object, equity: float) -> None: ...

    def on_trade_closed(self, symbol: str, trade: object) -> None: ...


def test_breaker_denials_are_journaled_as_trips(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    node = TradingNode(script(), [("BTC/USDT", "1h")], journal=journal, run=RUN, run_id="t", gate=Tripping())
    ReplaySession(HistoricalFeed([candles()]), node.on_event, clock=SimulatedClock(0)).run()
    node.finish()
    trips = [(r["rule"], r["order"], r["t"]) for r in journal.records if r["k"] == "breaker"]
    assert trips == [("max daily loss 2 % reached", "t-4", 5 * HOUR), ("max daily loss 2 % reached", "t-5", 5 * HOUR)]
    journal.close()
