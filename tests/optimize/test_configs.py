"""Lifecycle boundaries, configuration and job repositories on DuckDB and PostgreSQL, the live template."""

from __future__ import annotations

import json
import math

import pytest

from pivotal.data.store import MarketStore
from pivotal.optimize.configs import (
    CIRCUIT_BREAKER_DEFAULTS,
    ConfigurationRepository,
    Lifecycle,
    TrainedConfiguration,
    export_template,
    lifecycle_stage,
)
from pivotal.optimize.jobs import JobService, JobStatus

# `store` is the root conftest fixture: each test runs on DuckDB and on PostgreSQL (throw-away schema).


@pytest.mark.parametrize(
    ("trades", "sharpe", "stage"),
    [
        (0, 9.0, Lifecycle.DISCOVERY),
        (29, 9.0, Lifecycle.DISCOVERY),
        (30, 0.0, Lifecycle.VALIDATION),
        (100, 9.0, Lifecycle.VALIDATION),  # MATURE needs strictly more than 100 trades
        (101, 1.5, Lifecycle.VALIDATION),  # ... and Sharpe strictly above 1.5
        (101, 1.5001, Lifecycle.MATURE),
        (500, math.nan, Lifecycle.VALIDATION),
    ],
)
def test_lifecycle_boundaries(trades: int, sharpe: float, stage: Lifecycle) -> None:
    assert lifecycle_stage(trades, sharpe) is stage


def config(cid: str = "c1", job_id: str | None = "job1", sharpe: float = 1.2) -> TrainedConfiguration:
    return TrainedConfiguration(
        id=cid,
        strategy="liquidity_sweep",
        pair="BTC/USDT",
        exchange="binance",
        timeframe="1h",
        parameters={"pierce_depth": 0.002, "rejection_candles": 3},
        is_metrics={"net_profit_pct": 12.5, "trades": 40, "profit_factor": math.inf},
        oos_metrics={"net_profit_pct": 3.25, "trades": 12, "sharpe": sharpe},
        significance={"dsr": 0.61, "pbo": 0.25, "p_value": 0.04, "z_score": math.nan},
        sample_size=12,
        lifecycle_stage=Lifecycle.DISCOVERY,
        job_id=job_id,
        created_at=1_700_000_000_000,
        updated_at=1_700_000_000_000,
    )


def test_configuration_round_trip_and_upsert(store: MarketStore) -> None:
    repo = ConfigurationRepository(store)
    repo.save(config())
    got = repo.get("c1")
    assert got is not None
    assert got.parameters == {"pierce_depth": 0.002, "rejection_candles": 3}
    assert got.is_metrics["profit_factor"] is None and got.significance["z_score"] is None  # non-finite -> null
    assert got.oos_metrics == {"net_profit_pct": 3.25, "trades": 12, "sharpe": 1.2}
    assert (got.lifecycle_stage, got.sample_size, got.job_id, got.created_at) == (
        Lifecycle.DISCOVERY,
        12,
        "job1",
        1_700_000_000_000,
    )
    repo.save(config(sharpe=2.0))  # same id: updated in place, creation time kept
    again = repo.get("c1")
    assert again is not None and again.oos_metrics["sharpe"] == 2.0 and again.created_at == 1_700_000_000_000
    assert again.updated_at > 1_700_000_000_000
    repo.save(config("c2", job_id="job2"))
    assert [c.id for c in repo.list()] == ["c1", "c2"]
    assert [c.id for c in repo.list(job_id="job2")] == ["c2"]
    assert repo.get("nope") is None


def test_export_template_is_json_with_circuit_breakers() -> None:
    template = export_template(config())
    text = json.dumps(template, allow_nan=False)  # strict JSON: no NaN/inf leaks
    assert json.loads(text)["circuit_breakers"] == {
        "max_daily_loss": 0.02,
        "max_correlation_spike": 0.8,
        "unusual_market_threshold": 3.0,
        "latency_threshold_ms": 500,
        "consecutive_losses_limit": 5,
        "max_adverse_selection": 0.6,
        "regime_break_threshold": 0.3,
    }
    assert template["circuit_breakers"] is not CIRCUIT_BREAKER_DEFAULTS
    assert template["parameters"] == {"pierce_depth": 0.002, "rejection_candles": 3}
    assert (template["strategy"], template["pair"], template["lifecycle_stage"], template["live_trading_enabled"]) == (
        "liquidity_sweep",
        "BTC/USDT",
        "DISCOVERY",
        False,
    )


def test_job_service_lifecycle(store: MarketStore) -> None:
    seen: list[float] = []

    def runner(job_id: str, spec: dict, progress) -> list[TrainedConfiguration]:
        progress(0.5)
        seen.append(service.status(job_id).progress)
        return [config("c9", job_id=job_id)]

    service = JobService(store, runner)
    job = service.start({"method": "random", "samples": 10}, job_id="j1")
    assert (job.status, job.progress, job.started_at) == (JobStatus.PENDING, 0.0, None)
    assert service.start({"method": "random", "samples": 10}, job_id="j1") == job  # same spec: the same job
    with pytest.raises(ValueError, match="exists with a different spec"):
        service.start({"method": "grid"}, job_id="j1")
    configs = service.run("j1")
    assert seen == [0.5]
    done = service.status("j1")
    assert (done.status, done.progress, done.error) == (JobStatus.COMPLETED, 1.0, None)
    assert done.started_at is not None and done.finished_at is not None and done.finished_at >= done.started_at
    assert [c.id for c in service.results("j1")] == [c.id for c in configs] == ["c9"]
    with pytest.raises(KeyError, match="no optimization job 'zz'"):
        service.status("zz")


def test_failed_job_records_the_error_and_can_be_rerun(store: MarketStore) -> None:
    attempts: list[int] = []

    def flaky(job_id: str, spec: dict, progress) -> list[TrainedConfiguration]:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("market binance BTC/USDT 1h not in the store")
        return []

    service = JobService(store, flaky)
    service.start({"x": 1}, job_id="j2")
    with pytest.raises(RuntimeError):
        service.run("j2")
    failed = service.status("j2")
    assert failed.status is JobStatus.FAILED and failed.error == "RuntimeError: market binance BTC/USDT 1h not in the store"
    assert service.run("j2") == [] and service.status("j2").status is JobStatus.COMPLETED
