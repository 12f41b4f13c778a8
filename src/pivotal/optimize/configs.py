"""Trained configurations: lifecycle stage, the repository, and the JSON template for live use.

Rows are kept by ``pivotal.data.state.configurations.ConfigurationRecords`` (table, schema version, SQL); this module
maps them to :class:`TrainedConfiguration`. JSON columns are TEXT, timestamps epoch ms, and non-finite floats
(NaN, ±inf) are stored as JSON ``null``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from pivotal.core.clock import Clock, WallClock
from pivotal.data.state.configurations import ConfigurationRecords
from pivotal.data.state.migrations import SqlStore


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


from pivotal.risk.config import CIRCUIT_BREAKER_DEFAULTS  # noqa: E402  (one definition: the risk config)


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
    created_at: int = field(default_factory=lambda: WallClock().now_ms())
    updated_at: int = field(default_factory=lambda: WallClock().now_ms())


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


class ConfigurationRepository:
    """Trained configurations on a store; ``save`` upserts by id (a resumed job rewrites its own rows) and keeps the
    first ``created_at``; ``updated_at`` comes from ``clock``."""

    def __init__(self, store: SqlStore, clock: Clock | None = None) -> None:
        self.records = ConfigurationRecords(store)
        self.clock = clock or WallClock()

    def save(self, config: TrainedConfiguration) -> None:
        c = replace(config, updated_at=self.clock.now_ms())
        self.records.save(
            {
                "id": c.id, "job_id": c.job_id, "strategy": c.strategy, "pair": c.pair, "exchange": c.exchange,
                "timeframe": c.timeframe, "parameters": to_json(c.parameters), "is_metrics": to_json(c.is_metrics),
                "oos_metrics": to_json(c.oos_metrics), "significance": to_json(c.significance),
                "sample_size": int(c.sample_size), "lifecycle_stage": c.lifecycle_stage.value,
                "created_at": c.created_at, "updated_at": c.updated_at,
            }
        )  # fmt: skip

    def get(self, config_id: str) -> TrainedConfiguration | None:
        row = self.records.get(config_id)
        return _from_row(row) if row is not None else None

    def list(self, job_id: str | None = None, strategy: str | None = None) -> list[TrainedConfiguration]:
        """By exchange, pair, timeframe, id."""
        return [_from_row(r) for r in self.records.list(job_id=job_id, strategy=strategy)]


def _from_row(row: dict[str, Any]) -> TrainedConfiguration:
    return TrainedConfiguration(
        id=row["id"],
        job_id=row["job_id"],
        strategy=row["strategy"],
        pair=row["pair"],
        exchange=row["exchange"],
        timeframe=row["timeframe"],
        parameters=json.loads(row["parameters"]),
        is_metrics=json.loads(row["is_metrics"]),
        oos_metrics=json.loads(row["oos_metrics"]),
        significance=json.loads(row["significance"]),
        sample_size=int(row["sample_size"]),
        lifecycle_stage=Lifecycle(row["lifecycle_stage"]),
        created_at=int(row["created_at"]),
        updated_at=int(row["updated_at"]),
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
