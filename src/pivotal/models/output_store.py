"""Store of ``ModelOutput``s: the last ``capacity`` (1,000) per model in memory, every output persisted.

Persistence goes through ``pivotal.data.state.model_outputs.ModelOutputRepository`` (table ``model_outputs``,
versioned schema), keyed by (model_name, symbol, ts). Outputs are immutable once emitted: a second output
of the same model for the same symbol and timestamp is ignored (first write wins) and ``add`` returns False.
Hidden states are not persisted unless ``persist_hidden=True`` (they can be large); memory keeps them.

With a store, queries and ``last_predictions`` read the store (complete history, survives restarts); without
one they read memory.

``InferenceHistory`` is the inference history (``pivotal predictions ...``): every prediction with its model version,
timeframe and input reference, in ``pivotal.data.state.predictions``. An ``OutputStore`` given ``history=`` records
there too, for each ``add`` that passes a ``PredictionContext``.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pivotal.core.clock import Clock, WallClock
from pivotal.data.state.migrations import SqlStore
from pivotal.data.state.model_outputs import ModelOutputRepository, OutputRow
from pivotal.data.state.predictions import (
    PredictionFilter,
    PredictionRepository,
    PredictionRow,
    PredictionStats,
    RetentionPolicy,
    validate_row,
)
from pivotal.data.store import MarketStore
from pivotal.features.input_spec import PRESETS, InputSpec
from pivotal.models.io import BaseDataInput, ModelOutput

DEFAULT_CAPACITY = 1000


class OutputStore:
    """Model outputs in memory (bounded per model) and, when ``store`` is given, persisted in ``model_outputs``."""

    def __init__(
        self,
        store: MarketStore | None = None,
        capacity: int = DEFAULT_CAPACITY,
        persist_hidden: bool = False,
        history: InferenceHistory | None = None,
    ):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1 (got {capacity})")
        self.store = store
        self.capacity = capacity
        self.persist_hidden = persist_hidden
        self._memory: dict[str, deque[ModelOutput]] = {}
        self._keys: dict[str, set[tuple[str, int]]] = {}
        self._rows = ModelOutputRepository(store) if store is not None else None
        self.history = history

    def add(self, output: ModelOutput, context: PredictionContext | None = None) -> bool:
        """Record one output; False (and nothing changes) if this model already emitted for that symbol and time.
        With a ``history`` and a ``context`` the output also goes to the inference history (validated first)."""
        key = (output.symbol, int(output.timestamp))
        keys = self._keys.setdefault(output.model_name, set())
        if key in keys or self._persisted(output):
            return False
        if self.history is not None and context is not None:
            self.history.record(output, context)
        if self._rows is not None:
            payload = output.to_json(include_hidden=self.persist_hidden)
            conf = float(output.confidence)
            self._rows.add(OutputRow(output.model_name, output.symbol, key[1], output.model_type, output.action, conf, payload))
        memory = self._memory.setdefault(output.model_name, deque())
        if len(memory) == self.capacity:
            evicted = memory.popleft()
            keys.discard((evicted.symbol, int(evicted.timestamp)))
        memory.append(output)
        keys.add(key)
        return True

    def _persisted(self, output: ModelOutput) -> bool:
        return self._rows is not None and self._rows.exists(output.model_name, output.symbol, int(output.timestamp))

    def recent(self, model_name: str, n: int | None = None) -> list[ModelOutput]:
        """The newest ``n`` (default all, at most ``capacity``) in-memory outputs of a model, oldest first."""
        memory = list(self._memory.get(model_name, ()))
        return memory if n is None else memory[max(0, len(memory) - n) :]

    def models(self) -> list[str]:
        """Model names with outputs (in memory, or persisted when there is a store)."""
        if self._rows is None:
            return sorted(self._memory)
        return self._rows.models()

    def last_predictions(self, symbol: str, t: int) -> dict[str, ModelOutput]:
        """The newest output of every model for ``symbol`` with timestamp <= t (as-of: nothing later)."""
        if self._rows is not None:
            outputs = [ModelOutput.from_json(payload) for payload in self._rows.last_payloads(symbol, int(t))]
            return {o.model_name: o for o in outputs}
        found: dict[str, ModelOutput] = {}
        for name, memory in self._memory.items():
            for output in reversed(memory):
                if output.symbol == symbol and output.timestamp <= t:
                    found[name] = output
                    break
        return found

    def query(
        self,
        model_name: str | None = None,
        symbol: str | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int | None = None,
    ) -> list[ModelOutput]:
        """Outputs filtered by model, symbol and time (``start <= ts < end``), oldest first; ``limit`` keeps the newest."""
        if self._rows is None:
            return self._query_memory(model_name, symbol, start, end, limit)
        return [ModelOutput.from_json(p) for p in self._rows.payloads(model_name, symbol, start, end, limit)]

    def _query_memory(
        self, model_name: str | None, symbol: str | None, start: int | None, end: int | None, limit: int | None
    ) -> list[ModelOutput]:
        names = [model_name] if model_name is not None else list(self._memory)
        hits = [
            o
            for name in names
            for o in self._memory.get(name, ())
            if (symbol is None or o.symbol == symbol)
            and (start is None or o.timestamp >= start)
            and (end is None or o.timestamp < end)
        ]
        hits.sort(key=lambda o: (o.timestamp, o.model_name))
        return hits if limit is None else hits[max(0, len(hits) - limit) :]


# ------------------------------------------------------------------------------------------------ inference history


@dataclass(frozen=True)
class InputRef:
    """What a prediction was made from, without the tensor: the input spec's id, the input's as-of time and the
    SHA-256 of its arrays (``input_hash``). The spec and time rebuild the input; the hash proves it is the same."""

    spec: str
    as_of: int
    digest: str


@dataclass(frozen=True)
class PredictionContext:
    """What ``ModelOutput`` does not carry: the checkpoint version that served, the timeframe, the input reference."""

    model_version: str
    timeframe: str
    input: InputRef


@dataclass(frozen=True)
class Prediction:
    """One prediction of the inference history."""

    output: ModelOutput
    model_version: str
    timeframe: str
    input: InputRef
    recorded_ms: int

    @property
    def model_name(self) -> str:
        return self.output.model_name

    @property
    def symbol(self) -> str:
        return self.output.symbol

    @property
    def as_of(self) -> int:
        return int(self.output.timestamp)


def spec_id(spec: InputSpec) -> str:
    """A stable id of an input spec: its preset name when it is one (``minute``), else ``spec-`` + 12 hex of its repr
    (frozen dataclasses of plain values: the same configuration gives the same id in every process)."""
    for name, candidate in PRESETS.items():
        if name != "default" and candidate == spec:
            return name
    return "spec-" + hashlib.sha256(repr(spec).encode()).hexdigest()[:12]


def input_hash(inp: BaseDataInput) -> str:
    """SHA-256 over the input's arrays in a fixed order: every candle window (symbol, timeframe, ts and OHLCV), the
    order-book vector and the microstructure fields. Indicators and pivots are functions of the windows, and last
    predictions are recorded in the history themselves, so they are left out."""
    h = hashlib.sha256()
    h.update(f"{inp.symbol}|{int(inp.timestamp)}".encode())
    for key in sorted(inp.ohlcv):
        candles = inp.ohlcv[key]
        h.update(f"|{key[0]}|{key[1]}|{len(candles)}".encode())
        h.update(np.ascontiguousarray(candles.ts, dtype=np.int64).tobytes())
        for column in (candles.open, candles.high, candles.low, candles.close, candles.volume):
            h.update(np.ascontiguousarray(column, dtype=np.float64).tobytes())
    if inp.order_book is not None:
        h.update(b"|order_book")
        h.update(np.ascontiguousarray(inp.order_book, dtype=np.float64).tobytes())
    if inp.microstructure is not None:
        for name in sorted(inp.microstructure):
            h.update(f"|{name}={float(inp.microstructure[name])!r}".encode())
    return h.hexdigest()


def input_reference(inp: BaseDataInput, spec: InputSpec | str) -> InputRef:
    """The ``InputRef`` of an assembled input (``spec``: the ``InputSpec`` it was built with, or its id)."""
    return InputRef(spec if isinstance(spec, str) else spec_id(spec), int(inp.timestamp), input_hash(inp))


class InferenceHistory:
    """Every prediction, persisted in the ``predictions`` state table (DuckDB file by default, or PostgreSQL).

    ``flush_every`` > 1 buffers validated rows and writes them ``flush_every`` at a time in one transaction (a DuckDB
    commit per prediction costs ~15 ms); reads flush first, ``flush()`` writes what waits. A crash loses at most the
    rows still buffered; ``record`` then answers whether the row was queued (a key already stored is ignored at
    flush: first write wins)."""

    def __init__(
        self,
        store: SqlStore,
        retention: RetentionPolicy = RetentionPolicy(),
        clock: Clock | None = None,
        persist_hidden: bool = False,
        flush_every: int = 1,
    ) -> None:
        if flush_every < 1:
            raise ValueError(f"flush_every must be >= 1 (got {flush_every})")
        self.rows = PredictionRepository(store)
        self.retention = retention
        self.clock = clock or WallClock()
        self.persist_hidden = persist_hidden
        self.flush_every = flush_every
        self._buffer: dict[tuple[str, str, str, str, int], PredictionRow] = {}

    def row(self, output: ModelOutput, context: PredictionContext) -> PredictionRow:
        return PredictionRow(
            output.model_name,
            context.model_version,
            output.symbol,
            context.timeframe,
            int(output.timestamp),
            context.input.spec,
            int(context.input.as_of),
            context.input.digest,
            output.model_type,
            output.action,
            float(output.confidence),
            float(output.direction_vector),
            float(output.direction_confidence),
            output.to_json(include_hidden=self.persist_hidden),
            int(self.clock.now_ms()),
        )

    def record(self, output: ModelOutput, context: PredictionContext) -> bool:
        """Validate and store; False when that (model, version, symbol, timeframe, as-of) is already stored (or, when
        buffering, already queued)."""
        row = self.row(output, context)
        if self.flush_every == 1:
            return self.rows.add(row)
        validate_row(row)
        if row.key in self._buffer:
            return False
        self._buffer[row.key] = row
        if len(self._buffer) >= self.flush_every:
            self.flush()
        return True

    def record_many(self, items: Sequence[tuple[ModelOutput, PredictionContext]]) -> int:
        """Validate all, then store in one transaction; the number newly stored."""
        self.flush()
        return self.rows.add_many([self.row(o, c) for o, c in items])

    def flush(self) -> int:
        """Write the buffered rows (one transaction); the number newly stored."""
        if not self._buffer:
            return 0
        rows, self._buffer = list(self._buffer.values()), {}
        return self.rows.add_many(rows)

    def query(
        self,
        model_name: str | None = None,
        symbol: str | None = None,
        timeframe: str | None = None,
        start: int | None = None,
        end: int | None = None,
        model_version: str | None = None,
        limit: int | None = None,
    ) -> list[Prediction]:
        """Predictions filtered by model, version, symbol, timeframe and ``start <= as_of < end``, oldest first."""
        self.flush()
        where = PredictionFilter(model_name, model_version, symbol, timeframe, start, end)
        return [prediction(r) for r in self.rows.query(where, limit)]

    def get(self, model_name: str, model_version: str, symbol: str, timeframe: str, as_of: int) -> Prediction | None:
        self.flush()
        found = self.rows.get(model_name, model_version, symbol, timeframe, as_of)
        return None if found is None else prediction(found)

    def stats(self, where: PredictionFilter = PredictionFilter()) -> list[PredictionStats]:
        self.flush()
        return self.rows.stats(where)

    def apply_retention(self, now_ms: int | None = None) -> int:
        """Delete what the retention policy expires (at ``now_ms``, default the clock's now); the number deleted."""
        self.flush()
        return self.rows.apply_retention(self.retention, self.clock.now_ms() if now_ms is None else now_ms)


def prediction(row: PredictionRow) -> Prediction:
    """The ``Prediction`` of a stored row."""
    ref = InputRef(row.input_spec, row.input_as_of, row.input_hash)
    return Prediction(ModelOutput.from_json(row.payload), row.model_version, row.timeframe, ref, row.recorded_ms)
