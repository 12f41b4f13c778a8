"""Optimisation jobs over the API (``api.optimize_routes``) on 3000 real Binance BTC/USDT 1h bars: a job started by a
POST runs in the server, its status and progress are read back from the store, its results are the leaderboard the
service computes for the same spec, and resuming a finished job (reattach) changes nothing."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pivotal.config import Settings
from pivotal.data.candles import Candles
from pivotal.services import optimize as service
from tests.api.conftest import AUTH

SPEC: dict[str, Any] = {"strategy": "sma_cross", "symbols": ["BTC/USDT"], "timeframes": ["1h"], "method": "random",
                        "samples": 4, "walk_forward": "none", "min_trades": 1, "seed": 7}  # fmt: skip


def wait_done(client: TestClient, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/optimize/{job_id}").json()
        if job["status"] in ("COMPLETED", "FAILED") and not job["running_here"]:
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def test_routes_need_the_token(client: TestClient) -> None:
    assert client.post("/api/optimize", json=SPEC).status_code == 401
    assert client.post("/api/optimize/x/resume").status_code == 401
    r = client.get("/api/optimize/nope")
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "no optimization job 'nope'; start one with `pivotal optimize`"
    bad = client.post("/api/optimize", json={**SPEC, "method": "magic"}, headers=AUTH)
    assert bad.status_code == 400 and "magic" in bad.json()["error"]["message"]


def test_a_job_runs_in_the_server_and_its_results_are_the_services(
    client: TestClient, btc_1h: Candles, settings: Settings
) -> None:
    with client.websocket_connect("/ws") as ws:
        r = client.post("/api/optimize", json=SPEC, headers=AUTH)
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        job = wait_done(client, job_id)
        assert (job["status"], job["progress"], job["error"]) == ("COMPLETED", 1.0, None), job
        kinds = []
        while True:
            m = ws.receive_json()
            if m["type"] == "job" and m["payload"]["id"] == job_id:
                kinds.append(m["payload"]["status"])
                if m["payload"]["status"] == "COMPLETED":
                    break
    assert kinds[0] == "PENDING" and "running" in kinds  # progress messages while it ran
    results = client.get(f"/api/optimize/{job_id}/results").json()
    # the same spec run by the service directly (another job id) finds the same configuration
    spec = service.build_spec(**{**SPEC, "exchange": "binance"})
    other = service.start_optimization(settings, spec, "direct")
    outcome = service.run_optimization(settings, other.id)
    ((market, config),) = outcome.leaderboard
    assert config is not None
    [row] = results["leaderboard"]
    assert row["market"] == market.label
    got = row["configuration"]
    assert got["parameters"] == config.parameters
    assert got["is_metrics"] == pytest.approx(asdict(config)["is_metrics"], nan_ok=True)
    listed = client.get("/api/optimize").json()
    assert [j["id"] for j in listed] == [job_id, "direct"]
    again = client.post(f"/api/optimize/{job_id}/resume", headers=AUTH)
    assert again.status_code == 202
    assert wait_done(client, job_id)["status"] == "COMPLETED"
    assert client.get(f"/api/optimize/{job_id}/results").json()["leaderboard"] == results["leaderboard"]
