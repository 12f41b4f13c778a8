"""``CheckpointIndex``: the metadata of every kept model checkpoint, in one versioned JSON file beside the weights.

Layout under the checkpoint root (``<data_dir>/models``)::

    index.json        {"schema_version": 1, "checkpoints": [entry, ...]}   (sorted by name, id)
    .index.lock       advisory lock (flock) held by every writer
    <name>/<id>.pt    weights + config, written by the model (``Model.save``)

An entry holds ``REQUIRED`` keys (model name, checkpoint id, weights ``path`` relative to the root, model type, the
validation metric and its direction, creation time) and optional ones (``config``, ``data_span``, ``commit``,
``extra``, ``data_hash``). A checkpoint exists once its entry is in the index: weights are written first, the index
last, each by write-to-temporary + ``os.replace`` (atomic on POSIX), so readers never see half a checkpoint and need
no lock.

Why a file and not a table: checkpoints are files in the data directory, whichever market store (DuckDB or
PostgreSQL) is configured; the index travels, is backed up and is deleted with them.

Versions: 0 is the layout of earlier releases, one ``<name>/<id>.json`` per checkpoint (no index). Opening such a
root builds the index from those files (adding ``path``, and ``data_hash`` from ``extra`` where one was recorded),
then removes them. An index with a ``schema_version`` above ``SCHEMA_VERSION`` was written by a newer pivotal and is
refused (``SchemaError``), never rewritten.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pivotal.data.state.migrations import SchemaError

SCHEMA_VERSION = 1
INDEX_FILE = "index.json"
LOCK_FILE = ".index.lock"
REQUIRED = ("name", "id", "path", "model_type", "metric_name", "metric", "higher_is_better", "created")
OPTIONAL: dict[str, Any] = {"config": {}, "data_span": {}, "commit": None, "extra": {}, "data_hash": None}

Entry = dict[str, Any]


def _migrate_0_to_1(root: Path, _: list[Entry]) -> list[Entry]:
    """Per-checkpoint ``<name>/<id>.json`` files → index entries (weights path added, data hash lifted from extra)."""
    entries = []
    for meta in sorted(root.glob("*/*.json")):
        if meta.name.startswith("."):
            continue
        entry = {**OPTIONAL, **json.loads(meta.read_text())}
        entry["path"] = f"{meta.parent.name}/{meta.stem}.pt"
        extra = entry.get("extra") or {}
        entry["data_hash"] = entry["data_hash"] or extra.get("data_hash") or extra.get("data_sha256")
        entries.append(entry)
    return entries


# MIGRATIONS[v] turns version v into v + 1 (given the root and the entries of version v)
MIGRATIONS: tuple[Callable[[Path, list[Entry]], list[Entry]], ...] = (_migrate_0_to_1,)
assert len(MIGRATIONS) == SCHEMA_VERSION


def entry_problem(entry: Any) -> str | None:
    """Why an index entry cannot be used (one line), or None when it is well formed. A bad entry (edited by hand,
    written by a broken tool) is reported and skipped by readers; it never hides the other checkpoints."""
    if not isinstance(entry, dict):
        return f"entry is a {type(entry).__name__}, not an object"
    missing = [k for k in REQUIRED if k not in entry]
    if missing:
        return f"entry lacks {', '.join(missing)}"
    for key in ("name", "id", "path", "model_type", "metric_name", "created"):
        if not isinstance(entry[key], str) or not entry[key]:
            return f"{key} {entry[key]!r} is not a non-empty string"
    metric = entry["metric"]
    if isinstance(metric, bool) or not isinstance(metric, int | float):
        return f"metric {metric!r} is not a number"
    if not isinstance(entry["higher_is_better"], bool):
        return f"higher_is_better {entry['higher_is_better']!r} is not true/false"
    for key, default in OPTIONAL.items():
        if key in entry and entry[key] is not None and default is not None and not isinstance(entry[key], type(default)):
            return f"{key} is a {type(entry[key]).__name__}, not a {type(default).__name__}"
    return None


def sync_write_text(path: Path, text: str) -> None:
    """Write, flush and fsync ``path`` (the temporary file of an atomic replace: the rename must not reach the disk
    before the data does, or a power cut leaves an empty file under the final name)."""
    with open(path, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def sync_dir(folder: Path) -> None:
    """fsync a folder, so a rename inside it is durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _legacy_files(root: Path) -> list[Path]:
    return [p for p in root.glob("*/*.json") if not p.name.startswith(".")]


_PARSED: dict[str, tuple[bytes, Any]] = {}  # path -> (the file's bytes, its document)
_PARSED_LOCK = threading.Lock()


def _parse_index(path: Path) -> Any:
    """The index document, parsed once per content of the file: a serving process reads it on every hot swap and
    staleness report while an online trainer adds a version every few seconds, and after a long run the file holds
    megabytes of JSON (reading and comparing the bytes costs a few per cent of parsing them). Callers must not
    mutate the document."""
    data = path.read_bytes()
    with _PARSED_LOCK:
        hit = _PARSED.get(str(path))
    if hit is not None and hit[0] == data:
        return hit[1]
    doc = json.loads(data.decode())
    with _PARSED_LOCK:
        _PARSED[str(path)] = (data, doc)
    return doc


class CheckpointIndex:
    """The versioned metadata index of one checkpoint root; entries are plain JSON dicts (see module doc)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.path = self.root / INDEX_FILE

    # --- reading (no lock: the file is only ever replaced whole) -------------------------------------
    def entries(self, name: str | None = None) -> list[Entry]:
        """Well-formed entries (of model ``name``), sorted by name and id; an older layout is migrated first (under
        the lock). Malformed entries are left out (see ``problems``)."""
        return [e for e in self._all_entries() if entry_problem(e) is None and (name is None or e["name"] == name)]

    def problems(self) -> list[str]:
        """One line per malformed entry: where it is, what is wrong, the fix."""
        lines = []
        for position, entry in enumerate(self._all_entries()):
            why = entry_problem(entry)
            if why is not None:
                label = f"{entry.get('name')}/{entry.get('id')}" if isinstance(entry, dict) else f"#{position}"
                lines.append(
                    f"checkpoint {label} in {self.path} (entry {position}): {why}; fix: restore the index from a backup, "
                    f"or remove that entry from the file"
                )
        return lines

    def _all_entries(self) -> list[Any]:
        entries = self._read()
        legacy = self.root.is_dir() and bool(_legacy_files(self.root))
        if entries is None and not legacy and not self.path.exists():
            return []  # nothing stored yet: reading creates nothing
        if entries is None or legacy:
            with self.locked() as locked:
                entries = locked.entries_unlocked()
        return entries

    def names(self) -> list[str]:
        return sorted({e["name"] for e in self.entries()})

    def _read(self) -> list[Entry] | None:
        """Current-version entries, or None where the root has no index yet (or one of an older version)."""
        try:
            doc = _parse_index(self.path)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise SchemaError(f"checkpoint index {self.path} is unreadable ({exc}); restore it from a backup") from None
        version = doc.get("schema_version") if isinstance(doc, dict) else None
        if not isinstance(version, int) or not isinstance(doc.get("checkpoints"), list):
            raise SchemaError(f"checkpoint index {self.path} has no schema_version/checkpoints; restore it from a backup")
        if version > SCHEMA_VERSION:
            raise SchemaError(
                f"checkpoint index {self.path} is at schema version {version}, newer than this pivotal understands "
                f"({SCHEMA_VERSION}); upgrade pivotal, or use a separate data directory for this version"
            )
        return doc["checkpoints"] if version == SCHEMA_VERSION else None

    # --- writing (under the lock) ------------------------------------------------------------------
    @contextmanager
    def locked(self) -> Iterator[LockedIndex]:
        """Hold the root's writer lock (blocking); the index is migrated to ``SCHEMA_VERSION`` on entry."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / LOCK_FILE, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                locked = LockedIndex(self)
                locked.migrate()
                locked.sweep()
                yield locked
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


class LockedIndex:
    """The index while its writer lock is held: read, add, remove, each change written through atomically."""

    def __init__(self, index: CheckpointIndex) -> None:
        self.index = index

    def migrate(self) -> None:
        """Bring the root to ``SCHEMA_VERSION``: write the index, then remove what the older layout kept instead.

        Per-checkpoint files found beside a current index (a crash right after an earlier migration, or an older
        pivotal writing into this root) are adopted the same way, so no checkpoint is lost."""
        root = self.index.root
        entries = self.index._read()
        if entries is None:
            try:
                doc = json.loads(self.index.path.read_text())
                version, entries = int(doc["schema_version"]), list(doc["checkpoints"])
            except FileNotFoundError:
                version, entries = 0, []
            for step in MIGRATIONS[version:]:
                entries = step(root, entries)
        elif _legacy_files(root):
            known = {_key(e) for e in entries}
            entries = entries + [e for e in _migrate_0_to_1(root, []) if (e["name"], e["id"]) not in known]
        else:
            return
        self._write(entries)
        for meta in _legacy_files(root):
            meta.unlink(missing_ok=True)

    def sweep(self) -> None:
        """Remove temporary files a crashed writer left (``.index.json.tmp``, ``<name>/.<id>.pt.tmp``): under the
        lock no writer is between its write and its rename."""
        root = self.index.root
        for orphan in [*root.glob(".*.tmp"), *root.glob("*/.*.tmp")]:
            orphan.unlink(missing_ok=True)

    def entries_unlocked(self, name: str | None = None) -> list[Entry]:
        """Well-formed entries (of model ``name``) as the index holds them now."""
        return [e for e in self._raw() if entry_problem(e) is None and (name is None or e["name"] == name)]

    def _raw(self) -> list[Any]:
        return self.index._read() or []

    def add(self, entry: Entry) -> Entry:
        """Add (or replace, by name and id) one entry; returns it with the optional keys filled in."""
        missing = [k for k in REQUIRED if k not in entry]
        if missing:
            raise ValueError(f"checkpoint entry lacks {', '.join(missing)}")
        full = {**OPTIONAL, **entry}
        key = (full["name"], full["id"])
        self._write([e for e in self._raw() if _key(e) != key] + [full])
        return full

    def remove(self, keys: Iterable[tuple[str, str]]) -> None:
        """Drop the entries with these (name, id) keys."""
        drop = set(keys)
        self._write([e for e in self._raw() if _key(e) not in drop])

    def _write(self, entries: list[Any]) -> None:
        """Malformed entries are kept as they are: a repair is the user's call (``problems`` says how)."""
        doc = {"schema_version": SCHEMA_VERSION, "checkpoints": sorted(entries, key=lambda e: tuple(map(str, _key(e))))}
        tmp = self.index.path.with_name(f".{INDEX_FILE}.tmp")
        sync_write_text(tmp, json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
        os.replace(tmp, self.index.path)
        sync_dir(self.index.root)


def _key(entry: Any) -> tuple[Any, Any]:
    return (entry.get("name"), entry.get("id")) if isinstance(entry, dict) else ("", "")
