"""The node's snapshot on hand-written bars (exact positions, orders, PnL, risk state after each event), its
rendering on an 80-column console, and on real data the example run configuration: a replay of BTC/USDT 1h in March
2020 under the risk engine that ends HALTED by the daily-loss breaker, with the reason in the status."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from pivotal.cli.main import app
from pivotal.core.clock import SimulatedClock
from pivotal.core.errors import UserInputError
from pivotal.core.orders import Order
from pivotal.data.candles import Candles
from pivotal.execution.engine import BacktestConfig
from pivotal.risk import RiskConfig, RiskEngine, RiskManaged
from pivotal.risk.audit import read_audit
from pivotal.runtime.feeds.historical import HistoricalFeed
from pivotal.runtime.node import NodeSnapshot, OrderView, PositionView, TradingNode
from pivotal.runtime.replay import ReplaySession
from pivotal.runtime.runner import RederivedAudit
from pivotal.runtime.status import StatusView, render
from tests.risk.helpers import HOUR, Scripted, candles

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "docs" / "examples" / "run.toml"


def bars() -> Candles:
    """Opens are the previous close: long from bar 1's open at 100, a 5 % drop at bar 2's close, flat after."""
    c = candles([100, 100, 95, 95, 96])
    return Candles(c.ts, c.open, c.high, c.low, c.close, c.volume, "binance", "BTC/USDT", "1h")


def run_snapshots(risk: RiskEngine | None) -> list[NodeSnapshot]:
    strategy = Scripted({0: [Order.enter(+1, stop_offset=10.0)]})
    node = TradingNode(
        strategy if risk is None else RiskManaged(strategy, risk), [("BTC/USDT", "1h")], exchange="binance",
        config=BacktestConfig(fee_rate=0.0, slippage=0.0), gate=risk, run_id="t",
    )  # fmt: skip
    snaps: list[NodeSnapshot] = []

    def sink(event: object) -> None:
        node.on_event(event)  # type: ignore[arg-type]
        snaps.append(node.snapshot(event.known_at + 5, capital=1000.0))  # type: ignore[attr-defined]

    ReplaySession(HistoricalFeed([bars()]), sink, clock=SimulatedClock(0)).run()
    return snaps


@pytest.mark.unit
def test_snapshot_after_each_event_under_the_risk_engine() -> None:
    s = run_snapshots(RiskEngine(RiskConfig.off(max_daily_loss=0.02)))
    active = {"state": "ACTIVE", "reason": "", "since": None, "trips": []}
    # bar 0 closed: the entry is queued (it fills at bar 1's open)
    assert s[0].time == HOUR and s[0].events == 1 and s[0].feed_lag_ms == 5 and s[0].positions == ()
    assert s[0].open_orders == (OrderView("t-1", "BTC/USDT", "enter", 1, "market", ""),)
    assert (s[0].equity, s[0].realised_pnl, s[0].unrealised_pnl, s[0].trades, s[0].risk) == (1000.0, 0.0, 0.0, 0, active)
    # bar 1: long 10 units (all of 1000 at 100), stop 90
    assert s[1].positions == (PositionView("BTC/USDT", 1, 10.0, 100.0, 100.0, 0.0, 90.0, None, HOUR),)
    assert s[1].open_orders == () and s[1].equity == 1000.0
    # bar 2 closes at 95: -5 % of the day's first equity >= 2 %: HALTED, and the engine's exit is queued
    (p,) = s[2].positions
    assert (p.mark, p.unrealised_pnl) == (95.0, pytest.approx(-50.0))
    assert s[2].open_orders == (OrderView("t-2", "BTC/USDT", "exit", 0, "market", "risk:max_daily_loss"),)
    assert s[2].equity == pytest.approx(950.0) and s[2].unrealised_pnl == pytest.approx(-50.0) and s[2].realised_pnl == 0.0
    risk = s[2].risk
    assert risk is not None and (risk["state"], risk["reason"], risk["since"]) == ("HALTED", "max_daily_loss", 3 * HOUR)
    assert [(t["rule"], t["time"], round(t["value"], 6), t["threshold"]) for t in risk["trips"]] == [
        ("max_daily_loss", 3 * HOUR, 0.05, 0.02)
    ]
    # bar 3: the exit filled at its open (95): flat, the loss realised, still HALTED until a reset
    assert s[3].positions == () and s[3].open_orders == () and s[3].trades == 1
    assert s[3].realised_pnl == pytest.approx(-50.0) and s[3].unrealised_pnl == 0.0 and s[3].equity == pytest.approx(950.0)
    assert s[4].risk == s[3].risk and s[4].risk["state"] == "HALTED"  # type: ignore[index]


@pytest.mark.unit
def test_a_rerun_rederives_the_audit_log_without_writing_twice(tmp_path: Path) -> None:
    """A replay starts over from the feed's start: its audit log's trips are matched, not restored (a restored HALTED
    would change the run) and not written again; another run's log is refused in one line."""
    path = tmp_path / "audit.jsonl"
    for _ in range(2):
        audit = RederivedAudit(path)
        first = run_snapshots(RiskEngine(RiskConfig.off(max_daily_loss=0.02), audit=audit))
        audit.close()
        assert first[1].risk["state"] == "ACTIVE" and first[2].risk["state"] == "HALTED"  # type: ignore[index]
        assert [(e["seq"], e["rule"], e["time"]) for e in read_audit(path)] == [(1, "max_daily_loss", 3 * HOUR)]
    audit = RederivedAudit(path)
    with pytest.raises(UserInputError, match="the risk audit log belongs to another run"):
        run_snapshots(RiskEngine(RiskConfig.off(max_daily_loss=0.01), audit=audit))
    audit.close()


@pytest.mark.unit
def test_snapshot_under_the_default_gate_has_no_risk_state() -> None:
    s = run_snapshots(None)
    assert all(x.risk is None for x in s)
    assert s[2].positions[0].stop == 90.0 and s[2].open_orders == ()  # no engine: nothing closes it
    assert s[-1].positions[0].mark == 96.0 and s[-1].unrealised_pnl == pytest.approx(-40.0)


@pytest.mark.unit
def test_render_fits_80_columns_and_says_halted_and_why() -> None:
    snap = run_snapshots(RiskEngine(RiskConfig.off(max_daily_loss=0.02)))[2]
    console = Console(width=80, record=True, color_system=None, file=io.StringIO())
    console.print(render(snap, title="replay sma_cross"))
    text = console.export_text()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert lines[0] == "replay sma_cross  1970-01-01 03:00 UTC  events 3  feed lag 5 ms"
    assert lines[1] == "risk: HALTED (max_daily_loss) since 1970-01-01 03:00 UTC"
    assert lines[2] == "equity 950.00  realised 0.00  unrealised -50.00  trades 0"
    assert lines[3].split() == ["symbol", "side", "qty", "entry", "mark", "unrealised", "stop", "target"]
    assert lines[4].split() == ["BTC/USDT", "long", "10", "100", "95", "-50.00", "90", "-"]
    assert lines[5].split() == ["order", "symbol", "action", "side", "type", "tag"]
    assert lines[6].split() == ["t-2", "BTC/USDT", "exit", "-", "market", "risk:max_daily_loss"]
    flat = Console(width=80, record=True, color_system=None, file=io.StringIO())
    flat.print(render(run_snapshots(None)[0]))
    other = flat.export_text()
    assert "risk: default gate" in other and "positions: none" in other


@pytest.mark.unit
def test_status_view_draws_the_last_frame() -> None:
    console = Console(width=80, record=True, color_system=None, file=io.StringIO())
    view = StatusView(console, title="replay", capital=1000.0, interval=0.0)
    strategy = Scripted({0: [Order.enter(+1)]})
    node = TradingNode(strategy, [("BTC/USDT", "1h")], exchange="binance", run_id="t")
    view.attach(node)
    ReplaySession(HistoricalFeed([bars()]), lambda e: (node.on_event(e), view.observe(e)), clock=SimulatedClock(0)).run()
    view.close()
    assert "events 5" in console.export_text()


@pytest.mark.realdata
def test_example_config_replays_march_2020_into_halted(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/examples/run.toml as shipped (its input is ../shared/data), journal and trades redirected: SMA cross
    10/30 (long only) buys the rebound at 23:00 on 13 March 2020 and the next hour takes the day's loss to 2.76 %;
    the daily-loss breaker trips at 2020-03-14 01:00 UTC, the engine closes the position (BREAKER) and the node
    stays HALTED and flat to the end. A rerun on the same journal gives the same trades, each audit entry once."""
    if shared_data.resolve() != (REPO.parent / "shared" / "data").resolve():
        pytest.skip("the example points at ../shared/data")
    monkeypatch.chdir(tmp_path)
    journal = tmp_path / "run.jsonl"
    args = ["run", "--config", str(EXAMPLE), "--journal", str(journal), "--trades-out", str(tmp_path / "t.csv"), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    status = report["status"]
    assert report["mode"] == "replay" and report["events"] == 264 and status["positions"] == []
    risk = status["risk"]
    assert (risk["state"], risk["reason"], risk["since"]) == ("HALTED", "max_daily_loss", 1584147600000)  # 2020-03-14 01:00
    assert [(t["rule"], round(t["value"], 4)) for t in risk["trips"]] == [("max_daily_loss", 0.0276)]
    audit = read_audit(tmp_path / "run.risk.jsonl")
    assert [(e["event"], e["rule"], e["time"]) for e in audit] == [("trip", "max_daily_loss", 1584147600000)]
    first = (tmp_path / "t.csv").read_text()
    assert [line.split(",")[11] for line in first.splitlines()[1:]] == ["SIGNAL", "BREAKER"]  # closed by the engine
    result = CliRunner().invoke(app, args)  # again on the finished journal: re-derived, nothing written twice
    assert result.exit_code == 0, result.output
    assert (tmp_path / "t.csv").read_text() == first and len(read_audit(tmp_path / "run.risk.jsonl")) == 1
    console = Console(width=80, record=True, color_system=None, file=io.StringIO())
    snap = NodeSnapshot(**{**status, "positions": (), "open_orders": ()})
    console.print(render(snap, title="replay sma_cross"))
    assert "risk: HALTED (max_daily_loss) since 2020-03-14 01:00 UTC" in console.export_text()
