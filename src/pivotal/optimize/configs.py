"""Trained configurations: lifecycle stage, the store repository, and the JSON template for live use.

Tables live in the market store (DuckDB or PostgreSQL) through its portable ``execute``/``query``; JSON is TEXT,
timestamps are epoch ms. Non-finite floats (NaN, ±inf) are stored as JSON ``null``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Protocol


class SqlStore(Protocol):
    """The part of ``MarketStore`` this module needs."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


class Lifecycle(StrEnum):
    DISCOVERY = "DISCOVERY"
    VALIDATION = "VALIDATION"
    MATURE = "MATURE"


DISCOVERY_MAX_TRADES = 30  # fewer trades than this: DISCOVERY
MATURE_MIN_TRADES = 100  # more trades than this, and annualised Sharpe above MATURE_MIN_SHARPE: MATURE
MATURE_MIN_SHARPE = 1.5


def lifecycle_stage(sample_size: int, sharpe: float) -> Lifecycle:
    """DISCOVERY (< 30 trades), VALIDATION (30..100, or > 100 with Sharpe <= 1.5), MATURE (> 100 and Sharpe > 1.5)."""
    if sample_size < DISCOVERY_MAX_TRADES:
        return Lifecycle.DISCOVERY
    if sample_size > MATURE_MIN_TRADES and math.isfinite(sharpe) and sharpe > MATURE_MIN_SHARPE:
        return Lifecycle.MATURE
    return Lifecycle.VALIDATION


CIRCUIT_BREAKER_DEFAULTS: dict[str, float | int] = {
    "max_daily_loss": 0.02,
    "max_correlation_spike": 0.8,
    "unusual_market_threshold": 3.0,  # in standard deviations
    "latency_threshold_ms": 500,
    "consecutive_losses_limit": 5,
    "max_adverse_selection": 0.6,
    "regime_break_threshold": 0.3,
}


@dataclass(frozen=True)
class TrainedConfiguration:
    id: str
    strategy: str
    pair: str
    exchange: str
    timeframe: str
    parameters: dict[str, Any]
    is_metrics: dict[str, Any]
    oos_metrics: dict[str, Any]
    significance: dict[str, Any]
    sample_size: int
    lifecycle_stage: Lifecycle
    job_id: str | None = None
    created_at: int = field(default_factory=lambda: now_ms())
    updated_at: int = field(default_factory=lambda: now_ms())


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def to_json(value: Any) -> str:
    return json.dumps(_finite(value), sort_keys=True, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _finite(value.item())
    return value


CONFIG_COLUMNS = (
    "id, job_id, strategy, pair, exchange, timeframe, parameters, is_metrics, oos_metrics, significance, "
    "sample_size, lifecycle_stage, created_at, updated_at"
)

CONFIG_DDL = """CREATE TABLE IF NOT EXISTS trained_configurations (
    id TEXT PRIMARY KEY, job_id TEXT, strategy TEXT NOT NULL, pair TEXT NOT NULL, exchange TEXT NOT NULL,
    timeframe TEXT NOT NULL, parameters TEXT NOT NULL, is_metrics TEXT NOT NULL, oos_metrics TEXT NOT NULL,
    significance TEXT NOT NULL, sample_size INTEGER NOT NULL, lifecycle_stage TEXT NOT NULL,
    created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)"""


class ConfigurationRepository:
    """``trained_configurations`` on a store; ``save`` upserts by id (a resumed job rewrites its own rows)."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        store.execute(CONFIG_DDL)

    def save(self, config: TrainedConfiguration) -> None:
        existing = self.get(config.id)
        created = existing.created_at if existing is not None else config.created_at
        c = replace(config, created_at=created, updated_at=now_ms())
        self.store.execute(
            f"""INSERT INTO trained_configurations ({CONFIG_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (id) DO UPDATE SET job_id = excluded.job_id, parameters = excluded.parameters,
            is_metrics = excluded.is_metrics, oos_metrics = excluded.oos_metrics, significance = excluded.significance,
            sample_size = excluded.sample_size, lifecycle_stage = excluded.lifecycle_stage,
            updated_at = excluded.updated_at""",
            (
                c.id, c.job_id, c.strategy, c.pair, c.exchange, c.timeframe, to_json(c.parameters),
                to_json(c.is_metrics), to_json(c.oos_metrics), to_json(c.significance), int(c.sample_size),
                c.lifecycle_stage.value, c.created_at, c.updated_at,
            ),
        )  # fmt: skip

    def get(self, config_id: str) -> TrainedConfiguration | None:
        rows = self.store.query(f"SELECT {CONFIG_COLUMNS} FROM trained_configurations WHERE id = ?", (config_id,))
        return _from_row(rows[0]) if rows else None

    def list(self, job_id: str | None = None, strategy: str | None = None) -> list[TrainedConfiguration]:
        where, params = [], []
        if job_id is not None:
            where.append("job_id = ?")
            params.append(job_id)
        if strategy is not None:
            where.append("strategy = ?")
            params.append(strategy)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self.store.query(
            f"SELECT {CONFIG_COLUMNS} FROM trained_configurations{clause} ORDER BY exchange, pair, timeframe, id", params
        )
        return [_from_row(r) for r in rows]


def _from_row(row: tuple[Any, ...]) -> TrainedConfiguration:
    (cid, job_id, strategy, pair, exchange, timeframe, params, is_m, oos_m, sig, size, stage, created, updated) = row
    return TrainedConfiguration(
        id=cid,
        job_id=job_id,
        strategy=strategy,
        pair=pair,
        exchange=exchange,
        timeframe=timeframe,
        parameters=json.loads(params),
        is_metrics=json.loads(is_m),
        oos_metrics=json.loads(oos_m),
        significance=json.loads(sig),
        sample_size=int(size),
        lifecycle_stage=Lifecycle(stage),
        created_at=int(created),
        updated_at=int(updated),
    )


TEMPLATE_VERSION = 1


def export_template(config: TrainedConfiguration) -> dict[str, Any]:
    """The JSON document a live runner loads: what to trade, with which parameters, under which circuit breakers."""
    return _finite(
        {
            "template_version": TEMPLATE_VERSION,
            "configuration_id": config.id,
            "strategy": config.strategy,
            "exchange": config.exchange,
            "pair": config.pair,
            "timeframe": config.timeframe,
            "parameters": config.parameters,
            "lifecycle_stage": config.lifecycle_stage.value,
            "sample_size": config.sample_size,
            "metrics": {"in_sample": config.is_metrics, "out_of_sample": config.oos_metrics},
            "significance": config.significance,
            "circuit_breakers": dict(CIRCUIT_BREAKER_DEFAULTS),
            "live_trading_enabled": False,  # a template never switches live trading on by itself
        }
    )
