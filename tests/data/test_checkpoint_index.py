"""``CheckpointIndex``: the versioned metadata index of model checkpoints, its migration from the per-checkpoint JSON
layout of earlier releases, refusal of newer indexes, and ``CheckpointManager`` on top of it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pivotal.data.state.checkpoints import SCHEMA_VERSION, CheckpointIndex
from pivotal.data.state.migrations import SchemaError
from pivotal.training.checkpoints import CheckpointManager

pytestmark = pytest.mark.unit

SPAN = {"exchange": "binance", "symbol": "BTC/USDT", "timeframes": ["1h"], "start": 0, "end": 1}


def _legacy(root: Path, name: str, ckpt_id: str, metric: float, extra: dict | None = None) -> dict:
    """One checkpoint as releases before the index stored it: ``<name>/<id>.pt`` + ``<name>/<id>.json``."""
    meta = {
        "name": name, "id": ckpt_id, "model_type": "cnn", "metric_name": "val_loss", "metric": metric,
        "higher_is_better": False, "config": {"type": "CNNConfig"}, "data_span": SPAN, "commit": "abc",
        "created": "2026-01-01T00:00:00+00:00", "extra": extra or {},
    }  # fmt: skip
    (root / name).mkdir(parents=True, exist_ok=True)
    (root / name / f"{ckpt_id}.pt").write_bytes(b"weights " + ckpt_id.encode())
    (root / name / f"{ckpt_id}.json").write_text(json.dumps(meta))
    return meta


class FakeModel:
    """What ``CheckpointManager.save`` needs of a model: a name, a type and ``save(path)``."""

    model_type = "cnn"

    def __init__(self, name: str = "m") -> None:
        self.name = name

    def save(self, path: Path) -> None:
        path.write_bytes(b"weights")


def test_a_root_of_an_earlier_release_is_migrated_to_the_index(tmp_path: Path) -> None:
    a1 = _legacy(tmp_path, "alpha", "20260101T000000000001", 0.5, {"data_sha256": "f00d", "window": 100})
    a2 = _legacy(tmp_path, "alpha", "20260101T000000000002", 0.3)
    b1 = _legacy(tmp_path, "beta", "20260101T000000000003", 0.9)
    manager = CheckpointManager(tmp_path)
    assert manager.names() == ["alpha", "beta"]
    assert [(i.id, i.metric, i.path, i.data_hash) for i in manager.list()] == [
        (a2["id"], 0.3, f"alpha/{a2['id']}.pt", None),
        (a1["id"], 0.5, f"alpha/{a1['id']}.pt", "f00d"),
        (b1["id"], 0.9, f"beta/{b1['id']}.pt", None),
    ]
    doc = json.loads((tmp_path / "index.json").read_text())
    assert doc["schema_version"] == SCHEMA_VERSION == 1
    assert doc["checkpoints"][0] == {**a1, "path": f"alpha/{a1['id']}.pt", "data_hash": "f00d"}
    assert sorted(p.name for p in tmp_path.glob("*/*")) == sorted(f"{m['id']}.pt" for m in (a1, a2, b1))  # json gone
    assert manager.weights_path(manager.resolve("alpha")).read_bytes() == b"weights " + a2["id"].encode()
    assert [i.id for i in manager.delete(f"alpha/{a1['id']}")] == [a1["id"]]
    assert not (tmp_path / "alpha" / f"{a1['id']}.pt").exists() and [i.id for i in manager.list("alpha")] == [a2["id"]]


def test_leftover_per_checkpoint_files_beside_an_index_are_adopted_once(tmp_path: Path) -> None:
    saved = CheckpointManager(tmp_path).save(FakeModel(), "val_loss", 0.4, False, SPAN)  # index at the current version
    late = _legacy(tmp_path, "m", "20200101T000000000000", 0.2)  # e.g. an older pivotal writing into this root
    index = CheckpointIndex(tmp_path)
    entries = index.entries("m")
    assert [e["id"] for e in entries] == [late["id"], saved.id] and entries[0]["path"] == f"m/{late['id']}.pt"
    assert not list(tmp_path.glob("*/*.json")) and len(index.entries()) == 2  # adopted once, sidecar removed


def test_an_index_of_a_newer_pivotal_is_refused_and_left_alone(tmp_path: Path) -> None:
    text = json.dumps({"schema_version": SCHEMA_VERSION + 1, "checkpoints": []})
    (tmp_path / "index.json").write_text(text)
    with pytest.raises(SchemaError) as exc_info:
        CheckpointManager(tmp_path).list()
    assert str(exc_info.value) == (
        f"checkpoint index {tmp_path / 'index.json'} is at schema version 2, newer than this pivotal understands (1); "
        "upgrade pivotal, or use a separate data directory for this version"
    )
    with pytest.raises(SchemaError):
        CheckpointManager(tmp_path).save(FakeModel(), "val_loss", 0.4, False, SPAN)
    assert (tmp_path / "index.json").read_text() == text


def test_an_unreadable_index_says_so(tmp_path: Path) -> None:
    (tmp_path / "index.json").write_text("{not json")
    with pytest.raises(SchemaError, match=r"index\.json is unreadable .*; restore it from a backup$"):
        CheckpointIndex(tmp_path).entries()


def test_entries_need_the_required_keys_and_stay_sorted(tmp_path: Path) -> None:
    index = CheckpointIndex(tmp_path)
    assert index.entries() == [] and not tmp_path.joinpath("index.json").exists()  # reading creates nothing
    entry = {"name": "z", "id": "2", "path": "z/2.pt", "model_type": "dqn", "metric_name": "r", "metric": 1.0,
             "higher_is_better": True, "created": "t"}  # fmt: skip
    with index.locked() as locked:
        with pytest.raises(ValueError, match="checkpoint entry lacks path, created"):
            locked.add({k: v for k, v in entry.items() if k not in ("path", "created")})
        full = locked.add(entry)
        locked.add({**entry, "name": "a"})
        locked.add({**entry, "metric": 2.0})  # same (name, id): replaced
    assert full == {**entry, "config": {}, "data_span": {}, "commit": None, "extra": {}, "data_hash": None}
    assert [(e["name"], e["metric"]) for e in index.entries()] == [("a", 1.0), ("z", 2.0)]
    with index.locked() as locked:
        locked.remove([("a", "2")])
    assert index.names() == ["z"]


def test_manager_records_data_hash_and_sweeps_unlisted_weights(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path, keep=2)
    orphan = tmp_path / "m" / "20200101T000000000000.pt"  # weights whose index entry never got written (crash)
    orphan.parent.mkdir()
    orphan.write_bytes(b"half")
    for loss in (0.5, 0.2, 0.9):
        info = manager.save(FakeModel(), "val_loss", loss, False, SPAN, data_hash="beef")
    assert info.path == f"m/{info.id}.pt" and info.data_hash == "beef"
    assert [i.metric for i in manager.list("m")] == [0.2, 0.5]  # rotation: the best two
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == sorted(f"{i.id}.pt" for i in manager.list("m"))
    assert manager.resolve("m").data_hash == "beef"
