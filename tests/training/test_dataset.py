"""Training samples: no look-ahead in the encoded inputs, exact label masking by ``known_at``, aggregation."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pivotal.data.candles import Candles
from pivotal.training.dataset import SampleDataset, build_samples, prepare
from tests.models.real_samples import SYMBOL, real_candles, spec_1h

H = 3_600_000


def _samples(candles: Candles):  # type: ignore[no-untyped-def]
    spec = spec_1h()
    return build_samples(prepare({(SYMBOL, "1h"): candles}, spec), SYMBOL, spec, levels=3)


def test_inputs_at_t_do_not_change_when_later_bars_change(shared_data: Path) -> None:
    candles = real_candles(shared_data, 400, offset=30_000)
    cut = 300
    later = slice(cut + 1, None)
    opened = np.r_[candles.open[: cut + 1], candles.open[later] * 0.97]
    altered = replace(
        candles,
        open=opened,
        low=np.minimum(candles.low, opened),
        high=np.r_[candles.high[: cut + 1], candles.high[later] * 1.05],
        close=np.r_[candles.close[: cut + 1], candles.close[later] * 1.02],
    )
    a, b = _samples(candles), _samples(altered)
    upto = a.index <= cut
    assert upto.sum() > 100
    np.testing.assert_array_equal(a.windows[upto], b.windows[upto])
    np.testing.assert_array_equal(a.context[upto], b.context[upto])
    np.testing.assert_array_equal(a.last_kind[upto], b.last_kind[upto])
    # the open of bar t+1 is carried only as the fill price of a decision at t: it changes, the inputs at t do not
    at_cut = np.flatnonzero(a.index == cut)[0]
    assert a.next_open[at_cut] == candles.open[cut + 1] and b.next_open[at_cut] == candles.open[cut + 1] * 0.97
    np.testing.assert_array_equal(a.next_open[a.index < cut], b.next_open[b.index < cut])
    assert not np.array_equal(a.windows[~upto], b.windows[~upto])  # the alteration is visible after the cut


def test_known_by_hides_every_target_not_yet_confirmed(shared_data: Path) -> None:
    samples = _samples(real_candles(shared_data, 400, offset=30_000))
    now = int(samples.index[150])
    masked = samples.known_by(now)
    late = (samples.known_at > now) | (samples.known_at < 0)
    assert late.any() and (~late).any()
    assert np.all(masked.kind[late] == -1) and np.all(np.isnan(masked.price[late]))
    np.testing.assert_array_equal(masked.kind[~late], samples.kind[~late])
    assert np.all(masked.action[(samples.action_known_at > now)] == -1)
    assert np.all(samples.known_at[samples.known_at >= 0] > samples.index[:, None].repeat(3, 1)[samples.known_at >= 0])


def test_dataset_serves_batches(shared_data: Path) -> None:
    candles = real_candles(shared_data, 300, offset=30_000)
    samples = _samples(candles)
    assert samples.next_open[:-1].tolist() == candles.open[samples.index[:-1] + 1].tolist()
    assert np.isnan(samples.next_open[-1]) and samples.index[-1] == len(candles) - 1
    data = SampleDataset(samples)
    batch = data.__getitems__([0, 5, 9])
    assert batch["windows"].shape == (3, 1, 100, 11) and batch["kind"].shape == (3, 3)
    assert data[4]["context"].shape == (samples.context.shape[1],) and len(data) == len(samples)


def test_too_little_history_is_a_clear_error(shared_data: Path) -> None:
    with pytest.raises(ValueError, match="has 100 closed bars in every window"):
        _samples(real_candles(shared_data, 80, offset=30_000))
