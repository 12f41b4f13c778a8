"""DQN training on a causal bar environment that executes through the one execution model (``pivotal.execution``).

At sample t the agent sees the state built from data known at t (encoded input, the frozen CNN's outputs and hidden
states, its current position) and picks a position target. The target is executed like any strategy's order: at the
**next open** ``open[t+1]`` with adverse slippage and fees per side (a reversal is an exit then an entry); the step's
net return is the log change of the portfolio's mark-to-market equity from close t to close t+1,

    r_t = ln(equity[t+1] / equity[t])

(the last step also pays the EOD exit at the final close), so the steps of a trade add up to ``ln(1 + net_return)``
of the engine's trade. The reward is r_t / σ_t, σ_t the standard deviation of the last ``vol_window`` per-step log
returns known at t (floored), i.e. a risk-adjusted return after costs. Nothing after t enters the state or the choice
at t. The opens are required (for samples: ``SampleSet.execution_open()``, built from each sample's ``next_open``);
they settle fills only and never enter the state.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.progress import Progress

from pivotal.core.trades import TradeList
from pivotal.execution.engine import BacktestConfig, EventEngine
from pivotal.execution.positions import TargetPositions, decision_candles
from pivotal.models.dqn import POSITIONS, DQNAgent, ReplayBuffer, epsilon_at, market_state, with_position
from pivotal.models.supervised import SupervisedModel
from pivotal.training.dataset import SampleSet
from pivotal.training.evaluation import checked_open
from pivotal.training.trainer import seed_everything

VOL_FLOOR = 1e-4


@dataclass(frozen=True)
class RLConfig:
    episodes: int = 3
    seed: int = 0
    vol_window: int = 48
    warmup: int = 500  # transitions collected before the first update
    updates_per_step: int = 1
    log_dir: Path | None = None
    progress: bool = True


def base_states(feature_model: SupervisedModel, samples: SampleSet, batch_size: int = 256) -> np.ndarray:
    """State rows without the position for every sample, from the frozen feature model (batched)."""
    parts = []
    for start in range(0, len(samples), batch_size):
        batch = samples.batch(np.arange(start, min(start + batch_size, len(samples))))
        decoded = feature_model.infer(batch["windows"], batch["context"])
        parts.append(market_state(batch["windows"], batch["context"], {k: v.cpu() for k, v in decoded.items()}).numpy())
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


def trailing_volatility(close: np.ndarray, window: int) -> np.ndarray:
    """σ_t of the per-step log returns ending at t (only closes <= t), floored; the first entries use what exists."""
    moves = np.r_[0.0, np.diff(np.log(close))]
    csum, csq = np.cumsum(moves), np.cumsum(moves**2)
    idx = np.arange(len(close))
    lo = np.maximum(idx - window, 0)
    count = np.maximum(idx - lo, 1)
    mean = (csum - csum[lo]) / count
    var = np.maximum((csq - csq[lo]) / count - mean**2, 0.0)
    return np.maximum(np.sqrt(var), VOL_FLOOR)


class BarEnvironment:
    """Steps through samples in time order; ``step(action)`` returns (next_state, reward, done, net_return).

    Executes through :class:`pivotal.execution.engine.EventEngine` (``open_bar`` / ``close_bar``), so its fills,
    costs and trades are the engine's; ``trades`` lists the round trips of the current episode."""

    def __init__(
        self,
        states: np.ndarray,
        close: np.ndarray,
        fee: float,
        slippage: float,
        vol_window: int,
        open_: np.ndarray,
    ) -> None:
        if len(states) != len(close) or len(close) < 2:
            raise ValueError(f"environment needs >= 2 aligned states/closes (got {len(states)} states, {len(close)} closes)")
        self.states, self.close = states, close
        self.candles = decision_candles(close, checked_open(open_, close))
        self.config = BacktestConfig(fee_rate=fee, slippage=slippage)
        self.vol = trailing_volatility(close, vol_window)
        self.reset()

    def reset(self) -> np.ndarray:
        self.t, self.position = 0, 0.0
        self.engine = EventEngine(self.candles, self.config)
        self.policy = TargetPositions()
        self._equity = self.engine.open_bar(self.policy, 0)
        return self.observe()

    def observe(self) -> np.ndarray:
        return with_position(self.states[self.t : self.t + 1], np.array([self.position]))[0]

    def step(self, action: int) -> tuple[np.ndarray, float, bool, float]:
        target = float(POSITIONS[action])
        t, engine = self.t, self.engine
        self.policy.target = int(target)
        engine.close_bar(self.policy, t)  # the decision at close t ...
        equity = engine.open_bar(self.policy, t + 1)  # ... fills at open t+1; marked at close t+1
        self.t, self.position = t + 1, target
        done = self.t >= len(self.close) - 1
        if done:
            equity = engine.finish(self.policy).equity.equity[-1]  # EOD exit at the last close
        net = float(np.log(equity / self._equity))
        self._equity = equity
        reward = net / float(self.vol[t])
        return self.observe(), reward, done, net

    @property
    def trades(self) -> TradeList:
        return TradeList(tuple(t for _, t in self.engine.trades))


def train_dqn(
    agent: DQNAgent, states: np.ndarray, close: np.ndarray, config: RLConfig, open_: np.ndarray
) -> list[dict[str, float]]:
    """Episodes over the training span; returns per-episode metrics (reward sum, net log return, loss).

    ``open_``: each sample bar's open, aligned with ``close`` (``open_[t+1]`` fills the decision at t; for samples
    ``SampleSet.execution_open()``); required, see ``BarEnvironment``."""
    rng = seed_everything(config.seed)
    cfg = agent.config
    env = BarEnvironment(states, close, cfg.fee, cfg.slippage, config.vol_window, open_)
    buffer = ReplayBuffer(cfg.buffer_size, cfg.state_dim)
    writer = None
    if config.log_dir is not None:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(log_dir=str(config.log_dir))
    history: list[dict[str, float]] = []
    step = 0
    with Progress(disable=not config.progress) as progress:
        task = progress.add_task(agent.name, total=config.episodes * (len(close) - 1))
        for episode in range(1, config.episodes + 1):
            state, done = env.reset(), False
            reward_sum, net_sum, losses = 0.0, 0.0, []
            while not done:
                action = agent.act(state, epsilon_at(step, cfg), rng)
                next_state, reward, done, net = env.step(action)
                buffer.add(state, action, reward, next_state, done)
                state, step = next_state, step + 1
                reward_sum, net_sum = reward_sum + reward, net_sum + net
                if buffer.size >= min(config.warmup, cfg.buffer_size):
                    for _ in range(config.updates_per_step):
                        losses.append(agent.train_step(buffer.sample(cfg.batch_size, rng))["loss"])
                progress.advance(task)
            metrics = {
                "episode": float(episode),
                "reward": reward_sum,
                "net_log_return": net_sum,
                "loss": float(np.mean(losses)) if losses else float("nan"),
                "epsilon": epsilon_at(step, cfg),
            }
            history.append(metrics)
            if writer is not None:
                for key, value in metrics.items():
                    writer.add_scalar(f"dqn/{key}", value, episode)
    if writer is not None:
        writer.close()
    return history


@torch.inference_mode()
def run_policy(agent: DQNAgent, states: np.ndarray) -> np.ndarray:
    """Greedy actions in time order (sequential: the position chosen at t is part of the state at t+1)."""
    actions = np.zeros(len(states), np.int64)
    position = 0.0
    for t in range(len(states)):
        state = torch.from_numpy(with_position(states[t : t + 1], np.array([position])))
        actions[t] = int(agent.greedy(agent.q_values(state))[0])
        position = float(POSITIONS[actions[t]])
    return actions
