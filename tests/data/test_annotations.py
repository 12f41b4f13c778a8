"""Annotations (``data.state.annotations``): CRUD with immutable revisions, optimistic locking, filters, validation
messages and JSON/CSV export, on both backends (the PostgreSQL cases carry the ``postgres`` marker through the
``store`` fixture)."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from typing import Any

import pytest

from pivotal.core.clock import SimulatedClock
from pivotal.core.errors import DataNotFound, UserInputError
from pivotal.data.state import annotations as state
from pivotal.data.state.annotations import (
    Annotation,
    AnnotationFilter,
    AnnotationRepository,
    from_json,
    new_id,
    to_csv,
    to_json,
)
from pivotal.data.state.migrations import SchemaError, migrate, table_exists
from pivotal.data.store import MarketStore

T0 = 1_709_251_200_000
MIN = 60_000


def _manual(id_: str = "ann-1", entry_ts: int = T0, **kw: Any) -> Annotation:
    base: dict[str, object] = dict(
        id=id_, source="manual", symbol="BTC/USDT", timeframe="1m", entry_ts=entry_ts, entry_price=61_000.5,
        exit_ts=entry_ts + 30 * MIN, exit_price=61_400.0, direction="LONG", notes="breakout", tags=("breakout", "L2"),
    )  # fmt: skip
    base.update(kw)
    return Annotation(**base)


def _verdict(id_: str, entry_ts: int, verdict: str = "refuted", model: str = "cnn") -> Annotation:
    return Annotation(
        id_, "trendline", "BTC/USDT", "1m", entry_ts, 61_000.0, entry_ts + 10 * MIN, 60_900.0, "SHORT", verdict, model,
        "v3", entry_ts + 12 * MIN, "trend_L2H_direction", ("L2H", "direction", verdict), {"predicted": 0.4, "actual": -1},
    )  # fmt: skip


def _repo(store: MarketStore, clock: SimulatedClock | None = None) -> AnnotationRepository:
    return AnnotationRepository(store, clock or SimulatedClock(T0 + 5))


def test_crud_keeps_every_revision(store: MarketStore) -> None:
    clock = SimulatedClock(T0 + 5)
    repo = _repo(store, clock)
    created = repo.create(_manual())
    assert (created.version, created.created_ms, created.updated_ms) == (1, T0 + 5, T0 + 5)
    assert repo.get("ann-1") == created
    clock.advance(1_000)
    updated = repo.update("ann-1", {"notes": "failed breakout", "direction": "SHORT", "tags": ["failed"]}, expected_version=1)
    assert (updated.version, updated.created_ms, updated.updated_ms, updated.notes, updated.tags) == (
        2, T0 + 5, T0 + 1_005, "failed breakout", ("failed",),
    )  # fmt: skip
    assert repo.get("ann-1") == updated
    with pytest.raises(UserInputError, match="is at version 2, not 1: it changed since you read it"):
        repo.update("ann-1", {"notes": "stale edit"}, expected_version=1)
    with pytest.raises(UserInputError, match=r"fields \['id', 'version'\] cannot be changed"):
        repo.update("ann-1", {"id": "x", "version": 9})
    with pytest.raises(UserInputError, match="annotation direction 'UP' is invalid: use one of LONG, SHORT"):
        repo.update("ann-1", {"direction": "UP"})
    assert repo.get("ann-1") == updated  # a refused update changes nothing
    clock.advance(1_000)
    gone = repo.delete("ann-1")
    assert repo.get("ann-1") is None and repo.count() == 0
    history = repo.history("ann-1")
    assert [(r.operation, r.annotation.version) for r in history] == [("create", 1), ("update", 2), ("delete", 3)]
    assert history[0].annotation == created and history[1].annotation == updated and history[2].annotation == gone
    with pytest.raises(DataNotFound, match="no annotation 'ann-1'"):
        repo.delete("ann-1")
    with pytest.raises(DataNotFound, match="no annotation 'nope'"):
        repo.update("nope", {"notes": ""})


def test_create_refuses_a_taken_id_and_create_many_stores_each_once(store: MarketStore) -> None:
    repo = _repo(store)
    repo.create(_manual())
    with pytest.raises(UserInputError, match="annotation id 'ann-1' already exists"):
        repo.create(_manual(notes="other"))
    batch = [_verdict(f"tl-{i}", T0 + i * MIN) for i in range(5)]
    assert [a.id for a in repo.create_many(batch)] == [a.id for a in batch]
    assert repo.create_many([*batch[:3], _verdict("tl-9", T0)]) == [
        dataclasses.replace(_verdict("tl-9", T0), created_ms=T0 + 5, updated_ms=T0 + 5, version=1)
    ]
    assert repo.count() == 7
    with pytest.raises(UserInputError, match="repeat an id"):
        repo.create_many([_verdict("tl-x", T0), _verdict("tl-x", T0)])
    bad = [_verdict("tl-y", T0), _verdict("tl-z", T0, verdict="maybe")]
    with pytest.raises(UserInputError, match="annotation verdict 'maybe' is invalid: use one of validated, refuted"):
        repo.create_many(bad)
    assert repo.get("tl-y") is None  # nothing written when one is bad


def test_filters(store: MarketStore) -> None:
    repo = _repo(store)
    repo.create_many(
        [_verdict(f"tl-{i}", T0 + i * MIN, "refuted" if i % 2 else "validated", "cnn" if i < 4 else "dqn") for i in range(6)]
        + [_manual("m-1", T0 + 2 * MIN, symbol="ETH/USDT"), _manual("m-2", T0 + 3 * MIN, tags=("L2H-like",))]
    )
    assert [a.id for a in repo.query(AnnotationFilter(source="trendline", verdict="refuted"))] == ["tl-1", "tl-3", "tl-5"]
    assert [a.id for a in repo.query(AnnotationFilter(model_name="cnn", start=T0 + MIN, end=T0 + 3 * MIN))] == ["tl-1", "tl-2"]
    assert [a.id for a in repo.query(AnnotationFilter(symbol="ETH/USDT"))] == ["m-1"]
    assert [a.id for a in repo.query(AnnotationFilter(tag="L2H"))] == [f"tl-{i}" for i in range(6)]  # a whole tag only
    assert [a.id for a in repo.query(limit=2)] == ["tl-4", "tl-5"]
    assert repo.count(AnnotationFilter(model_name="dqn")) == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"source": "robot"}, "annotation source 'robot' is invalid: use one of trendline, manual"),
        ({"timeframe": "7q"}, "annotation timeframe '7q' is invalid"),
        ({"entry_ts": -1}, "annotation entry_ts -1 is invalid: give epoch milliseconds"),
        ({"exit_ts": T0 - 1}, "annotation exit_ts .* is invalid: an exit cannot come before its entry"),
        ({"entry_price": float("nan")}, "annotation entry_price nan is invalid: give a finite price > 0"),
        ({"exit_price": None}, "annotation exit_price None is invalid: give both exit_ts and exit_price, or neither"),
        ({"tags": ("a,b",)}, "annotation tags .* is invalid: give a tuple of non-empty strings without commas"),
        ({"details": {"x": float("inf")}}, "annotation details .* is invalid: give a JSON object of finite values"),
        ({"source": "trendline"}, "annotation verdict None is invalid: a trendline verdict needs verdict, model_name"),
        ({"symbol": " "}, "annotation symbol ' ' is invalid: give a non-empty string"),
    ],
)
def test_validation_names_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(UserInputError, match=message):
        state.validate(_manual(**change))


def test_export_round_trips(store: MarketStore) -> None:
    repo = _repo(store)
    stored = repo.create_many([_verdict("tl-1", T0), _manual(), _manual(new_id(), exit_ts=None, exit_price=None, direction=None)])
    assert from_json(to_json(stored)) == stored
    assert json.loads(to_json(stored))[0]["tags"] == ["L2H", "direction", "refuted"]
    rows = list(csv.DictReader(io.StringIO(to_csv(stored))))
    assert list(rows[0]) == list(state.CSV_COLUMNS)
    assert (rows[0]["id"], rows[0]["tags"], json.loads(rows[0]["details"]), rows[0]["known_at"]) == (
        "tl-1", "L2H;direction;refuted", {"actual": -1, "predicted": 0.4}, str(T0 + 12 * MIN),
    )  # fmt: skip
    assert (rows[2]["exit_ts"], rows[2]["direction"], rows[2]["verdict"]) == ("", "", "")
    with pytest.raises(UserInputError, match=r"entry 0 lacks field\(s\) \['entry_price'\]"):
        from_json('[{"id": "a", "source": "manual", "symbol": "X", "timeframe": "1m", "entry_ts": 1}]')


def test_schema_is_versioned_and_a_newer_one_refused(store: MarketStore) -> None:
    _repo(store)
    assert table_exists(store, "annotations") and table_exists(store, "annotation_revisions")
    assert store.query("SELECT version FROM schema_versions WHERE repository = 'annotations'") == [(1,)]
    newer = state.Schema("annotations", (*state.SCHEMA.migrations, dataclasses.replace(state.SCHEMA.migrations[0], version=2)))
    migrate(store, newer)
    with pytest.raises(SchemaError, match="newer than this pivotal understands"):
        _repo(store)
