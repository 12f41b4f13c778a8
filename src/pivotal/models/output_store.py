"""Store of ``ModelOutput``s: the last ``capacity`` (1,000) per model in memory, every output persisted.

Persistence goes through the ``MarketStore`` portable SQL (``execute``/``query``, ``?`` placeholders) into the
table ``model_outputs``, keyed by (model_name, symbol, ts). Outputs are immutable once emitted: a second output
of the same model for the same symbol and timestamp is ignored (first write wins) and ``add`` returns False.
Hidden states are not persisted unless ``persist_hidden=True`` (they can be large); memory keeps them.

With a store, queries and ``last_predictions`` read the store (complete history, survives restarts); without
one they read memory.
"""

from __future__ import annotations

from collections import deque

from pivotal.data.store import MarketStore
from pivotal.models.io import ModelOutput

DEFAULT_CAPACITY = 1000

DDL = (
    "CREATE TABLE IF NOT EXISTS model_outputs ("
    "model_name TEXT NOT NULL, symbol TEXT NOT NULL, ts BIGINT NOT NULL, model_type TEXT NOT NULL, "
    "action TEXT NOT NULL, confidence DOUBLE PRECISION NOT NULL, payload TEXT NOT NULL, "
    "PRIMARY KEY (model_name, symbol, ts))"
)
INSERT = (
    "INSERT INTO model_outputs (model_name, symbol, ts, model_type, action, confidence, payload) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (model_name, symbol, ts) DO NOTHING"
)
LAST_SQL = (
    "SELECT o.payload FROM model_outputs o JOIN ("
    "SELECT model_name, MAX(ts) AS ts FROM model_outputs WHERE symbol = ? AND ts <= ? GROUP BY model_name"
    ") m ON o.model_name = m.model_name AND o.ts = m.ts WHERE o.symbol = ? ORDER BY o.model_name"
)


class OutputStore:
    """Model outputs in memory (bounded per model) and, when ``store`` is given, persisted in ``model_outputs``."""

    def __init__(self, store: MarketStore | None = None, capacity: int = DEFAULT_CAPACITY, persist_hidden: bool = False):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1 (got {capacity})")
        self.store = store
        self.capacity = capacity
        self.persist_hidden = persist_hidden
        self._memory: dict[str, deque[ModelOutput]] = {}
        self._keys: dict[str, set[tuple[str, int]]] = {}
        if store is not None:
            store.execute(DDL)

    def add(self, output: ModelOutput) -> bool:
        """Record one output; False (and nothing changes) if this model already emitted for that symbol and time."""
        key = (output.symbol, int(output.timestamp))
        keys = self._keys.setdefault(output.model_name, set())
        if key in keys or self._persisted(output):
            return False
        if self.store is not None:
            payload = output.to_json(include_hidden=self.persist_hidden)
            row = (output.model_name, output.symbol, key[1], output.model_type, output.action, float(output.confidence), payload)
            self.store.execute(INSERT, row)
        memory = self._memory.setdefault(output.model_name, deque())
        if len(memory) == self.capacity:
            evicted = memory.popleft()
            keys.discard((evicted.symbol, int(evicted.timestamp)))
        memory.append(output)
        keys.add(key)
        return True

    def _persisted(self, output: ModelOutput) -> bool:
        if self.store is None:
            return False
        rows = self.store.query(
            "SELECT 1 FROM model_outputs WHERE model_name = ? AND symbol = ? AND ts = ?",
            (output.model_name, output.symbol, int(output.timestamp)),
        )
        return bool(rows)

    def recent(self, model_name: str, n: int | None = None) -> list[ModelOutput]:
        """The newest ``n`` (default all, at most ``capacity``) in-memory outputs of a model, oldest first."""
        memory = list(self._memory.get(model_name, ()))
        return memory if n is None else memory[max(0, len(memory) - n) :]

    def models(self) -> list[str]:
        """Model names with outputs (in memory, or persisted when there is a store)."""
        if self.store is None:
            return sorted(self._memory)
        return [str(r[0]) for r in self.store.query("SELECT DISTINCT model_name FROM model_outputs ORDER BY model_name")]

    def last_predictions(self, symbol: str, t: int) -> dict[str, ModelOutput]:
        """The newest output of every model for ``symbol`` with timestamp <= t (as-of: nothing later)."""
        if self.store is not None:
            rows = self.store.query(LAST_SQL, (symbol, int(t), symbol))
            outputs = [ModelOutput.from_json(str(r[0])) for r in rows]
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
        if self.store is None:
            return self._query_memory(model_name, symbol, start, end, limit)
        where, params = _filters(model_name, symbol, start, end)
        sql = f"SELECT payload FROM model_outputs{where} ORDER BY ts DESC, model_name DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = self.store.query(sql, params)
        return [ModelOutput.from_json(str(r[0])) for r in reversed(rows)]

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


def _filters(model_name: str | None, symbol: str | None, start: int | None, end: int | None) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    for clause, value in (("model_name = ?", model_name), ("symbol = ?", symbol), ("ts >= ?", start), ("ts < ?", end)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params
