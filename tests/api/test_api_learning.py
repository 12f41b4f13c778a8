"""Realtime inference and live training over the API (``api.learning_routes``): a small CNN trained here on 600 real
Binance BTC/USDT 1h bars is traded by the server's node; its predictions (next pivot per level as a price and a time)
and decisions reach the WebSocket, thresholds change between two decisions, the live-training switch acts on the
run's learners or says why it cannot, and the statistics come from the run (or the store when none runs)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from pivotal.api.app import create_app
from pivotal.api.hub import Hub
from pivotal.api.security import RateLimiter, Token
from pivotal.config import Settings
from pivotal.core.clock import SimulatedClock
from pivotal.data.backends import open_store
from pivotal.data.candles import Candles
from pivotal.services import online
from pivotal.training.promotion import PromotionLog
from tests.api.conftest import AUTH, TOKEN
from tests.models.real_samples import real_candles

HOUR = 3_600_000
ROUTES = ["/api/realtime-inference/start", "/api/realtime-inference/stop", "/api/realtime-inference/thresholds",
          "/api/realtime-inference/live-training"]  # fmt: skip


def train_tiny_cnn(shared_data: Path, settings: Settings) -> Candles:
    """A tiny CNN (20 seeded steps on 600 real BTC/USDT 1h bars) checkpointed as ``cnn``, and its bars in the store."""
    import torch

    from pivotal.services.train import checkpoints
    from pivotal.training.pipeline import RunSpec, load_series, make_samples, new_supervised

    torch.set_num_threads(1)
    torch.manual_seed(0)
    base = real_candles(shared_data, 600, offset=19_000)
    spec = RunSpec("cnn", "binance", "BTC/USDT", ("1h",), window=100, progress=False)
    samples = make_samples(load_series(None, spec, base), spec)
    model = new_supervised(spec)
    rng = np.random.default_rng(0)
    for _ in range(20):
        model.train_step(samples.batch(np.sort(rng.choice(len(samples), 64, replace=False))))
    span = {"exchange": "binance", "symbol": "BTC/USDT", "start": int(base.ts[0]), "end": int(base.ts[-1])}
    checkpoints(settings).save(model, "val_loss", 1.0, False, span, spec.extra())
    market = open_store(settings)
    try:
        market.write_candles(base, source="test slice")
    finally:
        market.close()
    return base


@pytest.fixture
def trained(shared_data: Path, settings: Settings) -> Candles:
    return train_tiny_cnn(shared_data, settings)


@pytest.fixture
def rt(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, Token(TOKEN), RateLimiter(10_000, 60.0), Hub(buffer=20_000))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
        app.state.runtime.shutdown()


def slow_pacing(client: TestClient) -> None:
    """Speed > 0 on a simulated clock each wait moves on, and a real 2 ms so the API acts between bars."""
    clock = SimulatedClock(0)

    def sleep(wait_ms: int) -> None:
        clock.advance(wait_ms)
        time.sleep(0.002)

    manager = client.app.state.runtime  # type: ignore[attr-defined]
    manager.clock_factory, manager.sleep = (lambda: clock), sleep


def wait_for(client: TestClient, done: Any, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = client.get("/api/runtime/status").json()
        if done(status):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.02)


def body(trained: Candles, **extra: Any) -> dict[str, Any]:
    return {"model_name": "cnn", "symbol": "BTC/USDT", "start": int(trained.ts[300]), "end": int(trained.ts[-1]) + HOUR,
            **extra}  # fmt: skip


def thresholds_in(reason: str) -> set[float]:
    """The thresholds a decision's reason names ("score S >= buy threshold B", "... inside (-S, B)")."""
    if "inside (" in reason:
        sell, buy = reason.split("inside (")[1].rstrip(")").split(", ")
        return {float(sell.lstrip("-")), float(buy)}
    if "threshold " in reason:
        return {float(reason.rsplit("threshold ", 1)[1])}
    return set()


def test_state_changing_routes_need_the_token_and_nothing_runs_yet(client: TestClient) -> None:
    for route in ROUTES:
        r = client.post(route, json={})
        assert r.status_code == 401, route
    status = client.get("/api/realtime-inference/status").json()
    assert status == {"active": False, "reason": "no model run; start one with POST /api/realtime-inference/start"}
    r = client.post("/api/realtime-inference/thresholds", json={"buy": 0.1, "sell": 0.1}, headers=AUTH)
    assert r.status_code == 409
    assert r.json()["error"]["message"] == "no model run is active; start one with POST /api/realtime-inference/start"
    bad = client.post("/api/realtime-inference/thresholds", json={"buy": 1.5, "sell": 0.1}, headers=AUTH)
    assert bad.status_code == 422 and "buy" in bad.text
    missing = client.post("/api/realtime-inference/start", json={"model_name": "nope", "symbol": "BTC/USDT"}, headers=AUTH)
    assert missing.status_code == 404 and "nope" in missing.json()["error"]["message"]
    assert client.get("/api/live-training/stats").json() == {"source": "stored", "models": {}}


def test_a_model_run_pushes_predictions_and_decisions_and_takes_new_thresholds(rt: TestClient, trained: Candles) -> None:
    slow_pacing(rt)
    with rt.websocket_connect("/ws") as ws:
        r = rt.post("/api/realtime-inference/start", json=body(trained, enable_live_training=False, speed=100), headers=AUTH)
        assert r.status_code == 202, r.text
        started = r.json()
        assert (started["strategy"], started["exchange"], started["timeframes"]) == ("model", "binance", ["1h"])
        wait_for(rt, lambda s: s["model"]["decisions"] >= 3)
        status = rt.get("/api/realtime-inference/status").json()
        assert status["active"] is True and status["runtime"]["model"]["thresholds"] == {"buy": 0.2, "sell": 0.2}
        assert status["runtime"]["model"]["live_training"] is status["runtime"]["model"]["live_training_switchable"] is False
        # this run has no learner to switch on: said, not pretended
        lt = rt.post("/api/realtime-inference/live-training", json={"enabled": True}, headers=AUTH)
        assert lt.status_code == 409 and "started without live training" in lt.json()["error"]["message"]
        t = rt.post("/api/realtime-inference/thresholds", json={"buy": 0.01, "sell": 0.02}, headers=AUTH)
        assert t.status_code == 200, t.text
        since = t.json()["since"]
        assert (t.json()["buy"], t.json()["sell"]) == (0.01, 0.02)
        wait_for(rt, lambda s: s["last_event_time"] >= since + 3 * HOUR)
        stopped = rt.post("/api/realtime-inference/stop", headers=AUTH).json()
        assert stopped["running"] is False and stopped["summary"]["status"] == "stopped"
        messages = []
        while True:
            m = ws.receive_json()
            messages.append(m)
            if m["type"] == "run_finished":
                break
    decisions = [m["payload"] for m in messages if m["type"] == "decision"]
    predictions = [m["payload"] for m in messages if m["type"] == "prediction"]
    assert len(decisions) == len(predictions) >= 6
    close_at = {int(ts) + HOUR: float(c) for ts, c in zip(trained.ts, trained.close, strict=True)}  # bar close time
    for d, p in zip(decisions, predictions, strict=True):
        assert p["timestamp"] == d["ts"] and p["model_name"] == "cnn" and p["timeframe"] == "1h"
        assert p["close"] == close_at[d["ts"]]  # the close of the bar the decision was made at (real data)
        assert [x["level"] for x in p["pivots"]] == [1, 2, 3]  # the levels this CNN predicts
        for x in p["pivots"]:
            assert x["price"] == p["close"] * math.exp(x["price_offset"])
            assert x["time"] == d["ts"] + round(x["bars_until"] * HOUR)
        expected = {0.01, 0.02} if d["ts"] > since else {0.2}
        assert thresholds_in(d["reason"]) <= expected, (d["ts"], since, d["reason"])  # new ones from the next bar on
    assert {d["ts"] > since for d in decisions} == {False, True}
    assert rt.get("/api/realtime-inference/status").json()["reason"] == "the model run has finished; start another"
    late = rt.post("/api/realtime-inference/thresholds", json={"buy": 0.1, "sell": 0.1}, headers=AUTH)
    assert late.status_code == 409 and late.json()["error"]["message"].startswith("the run has finished")


def test_live_training_switch_and_statistics(rt: TestClient, trained: Candles, settings: Settings) -> None:
    slow_pacing(rt)
    r = rt.post("/api/realtime-inference/start", json=body(trained, speed=100), headers=AUTH)
    assert r.status_code == 202, r.text
    wait_for(rt, lambda s: s["events"] >= 5)
    model = rt.get("/api/realtime-inference/status").json()["runtime"]["model"]
    assert model["live_training"] is model["live_training_switchable"] is True
    off = rt.post("/api/realtime-inference/live-training", json={"enabled": False}, headers=AUTH)
    assert off.status_code == 200, off.text
    assert off.json() == {"enable_live_training": False, "models": {"cnn": False}}
    stats = rt.get("/api/live-training/stats").json()
    assert stats["source"] == "running" and stats["models"]["cnn"]["enable_live_training"] is False
    on = rt.post("/api/realtime-inference/live-training", json={"enabled": True}, headers=AUTH).json()
    assert on == {"enable_live_training": True, "models": {"cnn": True}}
    assert rt.post("/api/runtime/speed", json={"speed": 0}, headers=AUTH).status_code == 200
    wait_for(rt, lambda s: not s["running"] and s["summary"] is not None)
    stats = rt.get("/api/live-training/stats").json()
    cnn = stats["models"]["cnn"]
    assert stats["source"] == "finished run" and cnn["enable_live_training"] is True
    # The gate may promote during the run, and the trainer may promote once more after the run's last swap (the
    # watcher polls), so the run's last serving version is one the log promoted, at or before the log's serving one.
    promoted = PromotionLog(online.models_root(settings), "cnn").history()
    shown = rt.get("/api/models/cnn").json()["online"]["serving"]
    assert cnn["serving_version"] in promoted and shown in promoted
    assert promoted.index(cnn["serving_version"]) <= promoted.index(shown)
    assert cnn["serving_version"] in cnn["predictions_by_version"]
    assert sum(cnn["predictions_by_version"].values()) == rt.get("/api/runtime/status").json()["events"] == 300
    assert set(cnn["staleness_ms"]) == set(cnn["trained_through"])
    stored = rt.get("/api/live-training/stats", params={"model": "cnn"}).json()
    assert stored["source"] == "finished run" and list(stored["models"]) == ["cnn"]


def test_a_model_in_paper_through_the_api_decides_on_the_live_feed(rt: TestClient, trained: Candles, shared_data: Path) -> None:
    """``mode: paper`` with ``exchange_url``: the checkpoint trades the local test exchange's feed (recorded real 1h bars
    in Binance's wire format), seeded with the stored history before its first bar; each bar is decided on, with
    its prediction, and the bars it saw are the stored ones. The exchange clock is stepped from the test."""
    from pivotal.testexchange import TestExchange
    from pivotal.testexchange.tape import load_symbol

    start, end = int(trained.ts[540]), int(trained.ts[560]) + HOUR
    data = {"BTCUSDT": load_symbol(shared_data, "BTCUSDT", ("1h",))}
    wrong = rt.post("/api/realtime-inference/start", json=body(trained, exchange_url="http://127.0.0.1:1"), headers=AUTH)
    assert wrong.status_code == 400
    assert wrong.json()["error"]["message"] == (
        "exchange_url applies to mode paper (the exchange's live feed); mode replay reads the store"
    )
    with TestExchange(shared_data, ["BTC/USDT"], timeframes=("1h",), start=start + 5 * HOUR, preloaded=data) as ex:
        ex.pause()
        with rt.websocket_connect("/ws") as ws:
            run = {"model_name": "cnn", "symbol": "BTC/USDT", "start": start, "end": end, "mode": "paper",
                   "exchange_url": ex.url, "enable_live_training": False}  # fmt: skip
            r = rt.post("/api/realtime-inference/start", json=run, headers=AUTH)
            assert r.status_code == 202, r.text
            assert (r.json()["mode"], r.json()["strategy"]) == ("paper", "model")
            messages: list[dict[str, Any]] = []
            while not messages or messages[-1]["type"] != "run_finished":
                if ex.now_ms() < end + HOUR:
                    ex.advance(HOUR)
                messages.append(ws.receive_json())
    status = wait_for(rt, lambda s: not s["running"] and s["summary"] is not None)
    assert status["summary"]["status"] == "completed", status
    candles = [m["payload"] for m in messages if m["type"] == "candle"]
    keep = (trained.ts >= start) & (trained.ts < end)
    assert [c["ts"] for c in candles] == trained.ts[keep].tolist() and len(candles) == 21
    assert [c["close"] for c in candles] == trained.close[keep].tolist()
    decisions = [m["payload"] for m in messages if m["type"] == "decision"]
    predictions = [m["payload"] for m in messages if m["type"] == "prediction"]
    assert [d["ts"] for d in decisions] == [p["timestamp"] for p in predictions] == [c["ts"] + HOUR for c in candles]
