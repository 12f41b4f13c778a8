"""The DQN environment and the policy evaluation execute like the event engine: same trades, and per-step returns
that add up to each engine trade's ln(1 + net return), on real bars (Coinbase BTC/USD 4h)."""

from __future__ import annotations

from dataclasses import astuple, replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from pivotal.data.candles import Candles
from pivotal.execution.engine import BacktestConfig, run_backtest
from pivotal.execution.positions import TargetPositions
from pivotal.models.dqn import POSITIONS
from pivotal.training.evaluation import evaluate_policy, step_returns
from pivotal.training.rl_trainer import BarEnvironment

pytestmark = pytest.mark.realdata
FEE, SLIP = 0.001, 0.0005


def real_bars(shared_data: Path) -> Candles:
    c = Candles.from_arrow(pq.read_table(shared_data / "coinbase" / "BTCUSD-4h.parquet"), timeframe="4h")
    return c.slice(5_000, 7_000)


def policy(n: int, seed: int) -> np.ndarray:
    """Actions (BUY 0, SELL 1, HOLD 2) that change on ~8 % of bars, so trades last a while and reversals happen."""
    rng = np.random.default_rng(seed)
    actions = np.empty(n, np.int64)
    actions[0] = 2
    for t in range(1, n):
        actions[t] = rng.integers(0, 3) if rng.random() < 0.08 else actions[t - 1]
    return actions


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_env_and_evaluation_equal_the_engine_trade_for_trade(shared_data: Path, seed: int) -> None:
    c = real_bars(shared_data)
    n = len(c)
    actions = policy(n, seed)
    targets = POSITIONS[actions]
    engine = run_backtest(c, TargetPositions(targets[: n - 1]), BacktestConfig(fee_rate=FEE, slippage=SLIP))
    assert len(engine.trades) > 20
    assert {t.exit_reason for t in engine.trades} <= {"SIGNAL", "EOD"}
    assert all(t.entry_fill == c.open[t.entry_bar] * (1 + SLIP * t.direction) for t in engine.trades)  # next open

    r = step_returns(targets, c.close, FEE, SLIP, c.open)
    assert r.shape == (n - 1,)
    env = BarEnvironment(np.zeros((n, 1), np.float32), c.close, FEE, SLIP, vol_window=48, open_=c.open)
    env.reset()
    nets, done = [], False
    for t in range(n - 1):
        _, _, done, net = env.step(int(actions[t]))
        nets.append(net)
    assert done
    untimed = [astuple(replace(t, entry_time=0, exit_time=0)) for t in engine.trades]  # the env has bar numbers only
    assert [astuple(replace(t, entry_time=0, exit_time=0)) for t in env.trades] == untimed  # bit for bit
    assert np.array_equal(np.array(nets), r)

    # each trade between flat bars: its steps add up to ln(1 + net); the whole series to the compounded result
    flat_before = {t.entry_bar for t in engine.trades} - {t.exit_bar for t in engine.trades}
    entries = {t.entry_bar for t in engine.trades}
    isolated = [t for t in engine.trades if t.entry_bar in flat_before and t.exit_bar not in entries]
    assert len(isolated) > 5
    for t in isolated:
        assert r[t.entry_bar - 1 : t.exit_bar].sum() == pytest.approx(np.log1p(t.net_return), rel=1e-9, abs=1e-12)
    assert r.sum() == pytest.approx(np.log1p(engine.trades.returns).sum(), rel=1e-9)

    rows, series = evaluate_policy(actions, c.close, FEE, SLIP, n_boot=10, open_=c.open)
    assert np.array_equal(series["model"], r)
    total = {row.estimator: row.estimate.value for row in rows if row.metric == "total_log_return"}
    assert total["model"] == pytest.approx(np.log(engine.equity.equity[-1]), rel=1e-9)
