"""``SupervisedModel``: the Model-protocol wrapper shared by the CNN and the Transformer.

It owns the network, the optimiser and the device; turns one encoded input into a ``ModelOutput``; runs one
optimisation step of the masked multi-task loss; saves/loads weights together with the configuration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pivotal.core.vocabulary import ACTIONS, PIVOT_KINDS
from pivotal.models.heads import HeadOutputs, decode, multitask_loss
from pivotal.models.io import ModelOutput, PivotPrediction
from pivotal.models.protocol import Batch, config_to_dict


def pick_device(requested: str = "cpu") -> torch.device:
    """``cuda`` only when asked for and present; anything else is a clear error."""
    if requested == "cpu":
        return torch.device("cpu")
    if requested == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda requested but torch.cuda.is_available() is False; use --device cpu")
        return torch.device("cuda")
    raise ValueError(f"unknown device {requested!r}; use cpu or cuda")


def encoded_arrays(encoded: Any) -> tuple[np.ndarray, np.ndarray]:
    """(windows [W, L, C], context [K]) from an encoding result object or a (windows, context) pair."""
    if isinstance(encoded, tuple):
        windows, context = encoded
    else:
        windows, context = encoded.windows, encoded.context
    return np.asarray(windows, np.float32), np.asarray(context, np.float32)


class SupervisedModel:
    """Common predict / train_step / save / load for networks returning :class:`HeadOutputs`."""

    model_type = "supervised"

    def __init__(self, net: nn.Module, config: Any, name: str, lr: float = 1e-3) -> None:
        self.net = net
        self.config = config
        self.name = name
        self.lr = lr
        self.device = torch.device("cpu")
        self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=lr, weight_decay=1e-4)

    # --- device / size ------------------------------------------------------------------------------
    def to(self, device: torch.device) -> SupervisedModel:
        self.net.to(device)
        self.device = device
        return self

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.net.parameters())

    # --- forward ------------------------------------------------------------------------------------
    def forward(self, windows: torch.Tensor, context: torch.Tensor) -> HeadOutputs:
        return self.net(windows.to(self.device), context.to(self.device))

    @torch.inference_mode()
    def infer(self, windows: torch.Tensor, context: torch.Tensor) -> dict[str, torch.Tensor]:
        """Batch inference in eval mode → decoded heads (kind_prob, price, bars, action_prob, confidence, hidden)."""
        self.net.eval()
        out = self.forward(windows, context)
        decoded = decode(out)
        decoded["hidden"] = out.hidden
        return decoded

    def predict(self, encoded: Any, symbol: str = "", timestamp: int = 0) -> ModelOutput:
        windows, context = encoded_arrays(encoded)
        expected = (self.config.shape.n_windows, self.config.shape.window_len, self.config.shape.n_channels)
        if windows.shape != expected or context.shape != (self.config.shape.n_context,):
            raise ValueError(
                f"{self.name}: expected windows {expected} and context ({self.config.shape.n_context},), "
                f"got {windows.shape} and {context.shape}"
            )
        decoded = self.infer(torch.from_numpy(windows)[None], torch.from_numpy(context)[None])
        return self.to_output(decoded, 0, symbol, timestamp)

    def to_output(self, decoded: dict[str, torch.Tensor], row: int, symbol: str, timestamp: int) -> ModelOutput:
        """Row ``row`` of a decoded batch as a ``ModelOutput``."""
        probs = decoded["action_prob"][row].double().cpu().numpy()
        probs = probs / probs.sum()
        kind_prob = decoded["kind_prob"][row].cpu().numpy()
        pivots = tuple(
            PivotPrediction(
                level=level + 1,
                kind=PIVOT_KINDS[int(kind_prob[level].argmax())],
                price_offset=float(decoded["price"][row, level]),
                bars_until=float(decoded["bars"][row, level]),
                confidence=float(kind_prob[level].max()),
            )
            for level in range(kind_prob.shape[0])
        )
        direction = float(np.clip(probs[0] - probs[1], -1.0, 1.0))
        hidden = {"trunk": decoded["hidden"][row].float().cpu().numpy()}
        hidden.update({k: v[row].float().cpu().numpy() for k, v in self.extra_hidden_states().items()})
        return ModelOutput(
            model_type=self.model_type,
            model_name=self.name,
            symbol=symbol,
            timestamp=int(timestamp),
            confidence=float(decoded["confidence"][row]),
            action=ACTIONS[int(probs.argmax())],
            action_probabilities={a: float(p) for a, p in zip(ACTIONS, probs, strict=True)},
            direction_vector=direction,
            direction_confidence=abs(direction),
            pivots=pivots,
            hidden_states=hidden,
            metadata={"parameters": self.parameter_count()},
        )

    def extra_hidden_states(self) -> dict[str, torch.Tensor]:
        """Model-specific hidden states of the last forward pass (per batch row)."""
        return {}

    # --- training -----------------------------------------------------------------------------------
    def train_step(self, batch: Batch) -> dict[str, float]:
        self.net.train()
        batch = {k: v.to(self.device) for k, v in batch.items()}
        out = self.net(batch["windows"], batch["context"])
        loss, parts = multitask_loss(out, batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
        self.optimizer.step()
        return parts

    @torch.inference_mode()
    def eval_loss(self, batch: Batch) -> dict[str, float]:
        self.net.eval()
        batch = {k: v.to(self.device) for k, v in batch.items()}
        _, parts = multitask_loss(self.net(batch["windows"], batch["context"]), batch)
        return parts

    # --- persistence --------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "model_type": self.model_type,
            "name": self.name,
            "config": config_to_dict(self.config),
            "weights": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
        }

    def save(self, path: Path) -> None:
        torch.save(self.state(), Path(path))

    def load(self, path: Path) -> None:
        blob = torch.load(Path(path), map_location=self.device, weights_only=True)
        if blob.get("config") != config_to_dict(self.config):
            raise ValueError(f"{path}: saved config differs from this model's; build the model from the file's config")
        self.net.load_state_dict(blob["weights"])
