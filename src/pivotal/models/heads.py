"""Output heads shared by the CNN and the Transformer, and the masked multi-task loss that trains them.

Per pivot level: next-pivot kind logits (H/L), price offset and log1p(bars until) regressions. Plus action logits
(BUY/SELL/HOLD) and a confidence in [0, 1] trained to predict whether the action head is right on this sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from pivotal.core.vocabulary import ACTIONS
from pivotal.models.protocol import Batch


@dataclass
class HeadOutputs:
    """Raw head outputs for a batch of B inputs and ``levels`` pivot levels."""

    kind_logits: torch.Tensor  # [B, levels, 2]
    price: torch.Tensor  # [B, levels]
    log_bars: torch.Tensor  # [B, levels]   log1p(bars until)
    action_logits: torch.Tensor  # [B, 3]
    confidence_logit: torch.Tensor  # [B]
    hidden: torch.Tensor  # [B, hidden_dim] — exposed to the DQN


class PivotHeads(nn.Module):
    """A per-level MLP (``hidden`` wide, two layers) plus action and confidence heads on a shared feature vector."""

    def __init__(self, in_dim: int, levels: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.levels = levels
        self.level_heads = nn.ModuleList(
            nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, 4)) for _ in range(levels)
        )
        half = max(hidden // 2, 8)
        self.action = nn.Sequential(nn.Linear(in_dim, half), nn.GELU(), nn.Linear(half, len(ACTIONS)))
        self.confidence = nn.Sequential(nn.Linear(in_dim, half), nn.GELU(), nn.Linear(half, 1))

    def forward(self, features: torch.Tensor) -> HeadOutputs:
        per_level = torch.stack([head(features) for head in self.level_heads], dim=1)  # [B, levels, 4]
        return HeadOutputs(
            kind_logits=per_level[..., :2],
            price=per_level[..., 2],
            log_bars=per_level[..., 3],
            action_logits=self.action(features),
            confidence_logit=self.confidence(features).squeeze(-1),
            hidden=features,
        )


PRICE_SCALE = 100.0  # offsets are fractions of close (~1e-2); scaled to ~1 so that the regression losses are balanced


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    count = mask.sum()
    if count == 0:
        return values.sum() * 0.0
    return (values * mask).sum() / count


def multitask_loss(out: HeadOutputs, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
    """Masked sum of: kind CE, Huber(price*100), Huber(log1p bars), action CE, confidence BCE.

    Unknown targets (kind -1, NaN offsets, action -1) contribute nothing, so samples whose later pivots have not
    formed yet still train the heads they do have labels for.
    """
    kind = batch["kind"]
    kind_mask = (kind >= 0).float()
    kind_ce = F.cross_entropy(out.kind_logits.reshape(-1, 2), kind.clamp(min=0).reshape(-1), reduction="none")
    kind_loss = _masked_mean(kind_ce.view_as(kind_mask), kind_mask)

    price = batch["price"]
    price_mask = torch.isfinite(price).float()
    price_err = F.smooth_l1_loss(out.price, torch.nan_to_num(price) * PRICE_SCALE, reduction="none")
    price_loss = _masked_mean(price_err, price_mask)

    bars = batch["bars"]
    bars_mask = torch.isfinite(bars).float()
    bars_err = F.smooth_l1_loss(out.log_bars, torch.log1p(torch.nan_to_num(bars).clamp(min=0)), reduction="none")
    bars_loss = _masked_mean(bars_err, bars_mask)

    action = batch["action"]
    action_mask = (action >= 0).float()
    action_ce = F.cross_entropy(out.action_logits, action.clamp(min=0), reduction="none")
    action_loss = _masked_mean(action_ce, action_mask)
    correct = (out.action_logits.argmax(-1) == action).float().detach()
    conf_bce = F.binary_cross_entropy_with_logits(out.confidence_logit, correct, reduction="none")
    conf_loss = _masked_mean(conf_bce, action_mask)

    total = kind_loss + price_loss + bars_loss + action_loss + 0.5 * conf_loss
    parts = {
        "loss": float(total.detach()),
        "kind_loss": float(kind_loss.detach()),
        "price_loss": float(price_loss.detach()),
        "bars_loss": float(bars_loss.detach()),
        "action_loss": float(action_loss.detach()),
        "confidence_loss": float(conf_loss.detach()),
    }
    return total, parts


def decode(out: HeadOutputs) -> dict[str, torch.Tensor]:
    """Heads → human units: kind probabilities, price offsets (fraction of close), bars until, action probabilities."""
    return {
        "kind_prob": torch.softmax(out.kind_logits, dim=-1),
        "price": out.price / PRICE_SCALE,
        "bars": torch.expm1(out.log_bars).clamp(min=0.0),
        "action_prob": torch.softmax(out.action_logits, dim=-1),
        "confidence": torch.sigmoid(out.confidence_logit),
    }
