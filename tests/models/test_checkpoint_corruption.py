"""Corrupt checkpoints: an empty or garbage weights file is one ``CorruptCheckpoint`` line (not "Aborted." nor
advice to pass ``weights_only=False``); a malformed index entry is reported on its own line while every good
checkpoint is still listed; writes fsync before the rename; orphaned temporary files are swept."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pivotal.cli.common import console, err_console
from pivotal.cli.main import app
from pivotal.core.errors import PivotalError
from pivotal.training.checkpoints import CheckpointManager, CorruptCheckpoint

pytestmark = pytest.mark.unit

SPAN = {"exchange": "binance", "symbol": "BTC/USDT", "timeframes": ["1h"], "start": 0, "end": 3_600_000}
runner = CliRunner()


class BytesModel:
    """A model whose saved weights are exactly ``payload``."""

    model_type = "cnn"

    def __init__(self, name: str, payload: bytes) -> None:
        self.name, self.payload = name, payload

    def save(self, path: Path) -> None:
        path.write_bytes(self.payload)


def _root() -> Path:
    return Path(os.environ["PIVOTAL_DATA_DIR"]) / "models"


@pytest.mark.parametrize(
    ("payload", "why"),
    [(b"", "is empty (0 bytes)"), (bytes(range(256)) * 8, "is corrupt (UnpicklingError)"), (b"PK\x03\x04junk", "is corrupt")],
)
def test_a_corrupt_weights_file_is_one_line(payload: bytes, why: str) -> None:
    manager = CheckpointManager(_root())
    info = manager.save(BytesModel("m", payload), "val_loss", 0.5, False, SPAN)
    with pytest.raises(CorruptCheckpoint) as caught:
        manager.load_best("m")
    message = str(caught.value)
    assert isinstance(caught.value, PivotalError) and "\n" not in message
    assert message.startswith(f"checkpoint m/{info.id}: weights file {manager.weights_path(info)} {why}")
    assert message.endswith(
        f"fix: delete it with `pivotal models delete m/{info.id}` (and train again), or restore the file from a backup"
    )
    assert "weights_only" not in message


def test_a_missing_weights_file_is_one_line() -> None:
    manager = CheckpointManager(_root())
    info = manager.save(BytesModel("m", b"x"), "val_loss", 0.5, False, SPAN)
    manager.weights_path(info).unlink()
    with pytest.raises(CorruptCheckpoint, match=r"weights file .* is missing; fix: delete it"):
        manager.load(info)


def test_one_bad_index_entry_is_reported_and_the_good_checkpoints_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "_width", 200)
    monkeypatch.setattr(err_console, "_width", 400)
    manager = CheckpointManager(_root())
    good = [manager.save(BytesModel(name, b"w"), "val_loss", 0.25, False, SPAN) for name in ("alpha", "beta")]
    index = _root() / "index.json"
    doc = json.loads(index.read_text())
    doc["checkpoints"].append({**doc["checkpoints"][0], "id": "broken", "metric": "not a number"})
    doc["checkpoints"].append({"name": "gamma"})
    doc["checkpoints"].append(["not", "an", "object"])
    index.write_text(json.dumps(doc))
    assert [(i.name, i.id) for i in manager.list()] == [(g.name, g.id) for g in good]
    assert manager.problems() == [
        f"checkpoint alpha/broken in {index} (entry 2): metric 'not a number' is not a number; fix: restore the index "
        "from a backup, or remove that entry from the file",
        f"checkpoint gamma/None in {index} (entry 3): entry lacks id, path, model_type, metric_name, metric, "
        "higher_is_better, created; fix: restore the index from a backup, or remove that entry from the file",
        f"checkpoint #4 in {index} (entry 4): entry is a list, not an object; fix: restore the index from a backup, or "
        "remove that entry from the file",
    ]
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 0 and "Traceback" not in result.output
    assert all(g.id in result.output for g in good)
    assert sum(line.startswith("skipped: checkpoint ") for line in result.output.splitlines()) == 3
    manager.save(BytesModel("beta", b"w2"), "val_loss", 0.1, False, SPAN)  # writing keeps the bad entries as they are
    assert len(json.loads(index.read_text())["checkpoints"]) == 6


def test_weights_and_index_are_fsynced_before_their_rename(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: str | Path, dst: str | Path) -> None:
        events.append(("replace", str(src)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    info = CheckpointManager(_root()).save(BytesModel("m", b"w"), "val_loss", 0.5, False, SPAN)
    weights_tmp = str(_root() / "m" / f".{info.id}.pt.tmp")
    index_tmp = str(_root() / ".index.json.tmp")
    for tmp in (weights_tmp, index_tmp):
        assert events.index(("fsync", tmp)) < events.index(("replace", tmp))
    assert ("fsync", str(_root() / "m")) in events and ("fsync", str(_root())) in events  # the renames, too


def test_orphaned_temporary_files_are_swept() -> None:
    manager = CheckpointManager(_root())
    manager.save(BytesModel("a", b"w"), "val_loss", 0.5, False, SPAN)
    orphans = [_root() / "b" / ".20260101T000000.pt.tmp", _root() / ".index.json.tmp", _root() / "a" / ".x.pt.tmp"]
    for orphan in orphans:
        orphan.parent.mkdir(parents=True, exist_ok=True)
        orphan.write_bytes(b"half")
    manager.save(BytesModel("a", b"w"), "val_loss", 0.4, False, SPAN)
    assert [o for o in orphans if o.exists()] == []
