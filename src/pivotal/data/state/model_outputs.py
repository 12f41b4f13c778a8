"""``ModelOutputRepository``: persisted model outputs, keyed by (model_name, symbol, ts); the payload is the output's
JSON (this layer stores text and does not know ``ModelOutput``). Outputs are immutable: first write wins."""

from __future__ import annotations

from dataclasses import dataclass

from pivotal.data.state.migrations import Migration, Schema, SqlStore, migrate, statements

SCHEMA = Schema(
    "model_outputs",
    (
        Migration(
            1,
            "model_outputs",
            statements(
                "CREATE TABLE IF NOT EXISTS model_outputs ("
                "model_name TEXT NOT NULL, symbol TEXT NOT NULL, ts BIGINT NOT NULL, model_type TEXT NOT NULL, "
                "action TEXT NOT NULL, confidence DOUBLE PRECISION NOT NULL, payload TEXT NOT NULL, "
                "PRIMARY KEY (model_name, symbol, ts))"
            ),
        ),
    ),
    legacy_tables=("model_outputs",),
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


@dataclass(frozen=True)
class OutputRow:
    model_name: str
    symbol: str
    ts: int
    model_type: str
    action: str
    confidence: float
    payload: str


class ModelOutputRepository:
    """The ``model_outputs`` table; the schema is migrated when the repository is created."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        migrate(store, SCHEMA)

    def exists(self, model_name: str, symbol: str, ts: int) -> bool:
        rows = self.store.query(
            "SELECT 1 FROM model_outputs WHERE model_name = ? AND symbol = ? AND ts = ?", (model_name, symbol, int(ts))
        )
        return bool(rows)

    def add(self, row: OutputRow) -> bool:
        """Insert; False (and nothing changes) when that model already has an output for the symbol and time."""
        if self.exists(row.model_name, row.symbol, row.ts):
            return False
        values = (row.model_name, row.symbol, int(row.ts), row.model_type, row.action, float(row.confidence), row.payload)
        self.store.execute(INSERT, values)
        return True

    def models(self) -> list[str]:
        return [str(r[0]) for r in self.store.query("SELECT DISTINCT model_name FROM model_outputs ORDER BY model_name")]

    def last_payloads(self, symbol: str, t: int) -> list[str]:
        """The newest payload of every model for ``symbol`` with ts <= t, by model name."""
        return [str(r[0]) for r in self.store.query(LAST_SQL, (symbol, int(t), symbol))]

    def payloads(
        self,
        model_name: str | None = None,
        symbol: str | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int | None = None,
    ) -> list[str]:
        """Payloads filtered by model, symbol and ``start <= ts < end``, oldest first; ``limit`` keeps the newest."""
        clauses: list[str] = []
        params: list[object] = []
        for clause, value in (("model_name = ?", model_name), ("symbol = ?", symbol), ("ts >= ?", start), ("ts < ?", end)):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT payload FROM model_outputs{where} ORDER BY ts DESC, model_name DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [str(r[0]) for r in reversed(self.store.query(sql, params))]
