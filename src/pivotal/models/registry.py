"""Rebuild any saved model from its file: the file carries its type and configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pivotal.models.cnn import CNNModel
from pivotal.models.dqn import DQNAgent
from pivotal.models.protocol import CNNConfig, DQNConfig, TransformerConfig, config_from_dict
from pivotal.models.supervised import SupervisedModel
from pivotal.models.transformer import TransformerModel

MODEL_TYPES = ("cnn", "transformer", "dqn")


def _supervised_from_blob(blob: dict[str, Any]) -> SupervisedModel:
    config = config_from_dict(blob["config"])
    if blob["model_type"] == "cnn" and isinstance(config, CNNConfig):
        model: SupervisedModel = CNNModel(config, name=blob["name"])
    elif blob["model_type"] == "transformer" and isinstance(config, TransformerConfig):
        model = TransformerModel(config, name=blob["name"])
    else:
        raise ValueError(f"saved model type {blob['model_type']!r} does not match its config {type(config).__name__}")
    model.net.load_state_dict(blob["weights"])
    return model


def load_model(path: Path) -> SupervisedModel | DQNAgent:
    """The model saved at ``path`` (CNN, Transformer or DQN with its feature CNN), in eval-ready state on CPU."""
    try:
        blob = torch.load(Path(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"model file {path} does not exist") from None
    kind = blob.get("model_type") if isinstance(blob, dict) else None
    if kind not in MODEL_TYPES:
        raise ValueError(f"{path}: not a pivotal model file (model_type {kind!r}; expected one of {MODEL_TYPES})")
    if kind != "dqn":
        return _supervised_from_blob(blob)
    config = config_from_dict(blob["config"])
    if not isinstance(config, DQNConfig):
        raise ValueError(f"{path}: DQN file with a {type(config).__name__}")
    agent = DQNAgent(config, _supervised_from_blob(blob["feature_model"]), name=blob["name"])
    agent.online.load_state_dict(blob["weights"])
    agent.target.load_state_dict(blob["weights"])
    return agent
