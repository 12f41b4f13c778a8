"""Checkpoints: keep the best N per model name by a validation metric, with metadata, written atomically.

Layout under ``root`` (default ``<data_dir>/models``)::

    <name>/<id>.pt     weights + config (``Model.save``)
    index.json         metadata of every checkpoint: model, config, data span, metric, git commit, time, weights
                       path, data hash — versioned, behind ``pivotal.data.state.checkpoints.CheckpointIndex``

Weights are written to a temporary name in the same folder and renamed into place (``os.replace`` is atomic on
POSIX), then the index the same way: a checkpoint exists once the index lists it, so a crash mid-save leaves no half
checkpoint visible (only a ``.tmp`` file, or weights the index does not list, that the next save of that model
sweeps away). Saves and deletes hold the index's writer lock. Roots of earlier releases (one ``<id>.json`` per
checkpoint) are migrated to the index when first opened.
"""

from __future__ import annotations

import builtins
import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pivotal.core.errors import PivotalError
from pivotal.data.state.checkpoints import CheckpointIndex, LockedIndex, sync_dir
from pivotal.models.protocol import Model, config_to_dict

DEFAULT_KEEP = 5


@dataclass(frozen=True)
class CheckpointInfo:
    """Metadata of one stored checkpoint. ``data_span``: exchange, symbol, timeframes, start/end (epoch ms)."""

    name: str
    id: str
    model_type: str
    metric_name: str
    metric: float
    higher_is_better: bool
    config: dict[str, Any]
    data_span: dict[str, Any]
    commit: str | None
    created: str
    extra: dict[str, Any] = field(default_factory=dict)
    path: str = ""  # weights, relative to the checkpoint root
    data_hash: str | None = None  # SHA-256 of the training data, where the caller recorded one

    def rank_key(self) -> float:
        """Smaller is better for sorting."""
        return -self.metric if self.higher_is_better else self.metric


def git_commit() -> str | None:
    """The commit of the source tree the code runs from, or None outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


class CorruptCheckpoint(PivotalError):
    """A listed checkpoint whose weights file is missing, empty or unreadable."""


def _atomic_write_bytes(path: Path, write: Any) -> None:
    """``write(tmp)``, fsync it, rename it over ``path``, fsync the folder: after a crash or power cut the final
    name holds either the old file or the whole new one, never an empty or partial one."""
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    sync_dir(path.parent)


def _check_name(name: str) -> None:
    if not name or "/" in name or name.startswith(".") or name != name.strip():
        raise ValueError(f"invalid model name {name!r}: use letters, digits, '-', '_' (no '/' or leading '.')")


class CheckpointManager:
    def __init__(self, root: Path, keep: int = DEFAULT_KEEP) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1 (got {keep})")
        self.root = Path(root)
        self.keep = keep
        self.index = CheckpointIndex(self.root)

    # --- writing ------------------------------------------------------------------------------------
    def save(
        self,
        model: Model,
        metric_name: str,
        metric: float,
        higher_is_better: bool,
        data_span: dict[str, Any],
        extra: dict[str, Any] | None = None,
        data_hash: str | None = None,
    ) -> CheckpointInfo:
        """Store ``model`` and drop the worst checkpoints beyond ``keep`` (possibly the new one itself)."""
        _check_name(model.name)
        folder = self.root / model.name
        folder.mkdir(parents=True, exist_ok=True)
        with self.index.locked() as index:
            listed = {e["path"] for e in index.entries_unlocked(model.name)}
            for stale in [*folder.glob(".*.tmp"), *(p for p in folder.glob("*.pt") if f"{model.name}/{p.name}" not in listed)]:
                stale.unlink(missing_ok=True)
            info = self._write(model, metric_name, metric, higher_is_better, data_span, extra, data_hash)
            index.add(asdict(info))
            self._rotate(index, model.name)
        return info

    def _write(
        self,
        model: Model,
        metric_name: str,
        metric: float,
        higher_is_better: bool,
        data_span: dict[str, Any],
        extra: dict[str, Any] | None,
        data_hash: str | None,
    ) -> CheckpointInfo:
        folder = self.root / model.name
        now = datetime.now(UTC)
        ckpt_id = f"{now:%Y%m%dT%H%M%S%f}"
        info = CheckpointInfo(
            name=model.name,
            id=ckpt_id,
            model_type=model.model_type,
            metric_name=metric_name,
            metric=float(metric),
            higher_is_better=higher_is_better,
            config=json.loads(json.dumps(config_to_dict(model.config))) if hasattr(model, "config") else {},
            data_span=dict(data_span),
            commit=git_commit(),
            created=now.isoformat(),
            extra=dict(extra or {}),
            path=f"{model.name}/{ckpt_id}.pt",
            data_hash=data_hash,
        )
        _atomic_write_bytes(folder / f"{ckpt_id}.pt", model.save)
        return info

    def _rotate(self, index: LockedIndex, name: str) -> None:
        self._remove(index, _ranked(_infos(index.entries_unlocked(name)))[self.keep :])

    def _remove(self, index: LockedIndex, infos: builtins.list[CheckpointInfo]) -> None:
        index.remove((info.name, info.id) for info in infos)  # the index first: never a listed checkpoint without weights
        for info in infos:
            self.weights_path(info).unlink(missing_ok=True)

    # --- reading ------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        return self.index.names()

    def list(self, name: str | None = None) -> list[CheckpointInfo]:
        """Checkpoints of ``name`` best first (all models, grouped by name, when ``name`` is None)."""
        if name is None:
            return [info for n in self.names() for info in self.list(n)]
        return _ranked(_infos(self.index.entries(name)))

    def weights_path(self, info: CheckpointInfo) -> Path:
        return self.root / (info.path or f"{info.name}/{info.id}.pt")

    def best(self, name: str) -> CheckpointInfo | None:
        infos = self.list(name)
        return infos[0] if infos else None

    def load_best(self, name: str) -> Any:
        """The best checkpoint of ``name`` as a ready model (what a runtime loads at start).

        Training never warm-starts from it: the best checkpoint has seen recent data that earlier walk-forward
        test windows cover, so reusing it there would leak.
        """
        return self.load(self.resolve(name))

    def load(self, info: CheckpointInfo) -> Any:
        """The model of one checkpoint; a missing, empty or corrupt weights file is one ``CorruptCheckpoint`` line
        (torch's own errors say "Aborted." for an empty file, or advise ``weights_only=False``, which would run
        whatever code the file holds)."""
        import pickle
        import zipfile

        from pivotal.models.registry import load_model

        path = self.weights_path(info)
        ref = f"{info.name}/{info.id}"
        fix = f"fix: delete it with `pivotal models delete {ref}` (and train again), or restore the file from a backup"
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise CorruptCheckpoint(f"checkpoint {ref}: weights file {path} is missing; {fix}") from None
        if size == 0:
            raise CorruptCheckpoint(f"checkpoint {ref}: weights file {path} is empty (0 bytes); {fix}")
        try:
            return load_model(path)
        except ValueError as exc:  # load_model's own "not a pivotal model file" line
            raise CorruptCheckpoint(f"checkpoint {ref}: {(str(exc).splitlines() or [''])[0]}; {fix}") from None
        except (EOFError, pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, KeyError, OSError) as exc:
            why = type(exc).__name__
            raise CorruptCheckpoint(f"checkpoint {ref}: weights file {path} is corrupt ({why}); {fix}") from None

    def problems(self) -> builtins.list[str]:
        """One line per malformed index entry (skipped by ``list``)."""
        return self.index.problems()

    def resolve(self, ref: str) -> CheckpointInfo:
        """``name`` → its best checkpoint; ``name/id`` → that one. The error lists what exists."""
        name, _, ckpt_id = ref.partition("/")
        infos = self.list(name)
        if not infos:
            raise KeyError(f"no checkpoints for model {name!r} under {self.root}; have: {', '.join(self.names()) or 'none'}")
        if not ckpt_id:
            return infos[0]
        for info in infos:
            if info.id == ckpt_id:
                return info
        raise KeyError(f"model {name!r} has no checkpoint {ckpt_id!r}; have: {', '.join(i.id for i in infos)}")

    def delete(self, ref: str) -> builtins.list[CheckpointInfo]:
        """Delete one checkpoint (``name/id``) or every checkpoint of a model (``name``); returns what was deleted."""
        name, _, ckpt_id = ref.partition("/")
        targets = [self.resolve(ref)] if ckpt_id else self.list(name)
        if not targets:
            raise KeyError(f"no checkpoints for model {name!r} under {self.root}")
        with self.index.locked() as index:
            self._remove(index, targets)
        folder = self.root / name
        if not ckpt_id and folder.exists():
            shutil.rmtree(folder)
        return targets


def _infos(entries: builtins.list[dict[str, Any]]) -> builtins.list[CheckpointInfo]:
    known = set(CheckpointInfo.__dataclass_fields__)
    return [CheckpointInfo(**{k: v for k, v in e.items() if k in known}) for e in entries]


def _ranked(infos: builtins.list[CheckpointInfo]) -> builtins.list[CheckpointInfo]:
    """Best first; ties by id (older first)."""
    return sorted(infos, key=lambda i: (i.rank_key(), i.id))
