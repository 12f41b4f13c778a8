"""``PredictionRepository``: the inference history, one row per prediction, in the state tables (schema ``predictions``).

A row names who predicted (model name and checkpoint version), for what (symbol, timeframe, as-of time), from what
(an input reference: the input spec's id, the input's as-of time and a SHA-256 of its arrays, never the tensor) and
what (the ``ModelOutput`` as JSON, plus its action / confidence / direction as columns for queries and statistics).
This layer stores text and numbers and does not know ``ModelOutput``; ``pivotal.models.output_store.InferenceHistory``
converts. Rows are immutable: first write wins for a (model, version, symbol, timeframe, as-of) key.
Version 2 adds ``prediction_outcomes``: one row per resolved target of a prediction (``training.outcomes``), with the
label and the time it became known; final once stored.

Why the state repositories and not Parquet files: the embedded default is DuckDB, a columnar engine that compresses
every column (dictionary/RLE/bit-packing, FSST for the JSON text) in the file the market data already lives in, so the
history needs no server, no second writer lock and no file-compaction job, and it is queried with SQL; PostgreSQL
(row store; the payload is TOAST-compressed only when large) works through the same SQL for a shared server.
Measured: 436 bytes per prediction on disk in DuckDB (docs/learning.md). Retention: ``prune(before_ms)`` deletes by
as-of time, outcomes included (``RetentionPolicy`` turns a maximum age into that cut-off).

Validated on write: a bad row raises ``UserInputError`` with one line naming the field and the fix.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import astuple, dataclass, fields
from typing import Any

from pivotal.core.errors import UserInputError
from pivotal.core.timeframes import timeframe_ms
from pivotal.data.sql import where as sql_where
from pivotal.data.state.migrations import Migration, Schema, SqlStore, migrate, statements

TABLE = "predictions"
OUTCOMES_TABLE = "prediction_outcomes"
SCHEMA = Schema(
    TABLE,
    (
        Migration(
            1,
            "inference history",
            statements(
                f"CREATE TABLE IF NOT EXISTS {TABLE} ("
                "model_name TEXT NOT NULL, model_version TEXT NOT NULL, symbol TEXT NOT NULL, timeframe TEXT NOT NULL, "
                "as_of BIGINT NOT NULL, input_spec TEXT NOT NULL, input_as_of BIGINT NOT NULL, input_hash TEXT NOT NULL, "
                "model_type TEXT NOT NULL, action TEXT NOT NULL, confidence DOUBLE PRECISION NOT NULL, "
                "direction_vector DOUBLE PRECISION NOT NULL, direction_confidence DOUBLE PRECISION NOT NULL, "
                "payload TEXT NOT NULL, recorded_ms BIGINT NOT NULL, "
                "PRIMARY KEY (model_name, model_version, symbol, timeframe, as_of))"
            ),
        ),
        Migration(
            2,
            "outcomes of predictions",
            statements(
                f"CREATE TABLE IF NOT EXISTS {OUTCOMES_TABLE} ("
                "model_name TEXT NOT NULL, model_version TEXT NOT NULL, symbol TEXT NOT NULL, timeframe TEXT NOT NULL, "
                "as_of BIGINT NOT NULL, target TEXT NOT NULL, input_spec TEXT NOT NULL, input_as_of BIGINT NOT NULL, "
                "input_hash TEXT NOT NULL, predicted DOUBLE PRECISION NOT NULL, predicted_direction INTEGER NOT NULL, "
                "value DOUBLE PRECISION NOT NULL, direction INTEGER NOT NULL, known_at BIGINT NOT NULL, "
                "hit INTEGER NOT NULL, extra TEXT NOT NULL, "
                "PRIMARY KEY (model_name, model_version, symbol, timeframe, as_of, target))"
            ),
        ),
    ),
)

_HASH = re.compile(r"^[0-9a-f]{64}$")
_ACTIONS = ("BUY", "SELL", "HOLD")
DAY_MS = 86_400_000


@dataclass(frozen=True)
class PredictionRow:
    """One stored prediction (column order = table order)."""

    model_name: str
    model_version: str
    symbol: str
    timeframe: str
    as_of: int
    input_spec: str
    input_as_of: int
    input_hash: str
    model_type: str
    action: str
    confidence: float
    direction_vector: float
    direction_confidence: float
    payload: str
    recorded_ms: int

    @property
    def key(self) -> tuple[str, str, str, str, int]:
        return (self.model_name, self.model_version, self.symbol, self.timeframe, int(self.as_of))


COLUMNS = tuple(f.name for f in fields(PredictionRow))
_INSERT_HEAD = f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES"
_ROW_VALUES = f"({', '.join('?' * len(COLUMNS))})"
# RETURNING lists only the rows inserted (DuckDB and PostgreSQL alike), so duplicates are counted without a SELECT
_INSERT_TAIL = "ON CONFLICT (model_name, model_version, symbol, timeframe, as_of) DO NOTHING RETURNING as_of"
_CHUNK = 500  # rows per statement: 7,500 parameters, far below PostgreSQL's 65,535


def _bad(field: str, value: object, fix: str) -> UserInputError:
    return UserInputError(f"prediction {field} {value!r} is invalid: {fix}")


def validate_row(row: PredictionRow) -> None:
    """Raise ``UserInputError`` (one line naming the field and the fix) when ``row`` cannot be stored."""
    for name in ("model_name", "model_version", "symbol", "input_spec", "model_type"):
        value = getattr(row, name)
        if not isinstance(value, str) or not value.strip():
            raise _bad(name, value, "give a non-empty string")
    try:
        timeframe_ms(row.timeframe)
    except ValueError as exc:
        raise _bad("timeframe", row.timeframe, str(exc)) from None
    for name in ("as_of", "input_as_of", "recorded_ms"):
        value = getattr(row, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _bad(name, value, "give epoch milliseconds as a non-negative integer")
    if row.input_as_of > row.as_of:
        raise _bad("input_as_of", row.input_as_of, f"an input cannot be newer than its prediction (as_of {row.as_of})")
    if not isinstance(row.input_hash, str) or not _HASH.match(row.input_hash):
        raise _bad("input_hash", row.input_hash, "give the SHA-256 hex digest (64 lowercase hex characters)")
    if row.action not in _ACTIONS:
        raise _bad("action", row.action, f"use one of {', '.join(_ACTIONS)}")
    for name, low in (("confidence", 0.0), ("direction_confidence", 0.0), ("direction_vector", -1.0)):
        value = getattr(row, name)
        if not isinstance(value, int | float) or not math.isfinite(value) or not low <= value <= 1.0:
            raise _bad(name, value, f"give a finite number in [{low:g}, 1]")
    try:
        payload = json.loads(row.payload)
    except (TypeError, ValueError):
        raise _bad("payload", str(row.payload)[:40], "give the ModelOutput as JSON") from None
    if not isinstance(payload, dict):
        raise _bad("payload", str(row.payload)[:40], "give the ModelOutput as a JSON object")


@dataclass(frozen=True)
class OutcomeRow:
    """One resolved target of a prediction (``training.outcomes.Outcome`` as stored); ``extra`` is JSON."""

    model_name: str
    model_version: str
    symbol: str
    timeframe: str
    as_of: int
    target: str
    input_spec: str
    input_as_of: int
    input_hash: str
    predicted: float
    predicted_direction: int
    value: float
    direction: int
    known_at: int
    hit: int
    extra: str


OUTCOME_COLUMNS = tuple(f.name for f in fields(OutcomeRow))


def validate_outcome(row: OutcomeRow) -> None:
    """Raise ``UserInputError`` (one line naming the field) when an outcome cannot be stored."""
    if not isinstance(row.target, str) or not row.target.strip():
        raise UserInputError(f"outcome target {row.target!r} is invalid: give a non-empty name such as return_5m")
    if isinstance(row.known_at, bool) or not isinstance(row.known_at, int) or row.known_at <= row.as_of:
        raise UserInputError(
            f"outcome known_at {row.known_at!r} is invalid: an outcome becomes known after its prediction (as_of {row.as_of})"
        )
    for name in ("predicted", "value"):
        value = getattr(row, name)
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise UserInputError(f"outcome {name} {value!r} is invalid: give a finite number")
    for name in ("predicted_direction", "direction"):
        if getattr(row, name) not in (-1, 0, 1):
            raise UserInputError(f"outcome {name} {getattr(row, name)!r} is invalid: use -1, 0 or 1")
    if row.hit not in (0, 1):
        raise UserInputError(f"outcome hit {row.hit!r} is invalid: use 0 or 1")
    if not _HASH.match(str(row.input_hash)):
        raise UserInputError(f"outcome input_hash {row.input_hash!r} is invalid: give the SHA-256 hex digest")


@dataclass(frozen=True)
class RetentionPolicy:
    """Keep predictions whose as-of time is at most ``max_age_days`` old (None: keep everything)."""

    max_age_days: float | None = None

    def __post_init__(self) -> None:
        if self.max_age_days is not None and not self.max_age_days > 0:
            raise UserInputError(f"retention max_age_days must be > 0 (got {self.max_age_days}); or None to keep all")

    def cutoff(self, now_ms: int) -> int | None:
        """Rows with ``as_of`` below this are expired (None: nothing expires)."""
        return None if self.max_age_days is None else int(now_ms - self.max_age_days * DAY_MS)


@dataclass(frozen=True)
class PredictionFilter:
    """Which rows: each field None = any; ``start <= as_of < end``."""

    model_name: str | None = None
    model_version: str | None = None
    symbol: str | None = None
    timeframe: str | None = None
    start: int | None = None
    end: int | None = None

    def where(self) -> tuple[str, list[object]]:
        return sql_where((
            ("model_name", "=", self.model_name),
            ("model_version", "=", self.model_version),
            ("symbol", "=", self.symbol),
            ("timeframe", "=", self.timeframe),
            ("as_of", ">=", self.start),
            ("as_of", "<", self.end),
        ))  # fmt: skip


@dataclass(frozen=True)
class PredictionStats:
    """Counts per (model, version, symbol, timeframe): how many, first and last as-of, actions, mean confidence."""

    model_name: str
    model_version: str
    symbol: str
    timeframe: str
    count: int
    first_as_of: int
    last_as_of: int
    buy: int
    sell: int
    hold: int
    mean_confidence: float


class PredictionRepository:
    """The ``predictions`` table; the schema is migrated when the repository is created."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        migrate(store, SCHEMA)

    def add(self, row: PredictionRow) -> bool:
        """Validate and insert; False (nothing changes) when that key is already stored."""
        return self.add_many([row]) == 1

    def add_many(self, rows: Sequence[PredictionRow]) -> int:
        """Validate every row first (nothing is written when one is bad), then insert them in one transaction with
        multi-row statements; the number newly inserted (a key already stored is left as it is)."""
        for row in rows:
            validate_row(row)
        inserted = 0
        with _session(self.store) as session:
            for start in range(0, len(rows), _CHUNK):
                chunk = rows[start : start + _CHUNK]
                values = ", ".join([_ROW_VALUES] * len(chunk))
                params = [v for row in chunk for v in astuple(row)]
                inserted += len(session.query(f"{_INSERT_HEAD} {values} {_INSERT_TAIL}", params))
        return inserted

    def get(self, model_name: str, model_version: str, symbol: str, timeframe: str, as_of: int) -> PredictionRow | None:
        rows = self.store.query(
            f"SELECT {', '.join(COLUMNS)} FROM {TABLE} WHERE {_KEY_WHERE}",
            (model_name, model_version, symbol, timeframe, int(as_of)),
        )
        return _row(rows[0]) if rows else None

    def query(self, where: PredictionFilter = PredictionFilter(), limit: int | None = None) -> list[PredictionRow]:
        """Rows matching ``where``, oldest first; ``limit`` keeps the newest ``limit``."""
        clause, params = where.where()
        sql = f"SELECT {', '.join(COLUMNS)} FROM {TABLE}{clause} ORDER BY as_of DESC, model_name DESC, model_version DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_row(r) for r in reversed(self.store.query(sql, params))]

    def count(self, where: PredictionFilter = PredictionFilter()) -> int:
        clause, params = where.where()
        return int(self.store.query(f"SELECT COUNT(*) FROM {TABLE}{clause}", params)[0][0])

    def stats(self, where: PredictionFilter = PredictionFilter()) -> list[PredictionStats]:
        clause, params = where.where()
        sql = (
            "SELECT model_name, model_version, symbol, timeframe, COUNT(*), MIN(as_of), MAX(as_of), "
            "SUM(CASE WHEN action = 'BUY' THEN 1 ELSE 0 END), SUM(CASE WHEN action = 'SELL' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN action = 'HOLD' THEN 1 ELSE 0 END), AVG(confidence) "
            f"FROM {TABLE}{clause} GROUP BY model_name, model_version, symbol, timeframe "
            "ORDER BY model_name, model_version, symbol, timeframe"
        )
        return [
            PredictionStats(str(a), str(b), str(c), str(d), int(n), int(lo), int(hi), int(bu), int(se), int(ho), float(mc))
            for a, b, c, d, n, lo, hi, bu, se, ho, mc in self.store.query(sql, params)
        ]

    def prune(self, before_ms: int) -> int:
        """Delete every prediction with ``as_of < before_ms``, and its outcomes; the number of predictions deleted."""
        where = PredictionFilter(end=int(before_ms))
        n = self.count(where)
        clause, params = where.where()
        with _session(self.store) as session:
            session.execute(f"DELETE FROM {OUTCOMES_TABLE}{clause}", params)
            if n:
                session.execute(f"DELETE FROM {TABLE}{clause}", params)
        return n

    # --- outcomes -------------------------------------------------------------------------------------------------
    def add_outcomes(self, rows: Sequence[OutcomeRow]) -> int:
        """Validate all, then insert in one transaction; the number newly stored (an outcome, once known, is final)."""
        for row in rows:
            validate_outcome(row)
        head = f"INSERT INTO {OUTCOMES_TABLE} ({', '.join(OUTCOME_COLUMNS)}) VALUES"
        one = f"({', '.join('?' * len(OUTCOME_COLUMNS))})"
        tail = "ON CONFLICT (model_name, model_version, symbol, timeframe, as_of, target) DO NOTHING RETURNING as_of"
        inserted = 0
        with _session(self.store) as session:
            for start in range(0, len(rows), _CHUNK):
                chunk = rows[start : start + _CHUNK]
                params = [v for row in chunk for v in astuple(row)]
                inserted += len(session.query(f"{head} {', '.join([one] * len(chunk))} {tail}", params))
        return inserted

    def outcomes(
        self, where: PredictionFilter = PredictionFilter(), known_by: int | None = None, target: str | None = None
    ) -> list[OutcomeRow]:
        """Stored outcomes matching ``where`` (on the prediction's as-of time), known at or before ``known_by`` (a
        trainer's clock), of one ``target``; ordered by ``known_at``."""
        clause, params = where.where()
        extra = [("known_at <= ?", known_by), ("target = ?", target)]
        for condition, value in extra:
            if value is not None:
                clause += (" AND " if clause else " WHERE ") + condition
                params.append(value)
        sql = f"SELECT {', '.join(OUTCOME_COLUMNS)} FROM {OUTCOMES_TABLE}{clause} ORDER BY known_at, as_of, target, model_name"
        return [_outcome_row(r) for r in self.store.query(sql, params)]

    def apply_retention(self, policy: RetentionPolicy, now_ms: int) -> int:
        """Delete what ``policy`` expires at ``now_ms``; the number deleted."""
        cutoff = policy.cutoff(now_ms)
        return 0 if cutoff is None else self.prune(cutoff)


@contextmanager
def _session(store: SqlStore) -> Iterator[SqlStore]:
    """One transaction where the store offers it (DuckDB, PostgreSQL); else the store itself (test doubles)."""
    transaction = getattr(store, "transaction", None)
    if callable(transaction):
        with transaction() as session:
            yield session
    else:
        yield store


_KEY_WHERE = "model_name = ? AND model_version = ? AND symbol = ? AND timeframe = ? AND as_of = ?"


def _outcome_row(v: Sequence[Any]) -> OutcomeRow:
    return OutcomeRow(
        str(v[0]), str(v[1]), str(v[2]), str(v[3]), int(v[4]), str(v[5]), str(v[6]), int(v[7]), str(v[8]), float(v[9]),
        int(v[10]), float(v[11]), int(v[12]), int(v[13]), int(v[14]), str(v[15]),
    )  # fmt: skip


def _row(values: Sequence[Any]) -> PredictionRow:
    (name, version, symbol, tf, as_of, spec, input_as_of, digest, mtype, action, conf, dvec, dconf, payload, rec) = values
    return PredictionRow(
        str(name), str(version), str(symbol), str(tf), int(as_of), str(spec), int(input_as_of), str(digest), str(mtype),
        str(action), float(conf), float(dvec), float(dconf), str(payload), int(rec),
    )  # fmt: skip
