"""The write-ahead journal: every order, fill (with the position it leaves), decision and breaker trip is appended
and fsynced *before* it acts, so a node killed at any instant restarts without a duplicate order or a lost fill.

Format: JSON lines, one record per line, each prefixed by the CRC-32 of its JSON text (``<8 hex> <json>\\n``).
JSON lines rather than SQLite in WAL mode because the journal is append-only and written by one process: one
``write`` + ``fsync`` per record is the whole protocol, a torn record is simply an incomplete last line, the file
is readable with ``grep``/``jq`` when something went wrong, and no second embedded database (and its locks) sits
beside the market store. On open, an incomplete or corrupt *last* line (a crash mid-write) is detected, ignored and
cut off; a corrupt line before the last is real damage and refuses to open (``JournalCorrupt``).

Records are idempotent by ``key``: appending a key the journal already holds writes nothing. A restarted node
therefore re-derives its run from the feed's start (strategies and the simulated venue are deterministic, client
order ids come from the run id and a sequence) and only records what it had not recorded yet. Progress marks
(``progress``: the last processed event time) are written without fsync and only every so many events: losing one
costs a slightly longer catch-up, never a wrong state.

Kinds: ``run`` (header: run id, strategy, parameters, markets), ``decision``, ``order`` (accepted or denied),
``order_done`` (left the venue's queue: filled or dropped), ``fill`` (with ``position`` after it), ``breaker``,
``progress``, ``end``.
"""

from __future__ import annotations

import fcntl
import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pivotal.core.errors import PivotalError


class JournalBusy(PivotalError):
    """Another process holds the journal open for writing."""


class JournalCorrupt(PivotalError):
    """A journal line before the last one is damaged; the file was changed by something other than a node."""


@dataclass(frozen=True)
class Recovery:
    """What a journal says about its run: the header, orders still open, positions, fills and the last event time."""

    run: dict[str, Any] | None
    open_orders: dict[str, dict[str, Any]]  # client order id -> its order record
    positions: dict[str, dict[str, Any]]  # symbol -> the position its last fill left
    fills: list[dict[str, Any]] = field(default_factory=list)
    last_event_time: int | None = None
    ended: bool = False
    torn: bool = False  # the last line was torn and dropped on open


_sync = getattr(os, "fdatasync", os.fsync)  # the data and the file size; not the modification time


def _line(record: dict[str, Any]) -> bytes:
    text = json.dumps(record, separators=(",", ":"), allow_nan=True, sort_keys=True)
    return f"{zlib.crc32(text.encode()):08x} {text}\n".encode()


def _parse(line: bytes) -> dict[str, Any] | None:
    """The record of one complete line, or None when it is damaged."""
    try:
        crc, text = line[:8].decode("ascii"), line[9:]
        if line[8:9] != b" " or int(crc, 16) != zlib.crc32(text):
            return None
        record = json.loads(text)
    except (UnicodeDecodeError, ValueError):
        return None
    return record if isinstance(record, dict) else None


class Journal:
    """An append-only, fsynced record file (see the module docstring). One writer at a time."""

    def __init__(self, path: Path, *, sync: bool = True, readonly: bool = False) -> None:
        """Open (or create) ``path`` for appending, holding an exclusive lock; ``readonly``: only read its records
        (no lock, nothing created or cut)."""
        self.path = Path(path)
        self.sync = sync
        self.records: list[dict[str, Any]] = []
        self.torn = False
        self._keys: dict[str, dict[str, Any]] = {}  # key -> its record (keys are written once)
        self._fd = -1
        if readonly:
            self._load(self.path.read_bytes() if self.path.exists() else b"")
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:  # one writer: a second node on the same journal is refused (the kernel drops the lock when we die)
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = -1
            raise JournalBusy(
                f"{self.path}: another node is writing this journal; stop it or use another --journal file"
            ) from None
        data = self.path.read_bytes()
        good = self._load(data)
        if good < len(data):
            os.ftruncate(self._fd, good)  # drop the torn tail so the next record starts on a clean line
            os.fsync(self._fd)
        os.lseek(self._fd, 0, os.SEEK_END)

    def _load(self, data: bytes) -> int:
        """Parse ``data``; returns the byte length of its intact prefix."""
        pos, lines = 0, data.split(b"\n")
        for number, line in enumerate(lines, 1):
            last = number >= len(lines) - 1  # the final complete line, or the unterminated rest
            if number == len(lines):  # bytes after the last newline: a torn write (or nothing)
                self.torn = self.torn or bool(line)
                break
            record = _parse(line)
            if record is None:
                if last:
                    self.torn = True
                    break
                raise JournalCorrupt(f"{self.path}:{number}: damaged journal record; restore the file or start a new journal")
            self.records.append(record)
            key = record.get("key")
            if key is not None:
                self._keys.setdefault(key, record)
            pos += len(line) + 1
        return pos

    # -- writing ----------------------------------------------------------------------------------------------------
    def has(self, key: str) -> bool:
        return key in self._keys

    def get(self, key: str) -> dict[str, Any] | None:
        """The record journaled under ``key`` (None: none); no scan of the records."""
        return self._keys.get(key)

    def append(self, kind: str, key: str | None, record: dict[str, Any], *, sync: bool | None = None) -> bool:
        """Write ``record`` as kind ``kind`` unless ``key`` is already journaled; fsync unless ``sync`` is False.
        Returns whether it was written."""
        if key is not None and key in self._keys:
            return False
        if self._fd < 0:
            raise ValueError(f"{self.path}: journal is closed or read-only")
        full = {**record, "k": kind, "key": key}
        os.write(self._fd, _line(full))  # one write per record: a crash leaves at most this line torn
        if self.sync if sync is None else sync:
            _sync(self._fd)
        self.records.append(full)
        if key is not None:
            self._keys[key] = full
        return True

    def close(self) -> None:
        if self._fd >= 0:
            if self.sync:
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        if getattr(self, "_fd", -1) >= 0:
            os.close(self._fd)  # releases the lock of a journal its owner forgot to close

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ----------------------------------------------------------------------------------------------------
    def header(self) -> dict[str, Any] | None:
        return next((r for r in self.records if r.get("k") == "run"), None)

    def recover(self) -> Recovery:
        """Open orders, positions, fills and the last processed event time, rebuilt from the records."""
        orders: dict[str, dict[str, Any]] = {}
        positions: dict[str, dict[str, Any]] = {}
        fills: list[dict[str, Any]] = []
        last: int | None = None
        ended = False
        for r in self.records:
            kind = r.get("k")
            t = r.get("t")
            if isinstance(t, int) and (last is None or t > last):
                last = t
            if kind == "order" and r.get("status") == "accepted":
                orders[r["id"]] = r
            elif kind == "order_done":
                orders.pop(r["id"], None)
            elif kind == "fill":
                fills.append(r)
                if r.get("order"):
                    orders.pop(r["order"], None)
                if r.get("position") is None:
                    positions.pop(r["symbol"], None)
                else:
                    positions[r["symbol"]] = r["position"]
            elif kind == "end":
                ended = True
        return Recovery(self.header(), orders, positions, fills, last, ended, self.torn)
