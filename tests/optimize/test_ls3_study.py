"""LS3 walk-forward studies on real Coinbase BTC-USD 1h bars: stored configurations, lifecycle, significance, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pivotal.cli.main import app
from pivotal.config import Settings
from pivotal.data.candles import Candles
from pivotal.data.duckdb_store import DuckDBStore
from pivotal.optimize.configs import ConfigurationRepository, lifecycle_stage
from pivotal.optimize.jobs import JobStatus
from pivotal.optimize.ls3 import LS3Objective
from pivotal.optimize.objective import Objective
from pivotal.optimize.parallel import LocalRunner
from pivotal.optimize.pipeline import OptimizeSpec
from pivotal.optimize.service import OptimizationJobs
from pivotal.strategies.ls3.sweep import LS3_GRID

BARS = 9000  # 2017-12-01 .. 2018-12-10: a bull top, a crash and a range


@pytest.fixture(scope="module")
def btc_1h(shared_data: Path) -> Candles:
    frame = pd.read_parquet(shared_data / "coinbase" / "BTCUSD-1h.parquet").iloc[:BARS]
    return Candles.from_frame(frame, exchange="coinbase", symbol="BTC/USD", timeframe="1h")


SPEC = OptimizeSpec(
    exchange="coinbase",
    symbols=("BTC/USD",),
    timeframes=("1h",),
    method="random",
    samples=120,
    walk_forward="60/7/30",
    min_trades=8,
    seed=3,
    pbo_candidates=64,
)


def test_walk_forward_random_study_stores_a_configuration(btc_1h: Candles, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    store = DuckDBStore(tmp_path / "study.duckdb")
    store.write_candles(btc_1h, source="coinbase/BTCUSD-1h.parquet")
    jobs = OptimizationJobs(settings, store, LocalRunner(1))
    job = jobs.service.start(SPEC.to_dict(), "ls3-test")
    configs = jobs.service.run(job.id)
    assert jobs.service.status(job.id).status is JobStatus.COMPLETED
    assert len(configs) == 1 and len(jobs.reports) == 1
    config, report = configs[0], jobs.reports[0]

    stored = ConfigurationRepository(store).get("ls3-test:coinbase:BTC/USD:1h")
    assert stored is not None and stored.parameters == config.parameters
    assert all(config.parameters[name] in values for name, values in LS3_GRID.items())

    wf = report.walk_forward
    assert len(wf.folds) == config.oos_metrics["folds"] > 5
    objective = LS3Objective.from_candles(btc_1h)
    assert isinstance(objective, Objective)  # the adapter satisfies the optimisers' protocol
    for fold in wf.folds:
        if fold.best_index < 0:
            continue
        assert fold.is_metrics["trades"] >= SPEC.min_trades  # the winner met the minimum in its train window
        # causal: every OOS trade enters after the test window opened (signal inside it, fill at the next open)
        assert np.all(fold.oos_trades.entry_bar > fold.fold.test.start)
        redo = objective.evaluate_indices(np.array([fold.best_index]), fold.fold.test)
        assert redo["trades"][0] == len(fold.oos_trades.returns) == fold.oos_metrics["trades"]
    assert config.sample_size == len(wf.oos_trades.returns) == config.oos_metrics["trades"]
    assert config.oos_metrics["net_profit_pct"] == pytest.approx((np.prod(1 + wf.oos_trades.returns) - 1) * 100)

    sig = config.significance
    assert sig["returns_tested"] == "out_of_sample" and sig["n_trials"] == 120
    assert 0 < sig["p_value"] <= 1 and 0 <= sig["pbo"] <= 1
    assert math.isnan(sig["dsr"]) or 0 <= sig["dsr"] <= 1
    assert config.lifecycle_stage is lifecycle_stage(config.sample_size, sig["sharpe_annualised"])
    assert isinstance(sig["overfit"], bool)
    store.close()


def test_resumed_job_returns_the_same_configuration(btc_1h: Candles, tmp_path: Path) -> None:
    """Running a job id again recomputes nothing: every fold's chunks are restored from the Optuna storage."""
    settings = Settings(data_dir=tmp_path)
    store = DuckDBStore(tmp_path / "study.duckdb")
    store.write_candles(btc_1h, source="coinbase/BTCUSD-1h.parquet")
    spec = OptimizeSpec(**{**SPEC.to_dict(), "symbols": ("BTC/USD",), "timeframes": ("1h",), "samples": 40})
    first = OptimizationJobs(settings, store, LocalRunner(1))
    first.service.start(spec.to_dict(), "again")
    before = first.service.run("again")[0]
    store.execute("UPDATE optimization_jobs SET status = 'FAILED' WHERE id = 'again'")  # as if killed before the end
    second = OptimizationJobs(settings, store, LocalRunner(1))
    after = second.service.run("again")[0]
    assert after.parameters == before.parameters and after.sample_size == before.sample_size
    folds = second.reports[0].walk_forward.folds
    assert [f.best_index for f in folds] == [f.best_index for f in first.reports[0].walk_forward.folds]
    store.close()


def test_cli_optimize_then_configs_list_show_export(shared_data: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    data_dir = ["--data-dir", str(tmp_path)]
    source = shared_data / "coinbase" / "BTCUSD-1h.parquet"
    args = ["optimize", "--input", str(source), "--exchange", "coinbase", "--symbols", "BTC/USD", "--timeframes", "1h"]
    args += ["--method", "bayesian", "--samples", "6", "--min-trades", "8", "--job-id", "cli1", "--no-progress"]
    args += ["--walk-forward", "240/7/120", *data_dir]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Leaderboard: significance" in result.output and "cli1:coinbase:BTC/USD:1h" in result.output

    listed = runner.invoke(app, ["configs", "list", *data_dir])
    assert listed.exit_code == 0 and "cli1:coinbase:BTC/USD:1h" in listed.output

    out = tmp_path / "live" / "cfg.json"
    exported = runner.invoke(app, ["configs", "export", "cli1:coinbase:BTC/USD:1h", "--out", str(out), *data_dir])
    assert exported.exit_code == 0, exported.output
    template = json.loads(out.read_text())
    assert template["strategy"] == "liquidity_sweep" and template["circuit_breakers"]["max_daily_loss"] == 0.02
    assert set(template["parameters"]) == set(LS3_GRID)

    missing = runner.invoke(app, ["configs", "show", "nope", *data_dir])
    assert missing.exit_code == 1 and "no trained configuration 'nope'" in missing.output


def test_cli_rejects_bad_options(tmp_path: Path) -> None:
    runner = CliRunner()
    bad_method = runner.invoke(app, ["optimize", "--method", "annealing", "--data-dir", str(tmp_path)])
    said = " ".join(bad_method.output.replace("│", " ").split())
    assert bad_method.exit_code == 2 and "'annealing' is not one of 'grid', 'random', 'bayesian'" in said  # a usage error
    bad_wf = runner.invoke(app, ["optimize", "--walk-forward", "90-7-30", "--data-dir", str(tmp_path)])
    assert bad_wf.exit_code == 1 and "expected TRAIN/GAP/TEST" in bad_wf.output
    empty = runner.invoke(
        app, ["optimize", "--exchange", "kraken", "--symbols", "XBT/EUR", "--data-dir", str(tmp_path), "--no-progress"]
    )
    assert empty.exit_code == 1 and "no stored candles for kraken XBT/EUR 1h: the store is empty" in empty.output
    assert "job " not in empty.output  # refused before a job record was created
    missing = runner.invoke(app, ["optimize", "--input", str(tmp_path / "nope.parquet"), "--data-dir", str(tmp_path)])
    assert missing.exit_code == 1 and "nope.parquet: no such file" in " ".join(missing.output.split())
    assert "job" not in missing.output  # refused before any job was registered


def test_help_renders() -> None:
    runner = CliRunner()
    for args in (["optimize", "--help"], ["configs", "--help"], ["configs", "export", "--help"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
    wide = runner.invoke(app, ["optimize", "--help"], env={"COLUMNS": "200"}).output
    assert "TRAIN/GAP/TEST/STEP" in " ".join(wide.split())
