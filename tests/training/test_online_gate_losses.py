"""The gate's per-sample losses (one forward pass, vectorised reductions) equal ``multitask_loss`` of each row alone,
including rows without some targets (kind -1, NaN price/bars, action -1)."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from pivotal.models.heads import multitask_loss
from pivotal.training.online import per_sample_losses
from pivotal.training.queue import to_batch
from tests.training.online_fixtures import make_samples, tiny_model


def test_per_sample_losses_equal_the_loss_of_each_row_alone() -> None:
    samples = make_samples(12, seed=3)
    samples[1].arrays["action"][...] = -1  # no action target: action and confidence terms drop out
    samples[2].arrays["kind"][:] = -1  # no pivot targets at all
    samples[2].arrays["price"][:] = np.nan
    samples[2].arrays["bars"][:] = np.nan
    model = tiny_model(seed=4)
    batch = to_batch(samples)
    got = per_sample_losses(model, batch)
    model.net.eval()
    with torch.inference_mode():
        out = model.net(batch["windows"], batch["context"])
        names = [f.name for f in dataclasses.fields(out)]
        expected = [
            float(
                multitask_loss(
                    type(out)(**{n: getattr(out, n)[i : i + 1] for n in names}), {k: v[i : i + 1] for k, v in batch.items()}
                )[0]
            )
            for i in range(len(samples))
        ]
    assert got.shape == (12,)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
