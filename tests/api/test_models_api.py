"""Models over HTTP: list, show with the serving/staleness info, promote and rollback (token; logged; pushed)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from pivotal.config import Settings
from pivotal.services.online import models_root, serving_info
from tests.api.conftest import AUTH
from tests.training.online_fixtures import base_checkpoint


def test_list_show_promote_rollback(client: TestClient, settings: Settings) -> None:
    root = models_root(settings)
    first, second = base_checkpoint(root, "m"), base_checkpoint(root, "m")
    listed = client.get("/api/models", params={"name": "m"}).json()
    assert sorted(m["id"] for m in listed) == sorted([first.id, second.id]) and {m["name"] for m in listed} == {"m"}
    shown = client.get("/api/models/m", params={"version": first.id}).json()
    assert shown["id"] == first.id and shown["online"] is None  # never promoted: no serving info

    with client.websocket_connect("/ws") as ws:
        r = client.post("/api/models/m/promote", json={"version": second.id}, headers=AUTH)
        assert r.status_code == 200, r.text
        assert (r.json()["action"], r.json()["version"], r.json()["by"]) == ("promote", second.id, "manual")
        pushed = ws.receive_json()
    assert (pushed["type"], pushed["payload"]["event"], pushed["payload"]["version"]) == ("training", "promote", second.id)
    assert serving_info(root, "m").id == second.id
    online = client.get("/api/models/m", params={"version": second.id}).json()["online"]
    assert online["serving"] == second.id and online["promotions"] == 1

    r = client.post("/api/models/m/promote", json={"version": first.id}, headers=AUTH)
    assert r.json()["previous"] == second.id
    r = client.post("/api/models/m/rollback", json={}, headers=AUTH)
    assert (r.json()["action"], r.json()["version"]) == ("rollback", second.id)
    assert serving_info(root, "m").id == second.id


def test_model_errors_are_one_line(client: TestClient, settings: Settings) -> None:
    base_checkpoint(models_root(settings), "m")
    r = client.post("/api/models/m/promote", json={"version": "nope"}, headers=AUTH)
    assert r.status_code == 404 and "has no checkpoint 'nope'" in r.json()["error"]["message"]
    r = client.post("/api/models/m/rollback", json={}, headers=AUTH)
    assert r.status_code == 400 and "nothing to roll back to" in r.json()["error"]["message"]
    assert client.get("/api/models/absent").status_code == 404
