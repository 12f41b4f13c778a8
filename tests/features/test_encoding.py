"""Tensor encoding: fixed shapes, exact pivot normalisation (spec A.6 HV3), finite and deterministic values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pivotal.data.candles import Candles
from pivotal.features.assemble import PreparedSeries, build_input_from_series
from pivotal.features.encoding import CHANNELS, N_CHANNELS, context_size, encode, encode_batch, windows_shape
from pivotal.features.input_spec import InputSpec, WindowSpec
from pivotal.features.model_io import BaseDataInput, ShapeError
from pivotal.structure.pivots import wms_batch
from pivotal.structure.types import PivotParams
from tests.vectors import HV3_HIGH

MINUTE, HOUR = 60_000, 3_600_000
SPEC = InputSpec((WindowSpec("1m", 300), WindowSpec("1h", 120), WindowSpec("1s", 300, "BTC/USDT")), context_levels=5)


@pytest.fixture(scope="module")
def prepared(shared_data: Path) -> dict[tuple[str, str], PreparedSeries]:
    minutes = pd.read_parquet(shared_data / "binance" / "ETHUSDT-1m-2025.parquet").iloc[:1500]
    hours = pd.read_parquet(shared_data / "binance" / "ETHUSDT-1h-2018-2026.parquet")
    first = int(np.searchsorted(hours.timestamp.to_numpy(), 1_735_689_600_000)) - 300
    return {
        ("ETH/USDT", "1m"): PreparedSeries.build(Candles.from_frame(minutes, "binance", "ETH/USDT", "1m"), SPEC.pivot_params),
        ("ETH/USDT", "1h"): PreparedSeries.build(
            Candles.from_frame(hours.iloc[first : first + 330], "binance", "ETH/USDT", "1h"), SPEC.pivot_params
        ),
    }


def sample(prepared: dict[tuple[str, str], PreparedSeries], bar: int) -> BaseDataInput:
    t = int(prepared[("ETH/USDT", "1m")].candles.ts[bar]) + MINUTE
    return build_input_from_series(prepared, "ETH/USDT", t, SPEC)


def test_shapes_are_fixed_by_the_spec(prepared: dict[tuple[str, str], PreparedSeries]) -> None:
    assert windows_shape(SPEC) == (3, 300, N_CHANNELS) and N_CHANNELS == len(CHANNELS) == 11
    assert context_size(SPEC) == 3 * (6 * 5 + 2)
    for bar in (400, 900, 1499):
        encoded = encode(sample(prepared, bar), SPEC)
        encoded.validate(SPEC)
        assert encoded.windows.dtype == np.float32 and encoded.context.dtype == np.float32
        assert np.isfinite(encoded.windows).all() and np.isfinite(encoded.context).all()


def test_padding_and_missing_windows_are_zero_with_present_flag(prepared: dict[tuple[str, str], PreparedSeries]) -> None:
    encoded = encode(sample(prepared, 1000), SPEC)
    present = CHANNELS.index("present")
    assert (encoded.windows[0, :, present] == 1).all()
    assert (encoded.windows[1, :180] == 0).all() and (encoded.windows[1, 180:, present] == 1).all()  # 120 of 300 rows
    assert (encoded.windows[2] == 0).all() and (encoded.context[2 * 32 :] == 0).all()  # no BTC 1s in the data


def test_deterministic(prepared: dict[tuple[str, str], PreparedSeries]) -> None:
    a, b = encode(sample(prepared, 777), SPEC), encode(sample(prepared, 777), SPEC)
    assert np.array_equal(a.windows, b.windows) and np.array_equal(a.context, b.context)
    windows, context = encode_batch([sample(prepared, 777), sample(prepared, 778)], SPEC)
    assert windows.shape == (2, 3, 300, 11) and context.shape == (2, 96)
    assert np.array_equal(windows[0], a.windows) and not np.array_equal(windows[1], a.windows)


def hv3_input() -> tuple[BaseDataInput, InputSpec]:
    """Spec A.9 HV3 (k=1, m=1): low = high - 4, open = close = high - 2."""
    params = PivotParams(k=1, m=1, levels=3)
    high = np.array(HV3_HIGH, np.float64)
    candles = Candles(np.arange(25, dtype=np.int64) * MINUTE, high - 2, high, high - 4, high - 2, np.ones(25), "t", "HV/3", "1m")
    pivots = wms_batch(high=candles.high, low=candles.low, params=params)
    spec = InputSpec((WindowSpec("1m", 25),), pivot_params=params, bounds_level=2, context_levels=3)
    return BaseDataInput("HV/3", 25 * MINUTE, {("HV/3", "1m"): candles}, pivots={("HV/3", "1m"): pivots}), spec


def test_prices_are_normalised_by_pivot_bounds_exactly() -> None:
    # Spec A.6: HV3, level 2, t = 24 -> upper 18, lower 3, close 11 -> 0.5333
    inp, spec = hv3_input()
    encoded = encode(inp, spec)
    close = encoded.windows[0, :, CHANNELS.index("close")]
    assert close[-1] == pytest.approx(8 / 15)
    assert encoded.windows[0, -1, CHANNELS.index("high")] == pytest.approx(10 / 15)
    assert (encoded.windows[0, :, CHANNELS.index("log_volume_z")] == 0).all()  # constant volume
    assert encoded.windows[0, -1, CHANNELS.index("log_return")] == pytest.approx(np.log(11 / 12) / np.log(18 / 3), rel=1e-6)


def test_pivot_context_holds_the_last_confirmed_pivot_of_each_level() -> None:
    inp, spec = hv3_input()
    context = encode(inp, spec).context.reshape(-1)
    level2 = context[6:12]  # L2H 21@15, L2L 18@7
    assert level2 == pytest.approx([12 / 15, 3 / 25, 1, 4 / 15, 6 / 25, 1])
    level3 = context[12:18]  # L3H 11@18, L3L 10@3
    assert level3 == pytest.approx([1.0, 13 / 25, 1, 0.0, 14 / 25, 1])
    assert context[-2] == pytest.approx(8 / 15) and context[-1] == pytest.approx(np.log(6))


def test_window_longer_than_spec_is_a_shape_error() -> None:
    inp, _ = hv3_input()
    short = InputSpec((WindowSpec("1m", 20),), pivot_params=PivotParams(k=1, m=1, levels=3), bounds_level=2, context_levels=3)
    with pytest.raises(ShapeError, match=r"window \('HV/3', '1m'\): expected at most 20 bars, got 25"):
        encode(inp, short)
