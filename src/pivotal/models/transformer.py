"""Patch-token Transformer with the same heads as the CNN.

    windows [B, W, L, C] ──patches of ``patch_len`` bars──▶ pattern encoder MLP ──▶ tokens [B·W, P, d]
        + position embedding, [CLS] ──temporal encoder (n_layers, shared by all windows)──▶ per-window CLS [B, W, d]
        + timeframe embedding, + context token ──cross-timeframe encoder (n_cross_layers)──▶ pooled [B, d] ──▶ heads

With ``shape.order_book`` = O > 0 the last O context values (COB vector + presence flag) become one more token of
the cross-timeframe encoder (their own MLP); with O = 0 the network is unchanged.

Presets ≈ 5 M / 8 M / 12 M parameters (``TRANSFORMER_PRESETS``; the 8 M one is d_model 256, 8 heads, 4 layers,
d_ff 1024 as in the reference). The left edge of each window is zero-padded to a whole number of patches.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from pivotal.models.heads import HeadOutputs, PivotHeads
from pivotal.models.protocol import TRANSFORMER_PRESETS, InputShape, TransformerConfig, with_shape
from pivotal.models.supervised import SupervisedModel


def _encoder(config: TransformerConfig, layers: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(
        config.d_model, config.n_heads, config.d_ff, config.dropout, activation="gelu", batch_first=True, norm_first=True
    )
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class TransformerNet(nn.Module):
    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        shape, d = config.shape, config.d_model
        if d % config.n_heads:
            raise ValueError(f"d_model {d} must be divisible by n_heads {config.n_heads}")
        self.patch_len = config.patch_len
        self.n_patches = math.ceil(shape.window_len / config.patch_len)
        patch_dim = config.patch_len * shape.n_channels
        self.pattern = nn.Sequential(nn.Linear(patch_dim, d // 2), nn.GELU(), nn.Linear(d // 2, d))
        self.position = nn.Parameter(torch.zeros(1, self.n_patches + 1, d))
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.temporal = _encoder(config, config.n_layers)
        self.timeframe = nn.Parameter(torch.zeros(1, shape.n_windows, d))
        self.book = shape.order_book
        self.context = nn.Linear(shape.n_context - self.book, d)
        self.order_book = nn.Sequential(nn.Linear(self.book, d), nn.GELU(), nn.Linear(d, d)) if self.book else None
        self.cross = _encoder(config, config.n_cross_layers)
        self.norm = nn.LayerNorm(d)
        self.heads = PivotHeads(d, shape.levels, config.head_hidden, config.dropout)
        nn.init.normal_(self.position, std=0.02)
        nn.init.normal_(self.timeframe, std=0.02)

    def forward(self, windows: torch.Tensor, context: torch.Tensor) -> HeadOutputs:
        b, w, length, c = windows.shape
        pad = self.n_patches * self.patch_len - length
        x = windows.reshape(b * w, length, c)
        if pad:
            x = F.pad(x, (0, 0, pad, 0))
        tokens = self.pattern(x.reshape(b * w, self.n_patches, self.patch_len * c))
        tokens = torch.cat([self.cls.expand(b * w, -1, -1), tokens], dim=1) + self.position
        per_window = self.temporal(tokens)[:, 0].view(b, w, -1) + self.timeframe
        if self.order_book is not None:
            book = self.order_book(context[:, -self.book :])[:, None]
            joint = torch.cat([per_window, self.context(context[:, : -self.book])[:, None], book], dim=1)
        else:
            joint = torch.cat([per_window, self.context(context)[:, None]], dim=1)
        pooled = self.norm(self.cross(joint).mean(dim=1))
        return self.heads(pooled)


class TransformerModel(SupervisedModel):
    """The Transformer behind the :class:`~pivotal.models.protocol.Model` protocol."""

    model_type = "transformer"

    def __init__(
        self, config: TransformerConfig | None = None, name: str = "transformer", lr: float = 3e-4, seed: int = 0
    ) -> None:
        config = config or TRANSFORMER_PRESETS["8m"]
        torch.manual_seed(seed)
        super().__init__(TransformerNet(config), config, name=name, lr=lr)


def preset_config(preset: str, shape: InputShape | None = None) -> TransformerConfig:
    """A named preset ('5m', '8m', '12m'), optionally for another input shape; the error lists valid names."""
    if preset not in TRANSFORMER_PRESETS:
        raise ValueError(f"unknown transformer preset {preset!r}; use one of {sorted(TRANSFORMER_PRESETS)}")
    config = TRANSFORMER_PRESETS[preset]
    return config if shape is None else with_shape(config, shape)
