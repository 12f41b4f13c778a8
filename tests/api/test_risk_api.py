"""The risk state of a run's audit log over HTTP: the trips the real risk engine wrote, which are still in force,
and no file outside the data folder can be named."""

from __future__ import annotations

from fastapi.testclient import TestClient

from pivotal.config import Settings
from pivotal.core.clock import SimulatedClock
from pivotal.risk.audit import AuditLog
from pivotal.risk.config import RiskConfig
from pivotal.risk.engine import RiskEngine

T0 = 1_700_000_000_000


def test_risk_state_follows_trips_and_resets(client: TestClient, settings: Settings) -> None:
    path = settings.data_dir / "runs" / "audit.jsonl"
    clock = SimulatedClock(T0)
    audit = AuditLog(path)
    engine = RiskEngine(RiskConfig(stale_model_ms=60_000), clock=clock, audit=audit)
    engine.on_model_status("cnn:BTC/USDT", T0)
    clock.advance(60_001)
    engine.check_time()
    state = client.get("/api/risk", params={"audit": "runs/audit.jsonl"}).json()
    assert (state["trips"], state["resets"]) == (1, 0)
    [trip] = state["active_trips"]
    assert (trip["rule"], trip["event"]) == ("stale_model", "trip") and state["entries"] == audit.entries
    engine.reset("stale_model", by="test", reason="model retrained")
    state = client.get("/api/risk", params={"audit": "runs/audit.jsonl"}).json()
    assert (state["trips"], state["resets"], state["active_trips"]) == (1, 1, [])
    audit.close()


def test_risk_refuses_files_outside_the_data_folder(client: TestClient) -> None:
    for bad in ("/etc/passwd", "../../etc/passwd", "runs/../../x"):
        r = client.get("/api/risk", params={"audit": bad})
        assert r.status_code == 400 and "inside the data folder" in r.json()["error"]["message"], bad
    r = client.get("/api/risk", params={"audit": "runs/none.jsonl"})
    assert r.status_code == 404
