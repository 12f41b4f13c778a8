"""The optimize and configs use cases (``pivotal.services.optimize`` / ``.configs``) on a DuckDB data directory:
spec building refusals, configurations list/show/export, the leaderboard order, job status, injected clock."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from pivotal.config import Settings
from pivotal.core.clock import SimulatedClock
from pivotal.core.errors import UserInputError
from pivotal.data.backends import open_store
from pivotal.optimize.configs import ConfigurationRepository, Lifecycle, TrainedConfiguration
from pivotal.optimize.jobs import JobService, JobStatus
from pivotal.optimize.pipeline import Market
from pivotal.services.configs import configuration_template, export_configuration, get_configuration, list_configurations
from pivotal.services.optimize import (
    build_spec,
    leaderboard,
    list_optimizations,
    optimization_status,
    start_optimization,
)

pytestmark = pytest.mark.unit


def _config(cid: str, net: float, pair: str = "BTC/USDT", job_id: str = "j") -> TrainedConfiguration:
    return TrainedConfiguration(
        id=cid, strategy="liquidity_sweep", pair=pair, exchange="binance", timeframe="1h", parameters={"a": 1},
        is_metrics={}, oos_metrics={"net_profit_pct": net}, significance={"dsr": 0.5}, sample_size=40,
        lifecycle_stage=Lifecycle.VALIDATION, job_id=job_id, created_at=5, updated_at=5,
    )  # fmt: skip


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"method": "annealing"}, "method 'annealing': choose one of grid, random, bayesian"),
        ({"method": "bayesian", "sampler": "sa"}, "unknown sampler 'sa'; choose one of cmaes, gp, nsga2, qmc, random, tpe"),
        ({"metric": "alpha"}, "metric 'ALPHA': choose one of"),
        ({"walk_forward": "90-7-30"}, "walk-forward '90-7-30': expected TRAIN/GAP/TEST[/STEP] in days, e.g. 90/7/30"),
        ({"purge": "soon"}, "--purge 'soon': expected a duration >= 0"),
        ({"symbols": [" "]}, "give at least one symbol (--symbols) and one timeframe (--timeframes)"),
        ({"input_file": Path("/nonexistent/x.parquet")}, "--input /nonexistent/x.parquet: no such file"),
    ],
)
def test_build_spec_refuses_with_one_line(options: dict, message: str) -> None:
    with pytest.raises(UserInputError) as exc_info:
        build_spec(**options)
    assert str(exc_info.value).startswith(message) and "\n" not in str(exc_info.value)


def test_build_spec_parses_durations_and_walk_forward_none(tmp_path: Path) -> None:
    source = tmp_path / "bars.parquet"
    source.write_bytes(b"")
    spec = build_spec(symbols=["BTC/USDT", ""], timeframes=["4h"], walk_forward="None", purge="12h", embargo="2d",
                      metric="sharpe", input_file=source)  # fmt: skip
    assert (spec.symbols, spec.timeframes, spec.walk_forward, spec.purge_ms, spec.embargo_ms, spec.metric) == (
        ("BTC/USDT",), ("4h",), None, 12 * 3_600_000, 2 * 86_400_000, "SHARPE",
    )  # fmt: skip
    assert spec.input == str(source.resolve())
    with pytest.raises(UserInputError, match="--input holds one series"):
        build_spec(symbols=["BTC/USDT", "ETH/USDT"], input_file=source)


def test_leaderboard_ranks_by_out_of_sample_net_profit_missing_last() -> None:
    spec = build_spec(symbols=["A/X", "B/X", "C/X", "D/X"], timeframes=["1h"])
    configs = [_config("j:binance:A/X:1h", 1.5), _config("j:binance:B/X:1h", math.nan), _config("j:binance:D/X:1h", 7.0)]
    rows = leaderboard("j", spec, configs)
    assert [(m.symbol, c.id if c else None) for m, c in rows] == [
        ("D/X", "j:binance:D/X:1h"), ("A/X", "j:binance:A/X:1h"), ("B/X", "j:binance:B/X:1h"), ("C/X", None),
    ]  # fmt: skip
    assert rows[-1][0] == Market("binance", "C/X", "1h")


def test_configurations_list_show_export(settings: Settings, tmp_path: Path) -> None:
    assert list_configurations(settings) == []
    store = open_store(settings)
    repo = ConfigurationRepository(store, SimulatedClock(1_000))
    repo.save(_config("b", 1.0))
    repo.save(_config("a", 2.0, pair="ETH/USDT", job_id="other"))
    store.close()
    assert [c.id for c in list_configurations(settings)] == ["b", "a"]  # by exchange, pair, timeframe, id
    assert [c.id for c in list_configurations(settings, job_id="other")] == ["a"]
    assert get_configuration(settings, "b") == replace(_config("b", 1.0), updated_at=1_000)
    template = configuration_template(settings, "a")
    assert (template["configuration_id"], template["pair"], template["live_trading_enabled"]) == ("a", "ETH/USDT", False)
    out = export_configuration(settings, "a", tmp_path / "live" / "a.json")
    assert json.loads(out.read_text()) == template and not list(out.parent.glob(".*.tmp"))
    with pytest.raises(UserInputError, match=r"^no trained configuration 'zz'; see `pivotal configs list`$"):
        get_configuration(settings, "zz")


def test_job_status_and_refusal_before_the_record(settings: Settings) -> None:
    with pytest.raises(UserInputError, match=r"^no optimization job 'nope'; start one with `pivotal optimize`$"):
        optimization_status(settings, "nope")
    with pytest.raises(UserInputError, match="unknown strategy 'nope'; registered:"):
        start_optimization(settings, build_spec(strategy="nope"), "j1")
    assert list_optimizations(settings) == []  # refused before any job record


def test_job_times_come_from_the_injected_clock(settings: Settings) -> None:
    clock = SimulatedClock(100)

    def runner(job_id: str, spec: dict, progress) -> list[TrainedConfiguration]:
        clock.advance(50)
        progress(0.5)
        clock.advance(50)
        return [_config("c", 1.0, job_id=job_id)]

    store = open_store(settings)
    service = JobService(store, runner, clock)
    service.start({"x": 1}, "j1")
    clock.advance(10)
    service.run("j1")
    store.close()
    job = optimization_status(settings, "j1")
    assert (job.status, job.created_at, job.started_at, job.finished_at, job.updated_at) == (
        JobStatus.COMPLETED,
        100,
        110,
        210,
        210,
    )
    assert [j.id for j in list_optimizations(settings)] == ["j1"]
    assert get_configuration(settings, "c").updated_at == 210
