"""Double DQN trading agent: state = market features + CNN outputs + CNN hidden states (+ current position).

Actions are position targets: BUY → long (+1), SELL → short (-1), HOLD → flat (0), so HOLD is "stay out". With
``hold_margin`` > 0 the greedy policy only leaves HOLD when the best Q-value beats HOLD's by that margin, i.e. it
stays out when uncertain. Training is the double-DQN update (van Hasselt et al. 2016): the online network picks
the next action, the target network (synced every ``target_sync`` steps) values it.

The reward (built by ``training.rl_trainer``) is the realised log return of the position after fees and slippage,
divided by the volatility known at the decision time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from pivotal.core.vocabulary import ACTION_HOLD, ACTIONS, Action
from pivotal.features.encoding import CHANNELS
from pivotal.models.heads import PRICE_SCALE
from pivotal.models.io import ModelOutput
from pivotal.models.protocol import Batch, DQNConfig, config_to_dict
from pivotal.models.supervised import SupervisedModel, encoded_arrays

POSITIONS = np.array([float(Action(a).target) for a in ACTIONS])  # target position of BUY, SELL, HOLD: 1, -1, 0
HOLD = ACTION_HOLD
RETURN_LAGS = 16  # last base-window log returns in the market features
RETURN_CHANNEL = CHANNELS.index("log_return")


class QNetwork(nn.Module):
    def __init__(self, state_dim: int, hidden: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(state_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.out = nn.Linear(hidden, len(ACTIONS))

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(states))


def double_dqn_targets(
    online: nn.Module, target: nn.Module, rewards: torch.Tensor, next_states: torch.Tensor, dones: torch.Tensor, gamma: float
) -> torch.Tensor:
    """y = r + γ (1 - done) Q_target(s', argmax_a Q_online(s', a))."""
    with torch.no_grad():
        next_actions = online(next_states).argmax(dim=1, keepdim=True)
        next_q = target(next_states).gather(1, next_actions).squeeze(1)
        return rewards + gamma * (1.0 - dones) * next_q


def epsilon_at(step: int, config: DQNConfig) -> float:
    """Linear decay from eps_start to eps_end over eps_decay_steps, then constant."""
    frac = min(max(step, 0) / max(config.eps_decay_steps, 1), 1.0)
    return config.eps_start + frac * (config.eps_end - config.eps_start)


class ReplayBuffer:
    """Fixed-size ring buffer of transitions in preallocated numpy arrays."""

    def __init__(self, capacity: int, state_dim: int) -> None:
        self.states = np.zeros((capacity, state_dim), np.float32)
        self.next_states = np.zeros((capacity, state_dim), np.float32)
        self.actions = np.zeros(capacity, np.int64)
        self.rewards = np.zeros(capacity, np.float32)
        self.dones = np.zeros(capacity, np.float32)
        self.capacity, self.size, self.pos = capacity, 0, 0

    def add(self, state: np.ndarray, action: int, reward: float, next_state: np.ndarray, done: bool) -> None:
        i = self.pos
        self.states[i], self.actions[i], self.rewards[i] = state, action, reward
        self.next_states[i], self.dones[i] = next_state, float(done)
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = rng.integers(0, self.size, size=batch_size)
        return {
            "states": torch.from_numpy(self.states[idx]),
            "actions": torch.from_numpy(self.actions[idx]),
            "rewards": torch.from_numpy(self.rewards[idx]),
            "next_states": torch.from_numpy(self.next_states[idx]),
            "dones": torch.from_numpy(self.dones[idx]),
        }


def market_state(windows: torch.Tensor, context: torch.Tensor, decoded: dict[str, torch.Tensor]) -> torch.Tensor:
    """State rows without the position: pivot context, last base-window returns, CNN outputs and CNN hidden trunk."""
    returns = windows[:, 0, -RETURN_LAGS:, RETURN_CHANNEL].float()
    cnn = [
        decoded["action_prob"],
        decoded["kind_prob"][..., 0],
        decoded["price"] * PRICE_SCALE,
        torch.log1p(decoded["bars"]),
        decoded["confidence"][:, None],
        decoded["hidden"],
    ]
    return torch.cat([context.float(), returns, *[c.float() for c in cnn]], dim=1)


def with_position(states: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Append the one-hot of the current position (long, short, flat): fees depend on it, so the policy must see it."""
    one_hot = (np.asarray(positions, np.float64)[:, None] == POSITIONS[None, :]).astype(np.float32)
    return np.concatenate([states.astype(np.float32), one_hot], axis=1)


def state_dim_for(feature_model: SupervisedModel) -> int:
    shape = feature_model.config.shape
    hidden = feature_model.infer(
        torch.zeros(1, shape.n_windows, shape.window_len, shape.n_channels), torch.zeros(1, shape.n_context)
    )
    return shape.n_context + RETURN_LAGS + len(ACTIONS) + 3 * shape.levels + 1 + hidden["hidden"].shape[1] + len(POSITIONS)


class DQNAgent:
    """The DQN behind the :class:`~pivotal.models.protocol.Model` protocol; ``feature_model`` is its frozen CNN."""

    model_type = "dqn"

    def __init__(self, config: DQNConfig, feature_model: SupervisedModel, name: str = "dqn", seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.config, self.feature_model, self.name = config, feature_model, name
        self.online = QNetwork(config.state_dim, config.hidden)
        self.target = QNetwork(config.state_dim, config.hidden)
        self.target.load_state_dict(self.online.state_dict())
        self.optimizer = torch.optim.Adam(self.online.parameters(), lr=config.lr)
        self.updates = 0

    # --- acting -------------------------------------------------------------------------------------
    @torch.inference_mode()
    def q_values(self, states: torch.Tensor) -> torch.Tensor:
        return self.online(states)

    def greedy(self, q: torch.Tensor) -> torch.Tensor:
        """argmax Q, except HOLD unless the best beats HOLD by ``hold_margin`` (stay out when uncertain)."""
        best = q.argmax(dim=1)
        confident = q.max(dim=1).values - q[:, HOLD] > self.config.hold_margin
        return torch.where(confident, best, torch.full_like(best, HOLD))

    def act(self, state: np.ndarray, epsilon: float, rng: np.random.Generator) -> int:
        if rng.random() < epsilon:
            return int(rng.integers(len(ACTIONS)))
        return int(self.greedy(self.q_values(torch.from_numpy(state[None])))[0])

    # --- learning -----------------------------------------------------------------------------------
    def train_step(self, batch: Batch) -> dict[str, float]:
        """One double-DQN update (Huber loss on the chosen actions' Q-values); syncs the target net on schedule."""
        targets = double_dqn_targets(
            self.online, self.target, batch["rewards"], batch["next_states"], batch["dones"], self.config.gamma
        )
        q = self.online(batch["states"]).gather(1, batch["actions"][:, None]).squeeze(1)
        loss = F.smooth_l1_loss(q, targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.online.parameters(), 10.0)
        self.optimizer.step()
        self.updates += 1
        if self.updates % self.config.target_sync == 0:
            self.target.load_state_dict(self.online.state_dict())
        return {"loss": float(loss.detach()), "q_mean": float(q.detach().mean())}

    # --- protocol: predict / save / load -------------------------------------------------------------
    def predict(self, encoded: Any, symbol: str = "", timestamp: int = 0, position: float = 0.0) -> ModelOutput:
        """Q-values for one encoded input (position flat unless given); probabilities are softmax(Q)."""
        windows, context = (torch.from_numpy(a)[None] for a in encoded_arrays(encoded))
        decoded = self.feature_model.infer(windows, context)
        state = torch.from_numpy(with_position(market_state(windows, context, decoded).numpy(), np.array([position])))
        q = self.q_values(state)
        action = int(self.greedy(q)[0])
        probs = torch.softmax(q[0].double(), dim=0).numpy()
        probs = probs / probs.sum()
        direction = float(np.clip(probs[0] - probs[1], -1.0, 1.0))
        return ModelOutput(
            model_type=self.model_type,
            model_name=self.name,
            symbol=symbol,
            timestamp=int(timestamp),
            confidence=float(probs[action]),
            action=ACTIONS[action],
            action_probabilities={a: float(p) for a, p in zip(ACTIONS, probs, strict=True)},
            direction_vector=direction,
            direction_confidence=abs(direction),
            hidden_states={"q_values": q[0].numpy().astype(np.float32), "state": state[0].numpy()},
            metadata={"q_values": dict(zip(ACTIONS, map(float, q[0]), strict=True)), "feature_model": self.feature_model.name},
        )

    def state(self) -> dict[str, Any]:
        return {
            "model_type": self.model_type,
            "name": self.name,
            "config": config_to_dict(self.config),
            "weights": {k: v.detach().cpu() for k, v in self.online.state_dict().items()},
            "feature_model": self.feature_model.state(),
        }

    def save(self, path: Path) -> None:
        torch.save(self.state(), Path(path))

    def load(self, path: Path) -> None:
        blob = torch.load(Path(path), map_location="cpu", weights_only=True)
        if blob.get("config") != config_to_dict(self.config):
            raise ValueError(f"{path}: saved DQN config differs from this agent's; build the agent from the file's config")
        self.online.load_state_dict(blob["weights"])
        self.target.load_state_dict(blob["weights"])
        self.feature_model.net.load_state_dict(blob["feature_model"]["weights"])
