"""Annotations over HTTP: create, read, update with optimistic locking, history, delete, export; a note holding
``<script>`` comes back as the same data (JSON-escaped by the serialiser, never interpreted)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from fastapi.testclient import TestClient

from tests.api.conftest import AUTH

SCRIPT = '<script>alert("x")</script> & </b>'
NEW: dict[str, Any] = {"symbol": "BTC/USDT", "timeframe": "1h", "entry_ts": 1_600_000_000_000, "entry_price": 10_500.5,
       "exit_ts": 1_600_036_000_000, "exit_price": 10_800.0, "direction": "LONG", "notes": SCRIPT,
       "tags": ["breakout", "<i>"]}  # fmt: skip


def test_crud_round_trip(client: TestClient) -> None:
    r = client.post("/api/annotations", json=NEW, headers=AUTH)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["id"].startswith("ann-") and made["source"] == "manual" and made["version"] == 1
    assert {k: made[k] for k in NEW} == NEW
    # served as JSON (a browser never renders it as HTML): quotes escaped, the text itself unchanged
    assert r.headers["content-type"] == "application/json"
    assert '"notes":"<script>alert(\\"x\\")</script> & </b>"' in r.text
    got = client.get(f"/api/annotations/{made['id']}").json()
    assert got == made
    assert [a["id"] for a in client.get("/api/annotations", params={"tag": "breakout"}).json()] == [made["id"]]
    assert client.get("/api/annotations", params={"tag": "other"}).json() == []

    r = client.patch(f"/api/annotations/{made['id']}", json={"notes": "moved", "expected_version": 1}, headers=AUTH)
    assert r.status_code == 200 and r.json()["notes"] == "moved" and r.json()["version"] == 2
    stale = client.patch(f"/api/annotations/{made['id']}", json={"notes": "lost", "expected_version": 1}, headers=AUTH)
    assert stale.status_code == 400 and "version" in stale.json()["error"]["message"]

    r = client.delete(f"/api/annotations/{made['id']}", headers=AUTH)
    assert r.status_code == 200 and r.json()["id"] == made["id"]
    assert client.get(f"/api/annotations/{made['id']}").status_code == 404
    history = client.get(f"/api/annotations/{made['id']}/history").json()
    assert [(h["operation"], h["version"]) for h in history] == [("create", 1), ("update", 2), ("delete", 3)]
    assert history[0]["notes"] == SCRIPT


def test_bad_annotation_is_refused_naming_the_field(client: TestClient) -> None:
    r = client.post("/api/annotations", json={**NEW, "exit_ts": NEW["entry_ts"] - 1}, headers=AUTH)
    assert r.status_code == 400
    assert r.json()["error"]["message"].startswith("annotation exit_ts ")
    r = client.post("/api/annotations", json={**NEW, "direction": "UP"}, headers=AUTH)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "body.direction"
    r = client.post("/api/annotations", json={**NEW, "id": "mine"}, headers=AUTH)
    assert r.status_code == 422  # ids and sources are the server's
    assert client.patch("/api/annotations/ann-none", json={"notes": "x"}, headers=AUTH).status_code == 404


def test_export_json_and_csv_keep_the_text(client: TestClient) -> None:
    ids = [
        client.post("/api/annotations", json={**NEW, "entry_ts": NEW["entry_ts"] + i}, headers=AUTH).json()["id"]
        for i in range(2)
    ]
    r = client.get("/api/annotations/export", params={"format": "json"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    exported = json.loads(r.text)
    rows = exported if isinstance(exported, list) else exported["annotations"]
    assert sorted(a["id"] for a in rows) == sorted(ids) and all(a["notes"] == SCRIPT for a in rows)
    r = client.get("/api/annotations/export", params={"format": "csv"})
    assert r.headers["content-type"].startswith("text/csv")
    parsed = list(csv.DictReader(io.StringIO(r.text)))
    assert sorted(p["id"] for p in parsed) == sorted(ids) and {p["notes"] for p in parsed} == {SCRIPT}
    assert client.get("/api/annotations/export", params={"format": "xml"}).status_code == 422
