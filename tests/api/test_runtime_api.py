"""Runtime and risk routes (``api.runtime_routes``) on real data: Binance BTC/USDT 1h of early 2020 imported into the
test's store, replayed through the API (control of the session, snapshots, WebSocket push, parity with
``pivotal backtest``), the March 2020 daily-loss breaker of docs/examples/run.toml seen and reset through the API."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from pivotal.api.app import create_app
from pivotal.api.hub import Hub
from pivotal.api.security import RateLimiter, Token
from pivotal.config import Settings
from pivotal.core.clock import SimulatedClock
from pivotal.data.backends import open_store
from pivotal.data.candles import Candles
from pivotal.runtime.node import trade_fingerprint
from pivotal.services.backtest import CandleSource, load_source, run_backtest
from tests.api.conftest import AUTH, TOKEN

START, END = "2020-02-01", "2020-03-20"
RUN: dict[str, Any] = {
    "mode": "replay", "strategy": "sma_cross", "params": {"fast": 10, "slow": 30}, "exchange": "binance",
    "symbols": ["BTC/USDT"], "timeframes": ["1h"], "start": START, "end": END, "speed": 0,
}  # fmt: skip
RISK = {"max_daily_loss": 0.02, "max_drawdown": 0.10, "unusual_market_threshold": "off", "regime_break_threshold": "off"}
ROUTES = ["/api/runtime/start", "/api/runtime/pause", "/api/runtime/resume", "/api/runtime/seek",
          "/api/runtime/speed", "/api/runtime/stop", "/api/risk/reset"]  # fmt: skip


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.fixture
def early_2020(shared_data: Path, settings: Settings) -> Candles:
    """Binance BTC/USDT 1h, January to March 2020, stored as ``binance BTC/USDT 1h``."""
    c = Candles.from_arrow(pq.read_table(shared_data / "binance" / "BTCUSDT-1h-2018-2026.parquet"), "binance", "BTC/USDT", "1h")
    c = c.slice(int((c.ts < ms("2020-01-01")).sum()), int((c.ts < ms("2020-04-01")).sum()))
    store = open_store(settings)
    try:
        store.write_candles(c, source="BTCUSDT-1h-2018-2026.parquet")
    finally:
        store.close()
    return c


@pytest.fixture
def rt(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, Token(TOKEN), RateLimiter(10_000, 60.0), Hub(buffer=20_000))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
        app.state.runtime.shutdown()


def wait_for(client: TestClient, done: Any, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = client.get("/api/runtime/status").json()
        if done(status):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.02)


def finished(status: dict[str, Any]) -> bool:
    return not status["running"] and status["summary"] is not None


def slow_pacing(client: TestClient) -> None:
    """Speed > 0 on a simulated clock that each wait moves on (and a real millisecond, so the API can act)."""
    clock = SimulatedClock(0)

    def sleep(wait_ms: int) -> None:
        clock.advance(wait_ms)
        time.sleep(0.001)

    manager = client.app.state.runtime  # type: ignore[attr-defined]
    manager.clock_factory, manager.sleep = (lambda: clock), sleep


def test_replay_control_pause_resume_speed_stop(rt: TestClient, early_2020: Candles) -> None:
    slow_pacing(rt)
    r = rt.post("/api/runtime/start", json={**RUN, "speed": 100}, headers=AUTH)
    assert r.status_code == 202, r.text
    assert r.json()["running"] is True and r.json()["mode"] == "replay"
    second = rt.post("/api/runtime/start", json=RUN, headers=AUTH)
    assert second.status_code == 409
    message = "a runtime node is already running; stop it first (POST /api/runtime/stop)"
    assert second.json()["error"] == {**second.json()["error"], "code": "conflict", "message": message}
    wait_for(rt, lambda s: s["events"] >= 2)

    paused = rt.post("/api/runtime/pause", headers=AUTH).json()
    assert paused["session"]["status"] == "paused"
    # the event the session handed over before the pause may still be in the node: let it land
    count = wait_for(rt, lambda s: s["events"] == s["session"]["events_replayed"])["events"]
    time.sleep(0.3)
    still = rt.get("/api/runtime/status").json()
    assert still["session"]["status"] == "paused" and still["events"] == count  # nothing is played while paused
    assert still["last_event_time"] == still["session"]["current_time"]

    assert rt.post("/api/runtime/resume", headers=AUTH).json()["session"]["status"] == "running"
    wait_for(rt, lambda s: s["events"] > count)
    assert rt.post("/api/runtime/speed", json={"speed": 50}, headers=AUTH).json()["session"]["speed"] == 50
    bad = rt.post("/api/runtime/speed", json={"speed": 500000}, headers=AUTH)
    assert bad.status_code == 400
    assert bad.json()["error"]["message"] == "replay speed 500000 is out of range; use 0 (as fast as possible) or 0.1 to 100000"
    seek = rt.post("/api/runtime/seek", json={"t": ms("2019-01-01")}, headers=AUTH)
    assert seek.status_code == 400 and "outside the replay window" in seek.json()["error"]["message"]

    stopped = rt.post("/api/runtime/stop", headers=AUTH).json()
    assert stopped["running"] is False and stopped["session"]["status"] == "stopped"
    assert stopped["summary"]["status"] == "stopped"
    assert stopped["events"] < len(early_2020)  # stopped early
    pnl = rt.get("/api/runtime/pnl").json()
    assert set(pnl) == {"time", "events", "equity", "realised_pnl", "unrealised_pnl", "trades", "feed_lag_ms"}
    assert pnl["events"] == stopped["events"] and pnl["time"] == stopped["last_event_time"]
    # after the stop a new node may start
    assert rt.post("/api/runtime/start", json=RUN, headers=AUTH).status_code == 202
    wait_for(rt, finished)


def test_replay_through_the_api_equals_the_backtest_and_pushes_in_order(
    rt: TestClient, early_2020: Candles, settings: Settings
) -> None:
    with rt.websocket_connect("/ws") as ws:
        assert rt.post("/api/runtime/start", json=RUN, headers=AUTH).status_code == 202
        messages = []
        while True:
            m = ws.receive_json()
            messages.append(m)
            if m["type"] == "run_finished":
                break
    status = wait_for(rt, finished)
    seqs = [m["seq"] for m in messages]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # every message, in order, none twice
    candles = [m["payload"] for m in messages if m["type"] == "candle"]
    bars = load_source(CandleSource(None, "binance", "BTC/USDT", "1h", ms(START), ms(END)), settings)
    assert [c["ts"] for c in candles] == bars.ts.tolist() and len(candles) == status["events"]
    assert [c["close"] for c in candles] == bars.close.tolist()

    reference = run_backtest(bars, "sma_cross", {"fast": 10, "slow": 30}, fee_rate=0.001, slippage=0.0005, capital=10_000)
    expected = [{"symbol": "BTC/USDT", **{k: (None if v != v else v) for k, v in asdict(t).items()}}
                for t in reference.result.trades]  # fmt: skip
    assert len(expected) >= 3
    assert rt.get("/api/runtime/trades").json() == expected  # parity through the API
    assert status["summary"]["fingerprint"] == trade_fingerprint(list(reference.result.trades))
    assert messages[-1]["payload"]["trades"] == len(expected)

    fills = [m["payload"] for m in messages if m["type"] == "fill"]
    entries = [f for f in fills if f["part"] == "entry"]
    exits = [f for f in fills if f["part"] == "exit"]
    assert [f["ts"] for f in exits] == [t["exit_time"] for t in expected]
    assert [f["price"] for f in exits] == [t["exit_fill"] for t in expected]
    assert [(f["ts"], f["price"]) for f in entries[: len(expected)]] == [(t["entry_time"], t["entry_fill"]) for t in expected]
    orders = [m for m in messages if m["type"] == "order"]
    assert len(orders) >= len(expected)  # each entry was a queued order first
    first_fill = next(m["seq"] for m in messages if m["type"] == "fill")
    assert min(m["seq"] for m in orders) < first_fill

    positions = rt.get("/api/runtime/positions").json()
    assert set(positions) == {"time", "positions"} and positions["time"] == bars.ts[-1] + 3_600_000
    for p in positions["positions"]:
        assert set(p) >= {"symbol", "direction", "quantity", "entry_price", "mark", "unrealised_pnl"}
    assert set(rt.get("/api/runtime/orders").json()) == {"time", "open_orders"}


def test_a_breaker_trip_shows_halted_and_the_api_reset_is_audited(
    rt: TestClient, early_2020: Candles, settings: Settings
) -> None:
    cfg = {**RUN, "start": "2020-03-09", "risk": RISK, "audit": "runs/risk.jsonl"}
    assert rt.post("/api/runtime/start", json=cfg, headers=AUTH).status_code == 202
    wait_for(rt, finished)
    state = rt.get("/api/risk/state").json()
    assert state["state"] == "HALTED" and state["reason"] == "max_daily_loss"
    assert [(t["rule"], t["time"]) for t in state["trips"]] == [("max_daily_loss", ms("2020-03-14T01:00"))]
    trades = rt.get("/api/runtime/trades").json()
    # the rebound bought at 23:00 on 13 March (5,606) is closed by the breaker (docs/examples/run.toml)
    assert [t["exit_reason"] for t in trades] == ["SIGNAL", "BREAKER"]
    assert (trades[1]["entry_time"], round(trades[1]["entry_fill"])) == (ms("2020-03-13T23:00"), 5606)

    refused = rt.post("/api/risk/reset", json={"rule": "max_drawdown", "reason": "x"}, headers=AUTH)
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "risk reset: no active trip of 'max_drawdown'; active: max_daily_loss"
    r = rt.post("/api/risk/reset", json={"rule": "max_daily_loss", "by": "ops", "reason": "reviewed the crash"}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "ACTIVE" and r.json()["trips"] == []
    lines = [json.loads(line) for line in (settings.data_dir / "runs" / "risk.jsonl").read_text().splitlines()]
    assert [e["event"] for e in lines] == ["trip", "reset"]
    assert lines[1] == {**lines[1], "rule": "max_daily_loss", "by": "ops", "reason": "reviewed the crash", "seq": 2}
    assert rt.get("/api/risk/state").json()["entries"][-1]["event"] == "reset"
    again = rt.post("/api/risk/reset", json={"reason": "nothing left"}, headers=AUTH)  # every active trip: none
    assert again.status_code == 400 and again.json()["error"]["message"] == "risk reset: no active trip; the engine is ACTIVE"
    with rt.websocket_connect("/ws?last_seq=0") as ws:  # everything the run published, from the hub's buffer
        kinds: list[dict[str, Any]] = []
        while not kinds or kinds[-1]["payload"].get("event") != "reset":
            m = ws.receive_json()
            if m["type"] == "breaker":
                kinds.append(m)
    assert [(m["payload"].get("rule"), m["payload"]["state"]) for m in kinds] == [("max_daily_loss", "HALTED"), (None, "ACTIVE")]


def test_errors_of_the_runtime_routes(rt: TestClient, early_2020: Candles) -> None:
    assert rt.get("/api/runtime/status").json()["error"]["message"] == "no runtime node; start one with POST /api/runtime/start"
    assert rt.post("/api/runtime/pause", headers=AUTH).status_code == 404
    cases = {
        "run configuration: unknown key 'venue.fees'; fix: remove it or use one of: kind, exchange, testnet, fee, "
        "slippage, rest_url, ws_url, adopt_foreign_orders": {**RUN, "venue": {"fees": 0.1}},
        "run configuration: mode: 'testnet' is not started through the API yet; fix: use one of replay, backtest, "
        "paper, or `pivotal run --mode testnet`": {**RUN, "mode": "testnet"},
        "run configuration: journal: give a path inside the data folder, relative to it (got '/tmp/x.jsonl'); fix: e.g. "
        "runs/x.jsonl": {**RUN, "journal": "/tmp/x.jsonl"},
    }
    for message, body in cases.items():
        r = rt.post("/api/runtime/start", json=body, headers=AUTH)
        assert r.status_code == 400 and r.json()["error"]["message"] == message, r.text
    outside = rt.post("/api/runtime/start", json={**RUN, "audit": "../escape.jsonl"}, headers=AUTH)
    assert outside.status_code == 400 and "inside the data folder" in outside.json()["error"]["message"]
    missing = rt.post("/api/runtime/start", json={**RUN, "symbols": ["ETH/USDT"]}, headers=AUTH)
    assert missing.status_code in (400, 404) and "ETH/USDT" in missing.json()["error"]["message"]
    assert rt.get("/api/runtime/status").status_code == 404  # nothing started


def test_new_state_changing_routes_need_the_token(rt: TestClient) -> None:
    for path in ROUTES:
        r = rt.post(path, json={})
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", path


def test_serve_run_starts_the_node_with_the_server(
    early_2020: Candles, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    from pivotal.cli.main import app as cli

    config = tmp_path / "run.toml"
    config.write_text(
        'mode = "replay"\nstrategy = "sma_cross"\nparams = { fast = 10, slow = 30 }\nexchange = "binance"\n'
        'symbols = ["BTC/USDT"]\ntimeframes = ["1h"]\nstart = 2020-02-01\nend = 2020-03-20\n'
    )
    seen: dict[str, Any] = {}

    def serve(app: Any, **_: Any) -> None:  # instead of listening: the node runs without any client
        run = app.state.runtime.current
        run.thread.join(60)
        seen.update(run.status())

    monkeypatch.setattr(uvicorn, "run", serve)
    monkeypatch.setenv("PIVOTAL_API_TOKEN", TOKEN)
    result = CliRunner().invoke(cli, ["serve", "--run", str(config)])
    assert result.exit_code == 0, result.output
    assert "started replay of sma_cross" in result.output
    assert seen["summary"]["status"] == "completed" and seen["events"] == seen["session"]["events_replayed"] > 1000
    bad = config.with_name("bad.toml")
    bad.write_text('mode = "testnet"\n')  # real orders: `pivotal run` only
    result = CliRunner().invoke(cli, ["serve", "--run", str(bad)])
    assert result.exit_code != 0 and "mode: 'testnet' cannot run in the server yet" in result.output


def test_a_paper_run_through_the_api_trades_like_the_backtest(rt: TestClient, shared_data: Path, settings: Settings) -> None:
    """``mode = "paper"`` on the local test exchange (Binance's wire format, recorded 1m bars of March 2024): the live
    feed drives the server's node with simulated fills; its candles, pivots and trades equal the backtest's over the
    bars it saw. The exchange clock is stepped from the test, one bar at a time."""
    import threading

    from pivotal.testexchange import TestExchange
    from pivotal.testexchange.tape import load_symbol

    minute = 60_000
    start = ms("2024-03-01T00:00")
    end = start + 240 * minute
    data = {"BTCUSDT": load_symbol(shared_data, "BTCUSDT", ("1m",))}
    cfg = {"mode": "paper", "strategy": "sma_cross", "exchange": "binance", "symbols": ["BTC/USDT"], "timeframes": ["1m"],
           "start": start, "end": end}  # fmt: skip
    with TestExchange(shared_data, ["BTC/USDT"], timeframes=("1m",), start=start + 120 * minute, preloaded=data) as ex:
        ex.pause()
        done = threading.Event()

        def step() -> None:
            while not done.is_set() and ex.now_ms() < end + minute:
                ex.advance(minute)
                done.wait(0.01)

        stepper = threading.Thread(target=step, name="test-clock-stepper", daemon=True)
        try:
            with rt.websocket_connect("/ws") as ws:
                r = rt.post("/api/runtime/start", json={**cfg, "venue": {"rest_url": ex.url}}, headers=AUTH)
                assert r.status_code == 202, r.text
                assert r.json()["mode"] == "paper"
                assert (
                    rt.post("/api/runtime/pause", headers=AUTH)
                    .json()["error"]["message"]
                    .startswith("a paper run follows the exchange's clock")
                )
                stepper.start()
                messages = []
                while not messages or messages[-1]["type"] != "run_finished":
                    messages.append(ws.receive_json())
        finally:
            done.set()
            if stepper.is_alive():
                stepper.join(10)
    status = wait_for(rt, finished)
    assert status["summary"]["status"] == "completed" and status["summary"]["mode"] == "paper", status
    candles = [m["payload"] for m in messages if m["type"] == "candle"]
    month = Candles.from_arrow(pq.read_table(shared_data / "binance" / "BTCUSDT-1m-2024.parquet"), "binance", "BTC/USDT", "1m")
    store = open_store(settings)  # the same bars stored, for the batch pivots
    try:
        store.write_candles(month.slice(int((month.ts < start).sum()), int((month.ts < end).sum())), source="test")
    finally:
        store.close()
    bars = load_source(CandleSource(None, "binance", "BTC/USDT", "1m", start, end), settings)
    assert [c["ts"] for c in candles] == bars.ts.tolist() and len(candles) == 240
    reference = run_backtest(bars, "sma_cross", {}, fee_rate=0.001, slippage=0.0005, capital=10_000)
    assert len(reference.result.trades) >= 3
    assert status["summary"]["fingerprint"] == trade_fingerprint(list(reference.result.trades))
    pushed = [{k: v for k, v in m["payload"].items() if k not in ("exchange", "symbol", "timeframe", "known_at")}
              for m in messages if m["type"] == "pivot"]  # fmt: skip
    q = {"exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1m", "start": start, "end": end}
    assert pushed == rt.get("/api/pivots", params=q).json() and len(pushed) > 20


def test_a_paper_run_stops_on_request_although_no_bar_arrives(rt: TestClient, shared_data: Path) -> None:
    """The exchange is paused after the backfill (as an unreachable one sends nothing): the stop ends the run at once
    through its feed, with the ten bars it had, instead of waiting for a bar that never comes."""
    from pivotal.testexchange import TestExchange
    from pivotal.testexchange.tape import load_symbol

    minute = 60_000
    start = ms("2024-03-01T00:00")
    data = {"BTCUSDT": load_symbol(shared_data, "BTCUSDT", ("1m",))}
    cfg = {"mode": "paper", "strategy": "sma_cross", "exchange": "binance", "symbols": ["BTC/USDT"], "timeframes": ["1m"],
           "start": start, "end": start + 240 * minute}  # fmt: skip
    with TestExchange(shared_data, ["BTC/USDT"], timeframes=("1m",), start=start + 10 * minute, preloaded=data) as ex:
        ex.pause()
        with rt.websocket_connect("/ws") as ws:
            assert rt.post("/api/runtime/start", json={**cfg, "venue": {"rest_url": ex.url}}, headers=AUTH).status_code == 202
            candles: list[int] = []
            while len(candles) < 10:  # the ten bars already closed, backfilled over REST
                m = ws.receive_json()
                if m["type"] == "candle":
                    candles.append(m["payload"]["ts"])
            stopped = rt.post("/api/runtime/stop", headers=AUTH).json()
            assert stopped["stop_requested"] is True
            messages = []
            while not messages or messages[-1]["type"] != "run_finished":
                messages.append(ws.receive_json())
    status = wait_for(rt, finished)
    candles += [m["payload"]["ts"] for m in messages if m["type"] == "candle"]
    assert candles == [start + i * minute for i in range(10)]
    assert status["summary"]["status"] == "stopped" and status["events"] == 10
