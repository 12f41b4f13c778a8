"""``AnnotationRepository``: chart annotations, machine-made (trend-line verdicts) and manual (the web chart), with
every revision kept (schema ``annotations``).

One annotation marks a span of a chart: symbol, timeframe, entry and exit (time in epoch ms and price), a direction
(``LONG`` / ``SHORT`` or none), and for machine verdicts the verdict (``validated`` / ``refuted``), the model name and
version judged, the time the verdict became known (``known_at``) and a JSON ``details`` object (what was predicted,
what the line showed). ``source`` says who made it: ``trendline`` (``training.trendline_validation``) or ``manual``.

Versioned, never silently overwritten: the ``annotations`` table holds the current state of each annotation with its
``version``; every create, update and delete appends an immutable row to ``annotation_revisions`` (the full state
after the change, or the last state for a delete), so the history of an annotation is a query and a delete can be
audited. ``update`` takes an optional ``expected_version`` (optimistic locking: a stale editor gets an error, not a
lost update). Machine verdicts have deterministic ids, so writing the same verdict twice stores it once
(``create_many`` skips ids already present).

Why the state tables and not JSON files (the reference's annotation manager kept JSON files and had to strip OHLCV out
of them): annotations are small rows queried by symbol, time and model, next to the candles they refer to; the OHLCV
stays in the market store and is never copied here. DuckDB by default, PostgreSQL through the same SQL.
Validated on write: a bad annotation raises ``UserInputError`` with one line naming the field and the fix.
"""

from __future__ import annotations

import csv
import io
import json
import math
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, astuple, dataclass, field, fields, replace
from typing import Any

from pivotal.core.clock import Clock, WallClock
from pivotal.core.errors import DataNotFound, UserInputError
from pivotal.core.timeframes import timeframe_ms
from pivotal.data.sql import where as sql_where
from pivotal.data.state.migrations import Migration, Schema, SqlStore, migrate, statements

TABLE = "annotations"
REVISIONS_TABLE = "annotation_revisions"
SOURCES = ("trendline", "manual")
DIRECTIONS = ("LONG", "SHORT")
VERDICTS = ("validated", "refuted")

_COLUMNS_DDL = (
    "source TEXT NOT NULL, symbol TEXT NOT NULL, timeframe TEXT NOT NULL, "
    "entry_ts BIGINT NOT NULL, entry_price DOUBLE PRECISION NOT NULL, "
    "exit_ts BIGINT, exit_price DOUBLE PRECISION, direction TEXT, verdict TEXT, "
    "model_name TEXT, model_version TEXT, known_at BIGINT, notes TEXT NOT NULL, tags TEXT NOT NULL, "
    "details TEXT NOT NULL, created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL, version INTEGER NOT NULL"
)
SCHEMA = Schema(
    TABLE,
    (
        Migration(
            1,
            "annotations with revisions",
            statements(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (id TEXT PRIMARY KEY, {_COLUMNS_DDL})",
                f"CREATE TABLE IF NOT EXISTS {REVISIONS_TABLE} (id TEXT NOT NULL, {_COLUMNS_DDL}, "
                "operation TEXT NOT NULL, PRIMARY KEY (id, version))",
            ),
        ),
    ),
)


@dataclass(frozen=True)
class Annotation:
    """One annotation (column order = table order). ``tags`` is a tuple of strings, ``details`` a JSON-able dict;
    ``created_ms`` / ``updated_ms`` / ``version`` are set by the repository (pass 0 when creating)."""

    id: str
    source: str
    symbol: str
    timeframe: str
    entry_ts: int
    entry_price: float
    exit_ts: int | None = None
    exit_price: float | None = None
    direction: str | None = None
    verdict: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    known_at: int | None = None
    notes: str = ""
    tags: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)
    created_ms: int = 0
    updated_ms: int = 0
    version: int = 0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["tags"] = list(self.tags)
        out["details"] = dict(self.details)
        return out


@dataclass(frozen=True)
class Revision:
    """One immutable entry of an annotation's history: its state after ``operation`` (create/update/delete)."""

    annotation: Annotation
    operation: str


COLUMNS = tuple(f.name for f in fields(Annotation))
# fields a caller may change with ``update`` (id, source, times of the record and version are the repository's)
EDITABLE = frozenset(COLUMNS) - {"id", "source", "created_ms", "updated_ms", "version"}


def new_id() -> str:
    """A random id for a manual annotation (machine verdicts use deterministic ids)."""
    return "ann-" + uuid.uuid4().hex[:16]


def _bad(name: str, value: object, fix: str) -> UserInputError:
    return UserInputError(f"annotation {name} {value!r} is invalid: {fix}")


def _is_ms(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def validate(a: Annotation) -> None:
    """Raise ``UserInputError`` (one line naming the field and the fix) when ``a`` cannot be stored."""
    for name in ("id", "symbol"):
        value = getattr(a, name)
        if not isinstance(value, str) or not value.strip():
            raise _bad(name, value, "give a non-empty string")
    if a.source not in SOURCES:
        raise _bad("source", a.source, f"use one of {', '.join(SOURCES)}")
    try:
        timeframe_ms(a.timeframe)
    except ValueError as exc:
        raise _bad("timeframe", a.timeframe, str(exc)) from None
    for name in ("entry_ts", "exit_ts", "known_at"):
        value = getattr(a, name)
        if (value is not None or name == "entry_ts") and not _is_ms(value):
            raise _bad(name, value, "give epoch milliseconds as a non-negative integer")
    if a.exit_ts is not None and a.exit_ts < a.entry_ts:
        raise _bad("exit_ts", a.exit_ts, f"an exit cannot come before its entry (entry_ts {a.entry_ts})")
    for name in ("entry_price", "exit_price"):
        value = getattr(a, name)
        if value is None and name == "exit_price":
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            raise _bad(name, value, "give a finite price > 0")
    if (a.exit_ts is None) != (a.exit_price is None):
        raise _bad("exit_price", a.exit_price, "give both exit_ts and exit_price, or neither")
    if a.direction is not None and a.direction not in DIRECTIONS:
        raise _bad("direction", a.direction, f"use one of {', '.join(DIRECTIONS)} or leave it empty")
    if a.verdict is not None and a.verdict not in VERDICTS:
        raise _bad("verdict", a.verdict, f"use one of {', '.join(VERDICTS)} or leave it empty")
    if a.source == "trendline":
        for name in ("verdict", "model_name", "model_version", "known_at"):
            if getattr(a, name) is None:
                raise _bad(name, None, "a trendline verdict needs verdict, model_name, model_version and known_at")
    if not isinstance(a.notes, str):
        raise _bad("notes", a.notes, "give text")
    if not isinstance(a.tags, tuple) or not all(isinstance(t, str) and t.strip() and "," not in t for t in a.tags):
        raise _bad("tags", a.tags, "give a tuple of non-empty strings without commas")
    try:
        json.dumps(dict(a.details), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise _bad("details", str(a.details)[:40], f"give a JSON object of finite values ({exc})") from None


@dataclass(frozen=True)
class AnnotationFilter:
    """Which annotations: each field None = any; ``start <= entry_ts < end``; ``tag``: carries that tag."""

    source: str | None = None
    symbol: str | None = None
    timeframe: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    verdict: str | None = None
    start: int | None = None
    end: int | None = None
    tag: str | None = None

    def where(self) -> tuple[str, list[object]]:
        tag = () if self.tag is None else (("tags LIKE ?", f"%,{self.tag},%"),)  # tags stored as ",a,b,": whole tags
        return sql_where((
            ("source", "=", self.source),
            ("symbol", "=", self.symbol),
            ("timeframe", "=", self.timeframe),
            ("model_name", "=", self.model_name),
            ("model_version", "=", self.model_version),
            ("verdict", "=", self.verdict),
            ("entry_ts", ">=", self.start),
            ("entry_ts", "<", self.end),
        ), tag)  # fmt: skip


def _encode(a: Annotation) -> tuple[Any, ...]:
    values = list(astuple(replace(a, tags=(), details={})))
    values[COLUMNS.index("tags")] = "," + ",".join(a.tags) + "," if a.tags else ""
    values[COLUMNS.index("details")] = json.dumps(dict(a.details), sort_keys=True, allow_nan=False)
    return tuple(values)


def _opt(cast: Any, value: Any) -> Any:
    return None if value is None else cast(value)


def _decode(v: Sequence[Any]) -> Annotation:
    (id_, source, symbol, tf, entry_ts, entry_price, exit_ts, exit_price, direction, verdict, model, version_name,
     known_at, notes, tags, details, created, updated, version) = v  # fmt: skip
    return Annotation(
        str(id_), str(source), str(symbol), str(tf), int(entry_ts), float(entry_price), _opt(int, exit_ts),
        _opt(float, exit_price), _opt(str, direction), _opt(str, verdict), _opt(str, model), _opt(str, version_name),
        _opt(int, known_at), str(notes), tuple(t for t in str(tags).split(",") if t), json.loads(details),
        int(created), int(updated), int(version),
    )  # fmt: skip


_SELECT = f"SELECT {', '.join(COLUMNS)} FROM {TABLE}"
_ONE = f"({', '.join('?' * len(COLUMNS))})"
_REV_ONE = f"({', '.join('?' * (len(COLUMNS) + 1))})"
_REV_HEAD = f"INSERT INTO {REVISIONS_TABLE} ({', '.join(COLUMNS)}, operation) VALUES"
_CHUNK = 300  # rows per statement: 5,700 parameters, far below PostgreSQL's 65,535


class AnnotationRepository:
    """The ``annotations`` and ``annotation_revisions`` tables; the schema is migrated when the repository is created."""

    def __init__(self, store: SqlStore, clock: Clock | None = None) -> None:
        self.store = store
        self.clock = clock or WallClock()
        migrate(store, SCHEMA, self.clock)

    # --- create ------------------------------------------------------------------------------------------------------
    def create(self, annotation: Annotation) -> Annotation:
        """Store a new annotation as version 1; ``UserInputError`` when its id is taken."""
        stored = self.create_many([annotation])
        if not stored:
            raise UserInputError(f"annotation id {annotation.id!r} already exists; update it, or give a new id")
        return stored[0]

    def create_many(self, annotations: Sequence[Annotation]) -> list[Annotation]:
        """Validate all (nothing is written when one is bad), then store in one transaction those whose id is not
        stored yet (a machine verdict written twice is stored once); the annotations newly stored."""
        for a in annotations:
            validate(a)
        ids = [a.id for a in annotations]
        if len(set(ids)) != len(ids):
            raise UserInputError("annotations to create repeat an id; give each one its own id")
        now = self.clock.now_ms()
        fresh = [replace(a, created_ms=now, updated_ms=now, version=1) for a in annotations]
        stored: list[Annotation] = []
        with _session(self.store) as session:
            for start in range(0, len(fresh), _CHUNK):
                chunk = fresh[start : start + _CHUNK]
                values = ", ".join([_ONE] * len(chunk))
                params = [v for a in chunk for v in _encode(a)]
                new = {str(r[0]) for r in session.query(
                    f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES {values} ON CONFLICT (id) DO NOTHING RETURNING id",
                    params,
                )}  # fmt: skip
                added = [a for a in chunk if a.id in new]
                _append_revisions(session, added, "create")
                stored += added
        return stored

    # --- read --------------------------------------------------------------------------------------------------------
    def get(self, annotation_id: str) -> Annotation | None:
        rows = self.store.query(f"{_SELECT} WHERE id = ?", [annotation_id])
        return _decode(rows[0]) if rows else None

    def query(self, where: AnnotationFilter = AnnotationFilter(), limit: int | None = None) -> list[Annotation]:
        """Annotations matching ``where``, by entry time then id (oldest first); ``limit`` keeps the newest ``limit``."""
        clause, params = where.where()
        sql = f"{_SELECT}{clause} ORDER BY entry_ts DESC, id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_decode(r) for r in reversed(self.store.query(sql, params))]

    def count(self, where: AnnotationFilter = AnnotationFilter()) -> int:
        clause, params = where.where()
        return int(self.store.query(f"SELECT COUNT(*) FROM {TABLE}{clause}", params)[0][0])

    def history(self, annotation_id: str) -> list[Revision]:
        """Every revision of an annotation, oldest first (still there after a delete)."""
        rows = self.store.query(
            f"SELECT {', '.join(COLUMNS)}, operation FROM {REVISIONS_TABLE} WHERE id = ? ORDER BY version", [annotation_id]
        )
        return [Revision(_decode(r[:-1]), str(r[-1])) for r in rows]

    # --- update / delete ---------------------------------------------------------------------------------------------
    def update(self, annotation_id: str, changes: Mapping[str, Any], expected_version: int | None = None) -> Annotation:
        """Apply ``changes`` (field -> new value; see ``EDITABLE``) as a new version; the previous one stays in the
        history. ``expected_version``: refuse when the annotation changed since the caller read it."""
        unknown = sorted(set(changes) - EDITABLE)
        if unknown:
            raise UserInputError(f"annotation fields {unknown} cannot be changed; editable: {', '.join(sorted(EDITABLE))}")
        with _session(self.store) as session:
            rows = session.query(f"{_SELECT} WHERE id = ?", [annotation_id])
            if not rows:
                raise DataNotFound(f"no annotation {annotation_id!r}; list them with `pivotal annotations list`")
            current = _decode(rows[0])
            if expected_version is not None and current.version != expected_version:
                raise UserInputError(
                    f"annotation {annotation_id!r} is at version {current.version}, not {expected_version}: "
                    "it changed since you read it; reload and apply your change again"
                )
            value = dict(changes)
            if "tags" in value:
                value["tags"] = tuple(value["tags"])
            new = replace(current, **value, updated_ms=self.clock.now_ms(), version=current.version + 1)
            validate(new)
            assignments = ", ".join(f"{c} = ?" for c in COLUMNS if c != "id")
            session.execute(f"UPDATE {TABLE} SET {assignments} WHERE id = ?", [*_encode(new)[1:], annotation_id])
            _append_revisions(session, [new], "update")
        return new

    def delete(self, annotation_id: str) -> Annotation:
        """Remove an annotation from the current set; its history keeps every version plus a ``delete`` entry."""
        with _session(self.store) as session:
            rows = session.query(f"{_SELECT} WHERE id = ?", [annotation_id])
            if not rows:
                raise DataNotFound(f"no annotation {annotation_id!r}; list them with `pivotal annotations list`")
            current = _decode(rows[0])
            gone = replace(current, updated_ms=self.clock.now_ms(), version=current.version + 1)
            session.execute(f"DELETE FROM {TABLE} WHERE id = ?", [annotation_id])
            _append_revisions(session, [gone], "delete")
        return gone


def _append_revisions(session: SqlStore, annotations: Sequence[Annotation], operation: str) -> None:
    if not annotations:
        return
    values = ", ".join([_REV_ONE] * len(annotations))
    session.execute(f"{_REV_HEAD} {values}", [v for a in annotations for v in (*_encode(a), operation)])


@contextmanager
def _session(store: SqlStore) -> Iterator[SqlStore]:
    """One transaction where the store offers it (DuckDB, PostgreSQL); else the store itself (test doubles)."""
    transaction = getattr(store, "transaction", None)
    if callable(transaction):
        with transaction() as session:
            yield session
    else:
        yield store


# ------------------------------------------------------------------------------------------------------------ export

CSV_COLUMNS = COLUMNS


def to_json(annotations: Sequence[Annotation]) -> str:
    """A JSON array of annotations (``from_json`` reads it back to equal objects)."""
    return json.dumps([a.to_dict() for a in annotations], sort_keys=True, allow_nan=False, indent=1)


def from_json(text: str) -> list[Annotation]:
    """Annotations from ``to_json`` output; ``UserInputError`` naming the entry and field when one is not valid."""
    try:
        items = json.loads(text)
    except ValueError as exc:
        raise UserInputError(f"annotations JSON does not parse ({exc}); give the output of to_json") from None
    if not isinstance(items, list):
        raise UserInputError("annotations JSON must be an array of objects")
    out = []
    for n, item in enumerate(items):
        missing = sorted({"id", "source", "symbol", "timeframe", "entry_ts", "entry_price"} - set(item))
        if missing:
            raise UserInputError(f"annotations JSON entry {n} lacks field(s) {missing}")
        known = {k: v for k, v in item.items() if k in COLUMNS}
        known["tags"] = tuple(known.get("tags", ()))
        a = Annotation(**known)
        validate(a)
        out.append(a)
    return out


def to_csv(annotations: Sequence[Annotation]) -> str:
    """CSV with a header of ``CSV_COLUMNS``; tags joined by ``;``, details as JSON text, empty cells for None."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for a in annotations:
        row = a.to_dict()
        row["tags"] = ";".join(a.tags)
        row["details"] = json.dumps(dict(a.details), sort_keys=True)
        writer.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])
    return buffer.getvalue()
