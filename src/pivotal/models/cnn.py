"""Multi-timeframe CNN: one 1-D conv encoder shared by every window, a GRU over its feature sequence, pivot heads.

    windows [B, W, L, C] ──conv stack (per window, shared)──▶ [B·W, T', F] ──GRU──▶ last state [B·W, G]
        + learned timeframe embedding ──concat over W, + context [B, K]──▶ MLP trunk [B, D] ──▶ PivotHeads

With ``shape.order_book`` = O > 0 the last O context values (COB vector + presence flag) go through their own
Linear + GELU (width ``gru_hidden``) before joining the trunk input; with O = 0 the network is unchanged.

Hidden states exposed to the DQN: the trunk vector (``hidden``) and the per-window GRU states (``window_states``).
The default configuration is sized for p99 ≤ 5 ms CPU inference of one input (see benchmarks/bench_models.py).
"""

from __future__ import annotations

import torch
from torch import nn

from pivotal.models.heads import HeadOutputs, PivotHeads
from pivotal.models.protocol import CNNConfig
from pivotal.models.supervised import SupervisedModel


class CNNNet(nn.Module):
    def __init__(self, config: CNNConfig) -> None:
        super().__init__()
        shape = config.shape
        layers: list[nn.Module] = []
        channels_in = shape.n_channels
        for channels_out in config.conv_channels:
            layers += [
                nn.Conv1d(channels_in, channels_out, config.kernel, stride=config.stride, padding=config.kernel // 2),
                nn.BatchNorm1d(channels_out),
                nn.GELU(),
            ]
            channels_in = channels_out
        self.conv = nn.Sequential(*layers)
        self.gru = nn.GRU(channels_in, config.gru_hidden, batch_first=True)
        self.window_embedding = nn.Parameter(torch.zeros(shape.n_windows, config.gru_hidden))
        book = self.book = shape.order_book
        self.order_book = nn.Sequential(nn.Linear(book, config.gru_hidden), nn.GELU()) if book else None
        trunk_in = shape.n_windows * config.gru_hidden + shape.n_context - book + (config.gru_hidden if book else 0)
        self.trunk = nn.Sequential(
            nn.Linear(trunk_in, config.trunk_hidden),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.trunk_hidden, config.trunk_hidden),
            nn.GELU(),
        )
        self.heads = PivotHeads(config.trunk_hidden, shape.levels, config.trunk_hidden, config.dropout)
        self.window_states: torch.Tensor | None = None

    def forward(self, windows: torch.Tensor, context: torch.Tensor) -> HeadOutputs:
        b, w, length, c = windows.shape
        x = windows.reshape(b * w, length, c).transpose(1, 2)  # Conv1d wants [N, C, L]
        x = self.conv(x).transpose(1, 2)  # [B·W, T', F]
        _, last = self.gru(x)  # [1, B·W, G]
        states = last.squeeze(0).view(b, w, -1) + self.window_embedding
        self.window_states = states.detach()
        if self.order_book is not None:
            context = torch.cat([context[:, : -self.book], self.order_book(context[:, -self.book :])], dim=1)
        features = self.trunk(torch.cat([states.flatten(1), context], dim=1))
        return self.heads(features)


class CNNModel(SupervisedModel):
    """The CNN behind the :class:`~pivotal.models.protocol.Model` protocol."""

    model_type = "cnn"

    def __init__(self, config: CNNConfig | None = None, name: str = "cnn", lr: float = 1e-3, seed: int = 0) -> None:
        config = config or CNNConfig()
        torch.manual_seed(seed)
        super().__init__(CNNNet(config), config, name=name, lr=lr)

    def extra_hidden_states(self) -> dict[str, torch.Tensor]:
        states = getattr(self.net, "window_states", None)
        return {} if states is None else {"window_states": states}
