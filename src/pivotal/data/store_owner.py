"""Who holds the embedded DuckDB file: a small owner file beside it, so "store busy" can name the command and pid.

DuckDB lets one process open a file for writing and, while it does, no other process may open it at all (not even
read-only). Its own error is a multi-line ``IOException`` naming only the Python binary; the owner file
``<file>.owner`` (JSON: pid, command, since) lets the second process say which pivotal command holds the store.
The file is written when a store opens and removed when the last store of this process on that file closes; a file
left behind by a process that died (kill -9) names a pid that no longer runs and is ignored.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from pathlib import Path

from pivotal.core.errors import StoreBusy

_OPEN: dict[str, int] = {}  # resolved db path -> stores of this process open on it
_GUARD = threading.Lock()
_DUCKDB_PID = re.compile(r"\(PID (\d+)\)")


def owner_path(db_path: str | Path) -> Path:
    return Path(f"{db_path}.owner")


def current_command() -> str:
    """``pivotal data import`` style: the program name and its leading sub-commands (no options, no paths)."""
    words = [Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"]
    for arg in sys.argv[1:3]:
        if arg.startswith("-") or "/" in arg or "." in arg:
            break
        words.append(arg)
    return " ".join(words)


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # runs, under another user
    return True


def claim(db_path: str | Path) -> None:
    """Record this process as the owner (first store of the process on this file)."""
    key = str(Path(db_path).resolve())
    with _GUARD:
        _OPEN[key] = _OPEN.get(key, 0) + 1
        if _OPEN[key] > 1:
            return
        path = owner_path(db_path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(json.dumps({"pid": os.getpid(), "command": current_command(), "since": int(time.time())}))
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)  # a read-only folder: the busy message falls back to DuckDB's pid


def release(db_path: str | Path) -> None:
    """Drop this process's claim; the last store of the process removes the owner file (if it is still ours)."""
    key = str(Path(db_path).resolve())
    with _GUARD:
        _OPEN[key] = _OPEN.get(key, 1) - 1
        if _OPEN[key] > 0:
            return
        _OPEN.pop(key, None)
        owner = read_owner(db_path, include_self=True)
        if owner is not None and owner[0] == os.getpid():
            owner_path(db_path).unlink(missing_ok=True)


def read_owner(db_path: str | Path, include_self: bool = False) -> tuple[int, str] | None:
    """(pid, command) of a live owner, or None (no file, unreadable, or its process is gone)."""
    try:
        doc = json.loads(owner_path(db_path).read_text())
        pid, command = int(doc["pid"]), str(doc["command"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not pid_alive(pid) or (pid == os.getpid() and not include_self):
        return None
    return pid, command


def busy_error(db_path: str | Path, duckdb_message: str) -> StoreBusy:
    """The one-line error for a DuckDB file another process holds."""
    owner = read_owner(db_path)
    if owner is not None:
        who = f"{owner[1]} (pid {owner[0]})"
    else:
        match = _DUCKDB_PID.search(duckdb_message)
        who = f"another process (pid {match.group(1)})" if match else "another process"
    return StoreBusy(
        f"the store is busy: {who} holds {db_path}; wait for it to finish, or use PostgreSQL (--store postgres) "
        "for concurrent jobs"
    )


def is_lock_conflict(exc: BaseException) -> bool:
    return "Could not set lock on file" in str(exc) or "Conflicting lock" in str(exc)
