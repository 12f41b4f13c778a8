"""Store of ``ModelOutput``s: the last ``capacity`` (1,000) per model in memory, every output persisted.

Persistence goes through ``pivotal.data.state.model_outputs.ModelOutputRepository`` (table ``model_outputs``,
versioned schema), keyed by (model_name, symbol, ts). Outputs are immutable once emitted: a second output
of the same model for the same symbol and timestamp is ignored (first write wins) and ``add`` returns False.
Hidden states are not persisted unless ``persist_hidden=True`` (they can be large); memory keeps them.

With a store, queries and ``last_predictions`` read the store (complete history, survives restarts); without
one they read memory.
"""

from __future__ import annotations

from collections import deque

from pivotal.data.state.model_outputs import ModelOutputRepository, OutputRow
from pivotal.data.store import MarketStore
from pivotal.models.io import ModelOutput

DEFAULT_CAPACITY = 1000


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
        self._rows = ModelOutputRepository(store) if store is not None else None

    def add(self, output: ModelOutput) -> bool:
        """Record one output; False (and nothing changes) if this model already emitted for that symbol and time."""
        key = (output.symbol, int(output.timestamp))
        keys = self._keys.setdefault(output.model_name, set())
        if key in keys or self._persisted(output):
            return False
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
