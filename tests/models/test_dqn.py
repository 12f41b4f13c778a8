"""DQN: the double-DQN target and update on a tiny hand example, epsilon, HOLD when uncertain, the fee-aware
environment, and a short run on real data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from pivotal.models.cnn import CNNModel
from pivotal.models.dqn import DQNAgent, ReplayBuffer, double_dqn_targets, epsilon_at, state_dim_for
from pivotal.models.io import ModelOutput
from pivotal.models.protocol import CNNConfig, DQNConfig
from pivotal.models.registry import load_model
from pivotal.training.rl_trainer import BarEnvironment, RLConfig, base_states, run_policy, train_dqn
from tests.models.real_samples import real_samples

torch.set_num_threads(1)


def _linear(weights: list[list[float]]) -> nn.Linear:
    layer = nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weights).T)  # column j = Q-values of basis state j
    return layer


def test_double_dqn_target_uses_online_argmax_and_target_value() -> None:
    online = _linear([[1.0, 3.0, 2.0], [0.0, 0.0, 4.0]])  # s'=e0 → argmax action 1; s'=e1 → action 2
    target = _linear([[5.0, 0.5, 9.0], [7.0, 1.0, 2.0]])
    next_states = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    rewards = torch.tensor([0.1, -0.2, 0.3])
    dones = torch.tensor([0.0, 0.0, 1.0])
    y = double_dqn_targets(online, target, rewards, next_states, dones, gamma=0.9)
    # sample 0: 0.1 + 0.9 * Q_target(e0, 1) = 0.1 + 0.45 (plain DQN would use max 9.0)
    # sample 1: -0.2 + 0.9 * Q_target(e1, 2) = -0.2 + 1.8; sample 2 is terminal: just its reward
    assert y.tolist() == pytest.approx([0.55, 1.6, 0.3])


def test_train_step_moves_q_towards_the_double_target_and_syncs_the_target_net() -> None:
    agent = DQNAgent(DQNConfig(state_dim=2, hidden=8, gamma=0.9, lr=0.01, target_sync=3), CNNModel(), seed=1)
    batch = {
        "states": torch.tensor([[1.0, 0.0], [0.0, 1.0]]),
        "actions": torch.tensor([0, 2]),
        "rewards": torch.tensor([1.0, -1.0]),
        "next_states": torch.tensor([[0.0, 1.0], [1.0, 0.0]]),
        "dones": torch.tensor([0.0, 1.0]),
    }
    y = double_dqn_targets(agent.online, agent.target, batch["rewards"], batch["next_states"], batch["dones"], 0.9)
    q_before = agent.online(batch["states"]).gather(1, batch["actions"][:, None]).squeeze(1).detach()
    expected = float(nn.functional.smooth_l1_loss(q_before, y))
    assert agent.train_step(batch)["loss"] == pytest.approx(expected, rel=1e-6)
    for _ in range(5):
        agent.train_step(batch)
    q_after = agent.online(batch["states"]).gather(1, batch["actions"][:, None]).squeeze(1).detach()
    assert float((q_after - y).abs().sum()) < float((q_before - y).abs().sum())
    assert agent.updates == 6  # 6 % 3 == 0: target synced just now
    for a, b in zip(agent.online.parameters(), agent.target.parameters(), strict=True):
        assert torch.equal(a, b)


def test_epsilon_decays_linearly_then_stays() -> None:
    cfg = DQNConfig(eps_start=1.0, eps_end=0.1, eps_decay_steps=100)
    assert [epsilon_at(s, cfg) for s in (0, 50, 100, 1000)] == pytest.approx([1.0, 0.55, 0.1, 0.1])


def test_greedy_holds_unless_the_best_action_beats_hold_by_the_margin() -> None:
    q = torch.tensor([[0.50, 0.10, 0.45], [0.10, 0.90, 0.20]])
    uncertain = DQNAgent(DQNConfig(state_dim=2, hidden=4, hold_margin=0.1), CNNModel())
    sure = DQNAgent(DQNConfig(state_dim=2, hidden=4, hold_margin=0.01), CNNModel())
    assert uncertain.greedy(q).tolist() == [2, 1]  # BUY beats HOLD by only 0.05 → HOLD
    assert sure.greedy(q).tolist() == [0, 1]


def test_environment_fills_at_the_next_open_with_fees_and_slippage_like_the_engine() -> None:
    close = np.array([100.0, 110.0, 99.0, 99.0])
    opens = np.array([100.0, 101.0, 111.0, 98.0])
    fee, slip = 0.001, 0.0005
    env = BarEnvironment(np.zeros((4, 1), np.float32), close, fee=fee, slippage=slip, vol_window=2, open_=opens)
    env.reset()
    _, _, _, net0 = env.step(0)  # BUY at close 0: long at open 1
    _, _, _, net1 = env.step(1)  # SELL at close 1: exit and go short at open 2
    state, _, done, net2 = env.step(2)  # HOLD (flat) at close 2: exit at open 3
    ef1 = 101 * (1 + slip)
    eq1 = 1 + (110 - ef1) / ef1
    xf1 = 111 * (1 - slip)
    realised = 1 + (xf1 - ef1) / ef1 - fee * (1 + xf1 / ef1)
    ef2 = 111 * (1 - slip)
    eq2 = realised * (1 + (ef2 - 99) / ef2)
    xf2 = 98 * (1 + slip)
    eq3 = realised * (1 + (ef2 - xf2) / ef2 - fee * (1 + xf2 / ef2))
    assert net0 == pytest.approx(math.log(eq1), rel=1e-12)
    assert net1 == pytest.approx(math.log(eq2 / eq1), rel=1e-12)
    assert net2 == pytest.approx(math.log(eq3 / eq2), rel=1e-12) and done
    assert state[-3:].tolist() == [0.0, 0.0, 1.0]  # position one-hot: flat
    assert [(t.entry_bar, t.exit_bar, t.direction, t.exit_reason) for t in env.trades] == [
        (1, 2, 1, "SIGNAL"),
        (2, 3, -1, "SIGNAL"),
    ]
    assert net0 + net1 + net2 == pytest.approx(math.log(eq3), rel=1e-12)


def test_environment_needs_opens_and_with_gapless_opens_fills_at_the_previous_close_and_exits_eod() -> None:
    close = np.array([100.0, 110.0, 121.0])
    with pytest.raises(ValueError, match="bar opens are required"):
        BarEnvironment(np.zeros((3, 1), np.float32), close, 0.0, 0.0, 2, None)  # type: ignore[arg-type]
    gapless = np.r_[close[0], close[:-1]]
    env = BarEnvironment(np.zeros((3, 1), np.float32), close, fee=0.0, slippage=0.0, vol_window=2, open_=gapless)
    env.reset()
    _, _, _, net0 = env.step(0)
    _, _, done, net1 = env.step(0)  # still long at the end: EOD exit at the last close
    assert done and net0 == pytest.approx(math.log(1.1)) and net1 == pytest.approx(math.log(1.1))
    assert [(t.entry_fill, t.exit_reason, t.exit_fill) for t in env.trades] == [(100.0, "EOD", 121.0)]


def test_replay_buffer_wraps_around() -> None:
    buf = ReplayBuffer(3, 1)
    for i in range(5):
        buf.add(np.array([i], np.float32), i % 3, float(i), np.array([i + 1], np.float32), False)
    assert buf.size == 3 and sorted(buf.rewards.tolist()) == [2.0, 3.0, 4.0]
    sample = buf.sample(8, np.random.default_rng(0))
    assert sample["states"].shape == (8, 1) and set(sample["rewards"].tolist()) <= {2.0, 3.0, 4.0}


def test_short_real_data_run_trains_predicts_and_round_trips(shared_data: Path, tmp_path: Path) -> None:
    samples, shape = real_samples(shared_data)
    cnn = CNNModel(CNNConfig(shape=shape))
    config = DQNConfig(state_dim=state_dim_for(cnn), hidden=32, buffer_size=1000, batch_size=32, eps_decay_steps=300)
    agent = DQNAgent(config, cnn, name="dqn-test")
    states = base_states(cnn, samples)
    rl = RLConfig(episodes=1, warmup=64, progress=False)
    history = train_dqn(agent, states, samples.close, rl, samples.execution_open())
    assert len(history) == 1 and math.isfinite(history[0]["loss"])
    actions = run_policy(agent, states)
    assert actions.shape == (len(samples),) and set(actions.tolist()) <= {0, 1, 2}
    out = agent.predict((samples.windows[-1].astype(np.float32), samples.context[-1]), symbol="BTC/USDT", timestamp=5)
    assert isinstance(out, ModelOutput) and out.model_type == "dqn" and set(out.metadata["q_values"]) == {"BUY", "SELL", "HOLD"}
    agent.save(tmp_path / "dqn.pt")
    loaded = load_model(tmp_path / "dqn.pt")
    x = (samples.windows[3].astype(np.float32), samples.context[3])
    assert loaded.predict(x).to_json() == agent.predict(x).to_json()
