"""Defect (issue #8): walk-forward optimisation let in-sample trades exit inside the test window.

The train window limits where LS3 signals occur, not where their trades exit (up to ``max_hold_bars`` later). Before
the fix, on Coinbase BTC/USD 1d with 40 random configurations 72 of 657 in-sample trades exited up to 41 bars into
the test window (4h: 13 of 12,623). The fix purges every train signal whose maximum hold reaches the test window.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from pivotal.data.candles import Candles
from pivotal.optimize.ls3 import LS3Objective
from pivotal.optimize.parallel import LocalRunner
from pivotal.optimize.pipeline import Market, OptimizeSpec, run_market

pytestmark = pytest.mark.realdata

SAMPLES = 40


def _objective(shared_data: Path, timeframe: str) -> LS3Objective:
    frame = pd.read_parquet(shared_data / "coinbase" / f"BTCUSD-{timeframe}.parquet")
    return LS3Objective.from_candles(Candles.from_frame(frame, exchange="coinbase", symbol="BTC/USD", timeframe=timeframe))


@pytest.mark.parametrize("timeframe", ["1d", "4h"])
def test_no_in_sample_trade_exits_inside_the_test_window(shared_data: Path, timeframe: str) -> None:
    objective = _objective(shared_data, timeframe)
    spec = OptimizeSpec(exchange="coinbase", symbols=("BTC/USD",), timeframes=(timeframe,), samples=SAMPLES, min_trades=1, seed=0)
    market = Market("coinbase", "BTC/USD", timeframe)
    report = run_market(objective, spec, market, "purge", optuna.storages.InMemoryStorage(), LocalRunner(1))
    leaks, trades, chosen_leaks, folds = 0, 0, 0, report.walk_forward.folds
    assert len(folds) > 10
    for result in folds:
        fold = result.fold
        for index in np.unique(result.evaluated)[:SAMPLES].tolist():
            exits = objective.trade_returns(index, fold.train).exit_bar
            trades += len(exits)
            leaks += int(np.count_nonzero(exits >= fold.test.start))
        chosen_leaks += int(np.count_nonzero(result.is_trades.exit_bar >= fold.test.start))
    assert trades > 100
    assert leaks == 0, f"{leaks} of {trades} in-sample trades exit inside the test window ({timeframe})"
    assert chosen_leaks == 0


def test_an_explicit_purge_shorter_than_the_maximum_hold_is_refused(shared_data: Path) -> None:
    from pivotal.core.errors import UserInputError
    from pivotal.optimize.pipeline import folds_for

    objective = _objective(shared_data, "1d")
    market = Market("coinbase", "BTC/USD", "1d")
    short = OptimizeSpec(exchange="coinbase", symbols=("BTC/USD",), timeframes=("1d",), purge_ms=20 * 86_400_000)
    with pytest.raises(UserInputError) as info:
        folds_for(objective, short, market)
    assert str(info.value) == (
        "purge 20d and gap 7d are shorter than liquidity_sweep's maximum hold of 50 bars (50d) on coinbase:BTC/USD:1d: "
        "in-sample trades would exit inside the test window; use --purge 50d or more, or leave --purge out"
    )
    enough = OptimizeSpec(exchange="coinbase", symbols=("BTC/USD",), timeframes=("1d",), purge_ms=50 * 86_400_000)
    auto = folds_for(objective, OptimizeSpec(exchange="coinbase", symbols=("BTC/USD",), timeframes=("1d",)), market)
    explicit = folds_for(objective, enough, market)
    assert [f.test for f in explicit] == [f.test for f in auto]
    assert all(e.train.end <= a.train.end for e, a in zip(explicit, auto, strict=True))


def test_cli_sets_purge_and_embargo_and_refuses_a_short_purge(shared_data: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pivotal.cli.main import app

    runner = CliRunner()
    source = shared_data / "coinbase" / "BTCUSD-1d.parquet"
    base = ["optimize", "--input", str(source), "--exchange", "coinbase", "--symbols", "BTC/USD", "--timeframes", "1d"]
    base += ["--samples", "8", "--min-trades", "1", "--no-progress", "--data-dir", str(tmp_path)]
    short = runner.invoke(app, [*base, "--purge", "20d", "--job-id", "short"])
    assert short.exit_code == 1
    assert "purge 20d and gap 7d are shorter than liquidity_sweep's maximum hold of 50 bars (50d)" in _flat(short.output)
    assert "job " not in short.output  # refused before a job record was created
    bad = runner.invoke(app, [*base, "--embargo", "soon"])
    assert bad.exit_code == 1 and "--embargo 'soon': expected a duration >= 0" in _flat(bad.output)
    ok = runner.invoke(app, [*base, "--purge", "60d", "--embargo", "3d", "--job-id", "ok"])
    assert ok.exit_code == 0, ok.output
    assert "Leaderboard: significance" in ok.output


def _flat(output: str) -> str:
    """CLI output with the terminal's line wrapping undone."""
    return " ".join(output.split())
