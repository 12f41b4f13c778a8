"""The risk audit log: every breaker trip and every reset, append-only, as JSON lines and in memory.

One writer per file (an exclusive ``flock``; a second writer is refused with one line), each entry flushed and
fsynced before the call returns, so a trip is on disk before the engine acts on it. Opening an existing file loads
its entries: a restarted engine knows which trips are still active (``active_trips``).
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from pathlib import Path
from typing import IO, Any

from pivotal.core.errors import PivotalError, UserInputError


class AuditLogBusy(PivotalError):
    """Another writer holds the audit log file."""


class AuditLog:
    """Entries are dicts with at least ``seq``, ``time`` (epoch ms), ``event`` ("trip" | "reset") and ``rule``."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        self.entries: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115  (held open: the one writer)
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.close()
                raise AuditLogBusy(f"risk audit log {self.path} is open in another writer; stop that node first") from None
            data = self.path.read_bytes()
            if data and not data.endswith(b"\n"):  # a crash tore the last entry: it never took effect
                os.truncate(self.path, data.rfind(b"\n") + 1)
            self.entries = read_audit(self.path)
            self._file = f

    def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Write one entry (``seq`` added) and return it; on disk (fsynced) before this returns."""
        with self._lock:
            record = {"seq": len(self.entries) + 1, **entry}
            if self._file is not None:
                self._file.write(json.dumps(record, sort_keys=True, allow_nan=True) + "\n")
                self._file.flush()
                os.fsync(self._file.fileno())
            self.entries.append(record)
            return record

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()  # closing releases the flock
                self._file = None

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_audit(path: str | Path) -> list[dict[str, Any]]:
    """The entries of an audit log file; a torn last line (crash mid-write) is dropped, any other bad line refused."""
    p = Path(path)
    lines = p.read_text(encoding="utf-8").splitlines()
    out: list[dict[str, Any]] = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise UserInputError(f"risk audit log {p}: line {i + 1} is not JSON; restore the file from a backup") from None
    return out


def active_trips(entries: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(rule, symbol) → the trip entry still in force: trips not followed by a reset of that rule and symbol
    (a reset with symbol None clears every symbol of the rule)."""
    active: dict[tuple[str, str], dict[str, Any]] = {}
    for e in entries:
        if e.get("event") == "trip":
            active.setdefault((e["rule"], e.get("symbol", "")), e)
        elif e.get("event") == "reset":
            for key in [k for k in active if k[0] == e["rule"] and (e.get("symbol") is None or k[1] == e["symbol"])]:
                del active[key]
    return active
