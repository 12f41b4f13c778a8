"""Training on annotations and replay against them over HTTP (``api.training_routes``), on real binance BTC/USDT
hourly bars: the token on every state-changing route, a fresh CNN trained briefly with its progress on the WebSocket,
fine-tuning from its checkpoint, a replay whose metrics are recomputed here by hand from its predictions and the
annotated spans, pause / step / stop, stopping a job, and the test-case fixtures."""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from pivotal.api.app import create_app
from pivotal.api.hub import Hub
from pivotal.api.security import RateLimiter, Token
from pivotal.config import Settings, load_settings
from pivotal.data.backends import open_store
from pivotal.data.candles import Candles
from pivotal.data.state.annotations import AnnotationFilter
from pivotal.services.annotation_training import TrainingJob, TrainRequest

TOKEN = secrets.token_urlsafe(24)
AUTH = {"Authorization": f"Bearer {TOKEN}"}
H = 3_600_000
BARS = 400
SPANS = ((150, 160, "LONG"), (200, 212, "SHORT"), (300, 305, "LONG"))  # (entry bar, exit bar, direction)


@pytest.fixture
def settings() -> Settings:
    return load_settings()


@pytest.fixture
def bars(shared_data: Path, settings: Settings) -> Candles:
    c = Candles.from_arrow(pq.read_table(shared_data / "binance" / "BTCUSDT-1h-2018-2026.parquet"), "binance", "BTC/USDT", "1h")
    c = c.slice(0, BARS)
    store = open_store(settings)
    try:
        store.write_candles(c, source="BTCUSDT-1h-2018-2026.parquet")
    finally:
        store.close()
    return c


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, Token(TOKEN), RateLimiter(10_000, 60.0), Hub(buffer=2000))
    app.state.training.bar_interval_s = 0.0
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
    app.state.training.shutdown()


def _annotate(client: TestClient, bars: Candles) -> list[dict[str, Any]]:
    made = []
    for entry, exit_, direction in SPANS:
        body = {"symbol": "BTC/USDT", "timeframe": "1h", "entry_ts": int(bars.ts[entry]), "entry_price": float(bars.close[entry]),
                "exit_ts": int(bars.ts[exit_]), "exit_price": float(bars.close[exit_]), "direction": direction}  # fmt: skip
        r = client.post("/api/annotations", json=body, headers=AUTH)
        assert r.status_code == 201, r.text
        made.append(r.json())
    return made


def _wait(client: TestClient, path: str, done: tuple[str, ...], timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        got = client.get(path).json()
        if got["status"] in done:
            return got
        assert time.monotonic() < deadline, got
        time.sleep(0.05)


def _train(client: TestClient, **extra: Any) -> dict[str, Any]:
    body = {"model": "ann-cnn", "fresh": True, "timeframes": ["1h"], "window": 100, "epochs": 2, **extra}
    r = client.post("/api/training/jobs", json=body, headers=AUTH)
    assert r.status_code == 202, r.text
    return _wait(client, f"/api/training/jobs/{r.json()['id']}", ("done", "failed", "stopped"))


def test_state_changing_routes_need_the_token(client: TestClient) -> None:
    posts = ["/api/training/jobs", "/api/training/jobs/x/stop", "/api/annotations/replay",
             *(f"/api/annotations/replay/x/{a}" for a in ("pause", "resume", "step", "speed", "stop"))]  # fmt: skip
    for path in posts:
        r = client.post(path, json={})
        assert r.status_code == 401, path
        assert r.json()["error"]["code"] == "unauthorized"
    assert client.get("/api/training/jobs").json() == []
    assert client.get("/api/training/jobs/nope").status_code == 404
    assert client.get("/api/annotations/replay/nope").status_code == 404
    bad = client.post("/api/annotations/replay", json={"model": "m", "symbol": "BTC/USDT", "timeframe": "1h", "start": 0,
                                                        "end": 1, "speed": 3}, headers=AUTH)  # fmt: skip
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "body.speed"


def test_train_replay_and_metrics(client: TestClient, bars: Candles) -> None:
    annotations = _annotate(client, bars)
    job = _train(client)
    assert job["status"] == "done", job
    # 6 samples (entry and exit of 3 trades, every input complete: >= 100 bars before bar 150); 2 of them validate
    assert job["samples"] == 6 and job["data"]["annotations"] == 3 and job["data"]["dropped"] == []
    assert (job["epoch"], job["step"], job["total_steps"]) == (2, 2, 2) and len(job["history"]) == 2
    assert job["checkpoint"].startswith("ann-cnn/") and math.isfinite(job["loss"])
    assert [m["name"] for m in client.get("/api/models").json()] == ["ann-cnn"]
    with client.websocket_connect("/ws?last_seq=0") as ws:  # what the hub pushed so far
        seen = []
        while True:
            m = ws.receive_json()
            seen.append(m)
            if m["type"] == "training_progress" and m["payload"]["status"] == "done":
                break
    progress = [m["payload"] for m in seen if m["type"] == "training_progress"]
    assert progress[0]["status"] == "running" and [p["step"] for p in progress if p["status"] == "running"][-1] == 2

    tuned = _train(client, model="ann-cnn", fresh=False, epochs=1)
    assert tuned["status"] == "done" and tuned["parent"] == job["checkpoint"] and tuned["step"] == 1

    start, end = int(bars.ts[140]), int(bars.ts[320])
    r = client.post("/api/annotations/replay", json={"model": "ann-cnn", "symbol": "BTC/USDT", "timeframe": "1h",
                                                     "start": start, "end": end, "speed": 10}, headers=AUTH)  # fmt: skip
    assert r.status_code == 202, r.text
    result = _wait(client, f"/api/annotations/replay/{r.json()['id']}", ("completed", "failed"))
    assert result["status"] == "completed" and result["played"] == result["total"] == 180
    preds = result["predictions"]
    assert [p["ts_ms"] for p in preds] == [int(t) for t in bars.ts[140:320]]
    assert all(p["action"] in ("BUY", "SELL", "HOLD") and p["as_of"] == p["ts_ms"] + H for p in preds)
    # the annotated target of each bar, by hand: the trade's direction from its entry bar to the bar before its exit
    want = ["HOLD"] * 180
    for a in annotations:
        for k in range(180):
            if a["entry_ts"] <= preds[k]["ts_ms"] < a["exit_ts"]:
                want[k] = "BUY" if a["direction"] == "LONG" else "SELL"
    assert [p["truth"] for p in preds] == want
    labels = ["BUY", "SELL", "HOLD"]
    matrix = [[sum(1 for p in preds if p["truth"] == t and p["action"] == a) for a in labels] for t in labels]
    metrics = result["metrics"]
    assert metrics["confusion_matrix"] == matrix and metrics["n"] == 180
    assert metrics["accuracy"] == pytest.approx(sum(matrix[i][i] for i in range(3)) / 180, abs=1e-12)
    for i, name in enumerate(labels):
        tp, predicted, actual = matrix[i][i], sum(row[i] for row in matrix), sum(matrix[i])
        got = metrics["per_class"][name]
        assert got["support"] == actual
        assert got["precision"] == (tp / predicted if predicted else None)
        assert got["recall"] == (tp / actual if actual else None)
    pushed = []
    with client.websocket_connect("/ws?last_seq=0") as ws:
        while len(pushed) < 180:
            m = ws.receive_json()
            if m["type"] == "prediction":
                pushed.append(m["payload"])
    assert [p["ts_ms"] for p in pushed] == [p["ts_ms"] for p in preds] and pushed[0]["session"] == result["id"]


def test_pause_step_stop(client: TestClient, bars: Candles) -> None:
    _annotate(client, bars)
    assert _train(client, epochs=1)["status"] == "done"
    client.app.state.training.bar_interval_s = 3600.0  # type: ignore[attr-defined]  # nothing plays by itself
    body = {"model": "ann-cnn", "symbol": "BTC/USDT", "timeframe": "1h", "start": int(bars.ts[150]), "end": int(bars.ts[160])}
    sid = client.post("/api/annotations/replay", json=body, headers=AUTH).json()["id"]
    assert client.post(f"/api/annotations/replay/{sid}/pause", headers=AUTH).status_code == 200
    _wait(client, f"/api/annotations/replay/{sid}", ("paused",))
    for n in (1, 2):
        assert client.post(f"/api/annotations/replay/{sid}/step", headers=AUTH).status_code == 200
        deadline = time.monotonic() + 30
        while client.get(f"/api/annotations/replay/{sid}").json()["played"] < n:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    got = client.get(f"/api/annotations/replay/{sid}").json()
    assert (got["status"], got["played"], got["total"]) == ("paused", 2, 10) and len(got["predictions"]) == 2
    assert got["metrics"]["n"] == 2
    assert client.post(f"/api/annotations/replay/{sid}/speed", json={"speed": 5}, headers=AUTH).json()["speed"] == 5
    assert client.post(f"/api/annotations/replay/{sid}/stop", headers=AUTH).json()["status"] == "stopped"
    again = client.post(f"/api/annotations/replay/{sid}/resume", headers=AUTH)
    assert again.status_code == 400 and "has stopped" in again.json()["error"]["message"]


def test_a_stopped_job_saves_nothing(settings: Settings, bars: Candles, client: TestClient) -> None:
    _annotate(client, bars)
    sent: list[tuple[str, Any]] = []
    job = TrainingJob(TrainRequest("stopped-cnn", AnnotationFilter(symbol="BTC/USDT"), fresh=True, timeframes=("1h",)),
                      settings, lambda kind, payload: sent.append((kind, payload)))  # fmt: skip
    job.stop()
    job.run()
    assert (job.status, job.step, job.checkpoint, job.samples) == ("stopped", 0, None, 6)
    assert [p["status"] for _, p in sent] == ["running", "stopped"]
    assert client.get("/api/models").json() == []


def test_errors_name_the_fix(client: TestClient, bars: Candles) -> None:
    job = _train(client)
    assert job["status"] == "failed" and job["error"].startswith("no usable annotation matches the filter")
    r = client.post("/api/training/jobs", json={"model": "nothing-here"}, headers=AUTH)
    failed = _wait(client, f"/api/training/jobs/{r.json()['id']}", ("failed",))
    assert "no checkpoints for model 'nothing-here'" in failed["error"] and "fresh" in failed["error"]


def test_testcases(client: TestClient, bars: Candles) -> None:
    made = _annotate(client, bars)
    r = client.get("/api/annotations/testcases", params={"symbol": "BTC/USDT", "candles": 20})
    assert r.status_code == 200, r.text
    cases = r.json()
    assert [c["test_case_id"] for c in cases] == [f"annotation_{a['id']}_{p}" for a in made for p in ("entry", "exit")]
    first = cases[0]
    assert first["action"] == "BUY" and first["as_of"] == made[0]["entry_ts"] + H and first["known_at"] == made[0]["exit_ts"] + H
    assert first["market_state"]["ohlcv_1h"]["ts"] == [int(t) for t in bars.ts[131:151]]  # closed by the entry's close
    assert first["training_config"] == {"timeframes": ["1h"], "candles_per_timeframe": 20}
    assert cases[3]["action"] == "HOLD" and cases[2]["action"] == "SELL"
    bad = client.get("/api/annotations/testcases", params={"timeframes": "1m,7q"})
    assert bad.status_code == 400 and bad.json()["error"]["message"].startswith("timeframes: ")
    assert client.get("/api/annotations/testcases", params={"symbol": "ETH/USDT"}).json() == []
