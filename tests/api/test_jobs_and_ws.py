"""Backtest jobs end to end (start, poll, result equal to the service run directly) and the WebSocket hub: sequence
numbers, replay of missed messages on reconnect, reload when they fell out of the buffer."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from pivotal.data.candles import Candles
from pivotal.services.backtest import run_backtest
from tests.api.conftest import AUTH

JOB = {"exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1h", "strategy": "sma_cross", "params": {"fast": 5, "slow": 20}}


def _wait(client: TestClient, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish")


def test_backtest_job_end_to_end(client: TestClient, btc_1h: Candles) -> None:
    with client.websocket_connect("/ws") as ws:
        r = client.post("/api/jobs/backtest", json=JOB, headers=AUTH)
        assert r.status_code == 202 and r.json()["status"] == "queued"
        job_id = r.json()["id"]
        # the browser may go away here: the job runs in the server; a new client polls it by id
        assert _wait(client, job_id)["status"] == "done"
        result = client.get(f"/api/jobs/{job_id}/result").json()["result"]
        direct = run_backtest(btc_1h, "sma_cross", {"fast": 5, "slow": 20}, source="binance BTC/USDT 1h").report()
        assert result == direct
        statuses: list[str] = []
        while not statuses or statuses[-1] != "done":
            m = ws.receive_json()
            assert m["type"] == "job" and m["payload"]["id"] == job_id
            statuses.append(m["payload"]["status"])
        assert statuses == ["queued", "running", "done"] and m["payload"]["result"] == direct
    assert [j["id"] for j in client.get("/api/jobs").json()] == [job_id]


def test_a_failing_job_says_why(client: TestClient, btc_1h: Candles) -> None:
    r = client.post("/api/jobs/backtest", json={**JOB, "strategy": "nope"}, headers=AUTH)
    job = _wait(client, r.json()["id"])
    assert job["status"] == "failed" and job["error"].startswith("unknown strategy 'nope'")
    assert client.get("/api/jobs/bt-missing").status_code == 404


def _publish(client: TestClient, n: int, kind: str = "candle") -> list[int]:
    return [client.post("/api/events", json={"type": kind, "payload": {"i": i}}, headers=AUTH).json()["seq"] for i in range(n)]


def test_websocket_delivers_in_sequence(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        seqs = _publish(client, 5)
        got = [ws.receive_json() for _ in range(5)]
    assert seqs == [1, 2, 3, 4, 5] and [m["seq"] for m in got] == seqs
    assert [(m["type"], m["payload"]) for m in got] == [("candle", {"i": i}) for i in range(5)]


def test_reconnect_gets_what_it_missed(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        _publish(client, 3)
        last = [ws.receive_json()["seq"] for _ in range(3)][-1]
    _publish(client, 4, "pivot")  # sent while the client was away
    with client.websocket_connect(f"/ws?last_seq={last}") as ws:
        missed = [ws.receive_json() for _ in range(4)]
        _publish(client, 1, "fill")
        live = ws.receive_json()
    assert [m["seq"] for m in missed] == [4, 5, 6, 7] and {m["type"] for m in missed} == {"pivot"}
    assert (live["seq"], live["type"]) == (8, "fill")  # replay then live, no gap, no duplicate


def test_reconnect_after_the_buffer_moved_on_is_told_to_reload(client: TestClient) -> None:
    _publish(client, 60)  # the fixture's hub keeps 50: seqs 11..60
    with client.websocket_connect("/ws?last_seq=10") as ws:  # 11.. all buffered: replay
        assert ws.receive_json()["seq"] == 11
    with client.websocket_connect("/ws?last_seq=9") as ws:  # 10 is gone
        assert ws.receive_json() == {"type": "reload"}
    with client.websocket_connect("/ws?last_seq=999") as ws:  # a number from before a server restart
        assert ws.receive_json() == {"type": "reload"}
    assert client.app.state.hub.clients == 0  # type: ignore[attr-defined]
