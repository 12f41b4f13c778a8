"""The pipeline's DQN path fills at the next bar's open like the execution engine: on a tiny hand series with gaps
(every open differs from the previous close), the pipeline's policy evaluation and the DQN environment built from a
``SampleSet`` give the engine's trades, fills and equity for the same positions. The next open settles fills only:
it is never a model input, and no path falls back to filling at the decision close."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pivotal.core.stats import periods_per_year, sharpe
from pivotal.core.trades import Trade
from pivotal.core.vocabulary import ACTION_BUY as BUY
from pivotal.core.vocabulary import ACTION_HOLD as HOLD
from pivotal.core.vocabulary import ACTION_SELL as SELL
from pivotal.data.candles import Candles
from pivotal.execution.engine import BacktestConfig, BacktestResult, run_backtest
from pivotal.execution.positions import TargetPositions
from pivotal.models.dqn import POSITIONS
from pivotal.training.dataset import SampleSet, next_open_of
from pivotal.training.evaluation import evaluate_policy, step_returns
from pivotal.training.pipeline import RunSpec, evaluate_samples_policy
from pivotal.training.rl_trainer import BarEnvironment, train_dqn

pytestmark = pytest.mark.unit

H = 3_600_000
FEE, SLIP = 0.001, 0.0005
OPEN = np.array([99.0, 102.0, 103.0, 100.0, 108.0, 101.0, 97.0, 103.0, 109.0, 104.0])
CLOSE = np.array([100.0, 104.0, 101.0, 107.0, 103.0, 99.0, 102.0, 108.0, 105.0, 110.0])
SPEC = RunSpec("dqn", "hand", "BTC/USDT", ("1h",), fee=FEE, slippage=SLIP, n_boot=20, progress=False)


def bars() -> Candles:
    ts = np.arange(len(CLOSE), dtype=np.int64) * H
    hi, lo = np.maximum(OPEN, CLOSE) + 1.0, np.minimum(OPEN, CLOSE) - 1.0
    return Candles(ts, OPEN, hi, lo, CLOSE, np.ones(len(CLOSE)), "hand", "BTC/USDT", "1h")


def samples_at(index: np.ndarray) -> SampleSet:
    """A SampleSet of the hand bars at ``index`` (features and labels are irrelevant here: zeros)."""
    n, levels = len(index), 1
    index = np.asarray(index, np.int64)
    return SampleSet(
        index=index,
        time=index * H + H,
        close=CLOSE[index],
        next_open=next_open_of(OPEN, index),
        windows=np.zeros((n, 1, 2, 1), np.float16),
        context=np.zeros((n, 1), np.float32),
        kind=np.full((n, levels), -1, np.int64),
        price=np.full((n, levels), np.nan, np.float32),
        bars=np.full((n, levels), np.nan, np.float32),
        action=np.full(n, -1, np.int64),
        known_at=np.full((n, levels), -1, np.int64),
        action_known_at=np.full(n, -1, np.int64),
        last_kind=np.full((n, levels), -1, np.int64),
    )


def engine_on_bars(index: np.ndarray, actions: np.ndarray) -> BacktestResult:
    """The engine on the raw bars: each sample's target is decided at its bar's close and held until the next sample."""
    raw = np.zeros(len(CLOSE) - 1)
    for k, t in enumerate(index[:-1]):
        raw[t : index[k + 1]] = POSITIONS[actions[k]]
    return run_backtest(bars(), TargetPositions(raw), BacktestConfig(fee_rate=FEE, slippage=SLIP))


def fills(trades: tuple[Trade, ...] | list[Trade]) -> list[tuple[int, float, float, str, float]]:
    return [(t.direction, t.entry_fill, t.exit_fill, t.exit_reason, t.net_return) for t in trades]


ACTIONS = np.array([BUY, BUY, SELL, SELL, HOLD, BUY, HOLD, SELL, SELL, BUY])


def test_every_bar_sampled_pipeline_evaluation_equals_the_engine_trade_for_trade() -> None:
    index = np.arange(len(CLOSE))
    samples = samples_at(index)
    assert samples.next_open[:-1].tolist() == OPEN[1:].tolist() and math.isnan(samples.next_open[-1])
    engine = engine_on_bars(index, ACTIONS)
    assert engine.trades[0].entry_fill == 102.0 * (1 + SLIP)  # BUY at close 0 fills at open 1, not at close 0 (100)
    assert [(t.entry_bar, t.exit_bar, t.direction, t.exit_reason) for t in engine.trades] == [
        (1, 3, 1, "SIGNAL"),
        (3, 5, -1, "SIGNAL"),
        (6, 7, 1, "SIGNAL"),
        (8, 9, -1, "EOD"),
    ]

    rows, series = evaluate_samples_policy(SPEC, ACTIONS, samples, n_boot=20)
    eq = engine.equity.equity
    assert series["model"] == pytest.approx(np.log(eq[1:] / eq[:-1]), rel=1e-12, abs=1e-15)
    point = {(r.metric, r.estimator): r.estimate.value for r in rows}
    assert point[("total_log_return", "model")] == pytest.approx(math.log(eq[-1]), rel=1e-12)
    assert point[("total_log_return", "model")] == pytest.approx(np.log1p(engine.trades.returns).sum(), rel=1e-12)
    # Sharpe: core.stats.sharpe of the per-step returns, annualised with the 1h bars of a 365-day year
    assert point[("sharpe", "model")] == pytest.approx(sharpe(series["model"], periods_per_year(H)), rel=1e-12)
    assert periods_per_year(H) == 8760.0

    env = BarEnvironment(np.zeros((len(samples), 1), np.float32), samples.close, FEE, SLIP, 4, samples.execution_open())
    env.reset()
    nets = [env.step(int(a))[3] for a in ACTIONS[:-1]]
    assert fills(env.trades.trades) == fills(engine.trades.trades)  # bit for bit
    assert [(t.entry_bar, t.exit_bar) for t in env.trades] == [(t.entry_bar, t.exit_bar) for t in engine.trades]
    assert np.array_equal(np.array(nets), series["model"])


def test_samples_with_gaps_fill_at_the_open_after_each_sample_bar_like_the_engine_on_all_bars() -> None:
    """Samples skip bars (stride, incomplete inputs dropped): a decision at sample bar t still fills at open[t+1]."""
    index = np.array([0, 2, 3, 6, 7, 9])
    actions = np.array([BUY, SELL, SELL, BUY, HOLD, HOLD])
    samples = samples_at(index)
    assert samples.execution_open().tolist() == [100.0, 102.0, 100.0, 108.0, 103.0, 109.0]  # bar 0: no fill settles
    engine = engine_on_bars(index, actions)
    assert len(engine.trades) == 3
    rows, series = evaluate_samples_policy(SPEC, actions, samples, n_boot=20)
    eq = engine.equity.equity
    assert series["model"] == pytest.approx(np.log(eq[index[1:]] / eq[index[:-1]]), rel=1e-12, abs=1e-15)
    total = next(r.estimate.value for r in rows if r.metric == "total_log_return" and r.estimator == "model")
    assert total == pytest.approx(math.log(eq[-1]), rel=1e-12)
    env = BarEnvironment(np.zeros((len(index), 1), np.float32), samples.close, FEE, SLIP, 4, samples.execution_open())
    env.reset()
    for a in actions[:-1]:
        env.step(int(a))
    assert fills(env.trades.trades) == fills(engine.trades.trades)
    # sample-stream bar k opens after sample k-1: the engine's bar is index[k-1] + 1
    assert [(index[t.entry_bar - 1] + 1, index[t.exit_bar - 1] + 1) for t in env.trades] == [
        (t.entry_bar, t.exit_bar) for t in engine.trades
    ]


def test_execution_open_refuses_a_missing_fill_price_and_the_next_open_is_no_model_input() -> None:
    samples = samples_at(np.array([0, 1, 9, 9]))  # a sample at the series' last bar that is not the last sample
    with pytest.raises(ValueError, match="sample at bar 9 has no next open to fill at"):
        samples.execution_open()
    assert "next_open" not in samples.batch(np.array([0, 1]))
    assert set(samples.batch(np.array([0]))) == {"windows", "context", "kind", "price", "bars", "action"}


def test_no_path_fills_at_the_decision_close_when_opens_are_missing() -> None:
    close = CLOSE[:4]
    with pytest.raises(TypeError):
        step_returns(np.ones(4), close, FEE, SLIP)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        evaluate_policy(np.zeros(4, np.int64), close, FEE, SLIP)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        BarEnvironment(np.zeros((4, 1), np.float32), close, FEE, SLIP, 4)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="bar opens are required"):
        step_returns(np.ones(4), close, FEE, SLIP, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bar opens are required"):
        BarEnvironment(np.zeros((4, 1), np.float32), close, FEE, SLIP, 4, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pass one open per close"):
        evaluate_policy(np.zeros(4, np.int64), close, FEE, SLIP, open_=OPEN[:3])
    with pytest.raises(ValueError, match="missing fill price at bar 2"):
        step_returns(np.ones(4), close, FEE, SLIP, np.array([1.0, 2.0, np.nan, 3.0]))
    assert "open_" in train_dqn.__code__.co_varnames[: train_dqn.__code__.co_argcount]
    assert train_dqn.__defaults__ is None  # open_ has no default
