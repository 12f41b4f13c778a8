"""Trade-list fingerprints (sha256, ``runtime.node.trade_fingerprint``) of LS3, SMA cross and a wider LS3 on real data,
through the backtest use case AND a replay through a trading node (``runtime.parity.run_parity``): both must equal
the stored value. The values were computed once with the code of 2026-12-06; a change means the engine, a strategy,
the replay path or the data changed what is traded: find out which (``pivotal parity`` names the first divergence
against a saved trade list) before updating a constant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pivotal.runtime.parity import run_parity
from pivotal.services.backtest import CandleSource
from pivotal.services.run import RunRequest, prepare

pytestmark = pytest.mark.realdata

Y2022, Y2023, Y2024 = 1_640_995_200_000, 1_672_531_200_000, 1_704_067_200_000  # Jan 1st, UTC
SERIES = {
    # Binance BTC/USDT 1h over 2023 (8,759 bars: the exchange has one hour missing), Coinbase BTC/USD 4h over 2022
    "binance-1h-2023": ("binance/BTCUSDT-1h-2018-2026.parquet", "binance", "BTC/USDT", Y2023, Y2024, 8_759),
    "coinbase-4h-2022": ("coinbase/BTCUSD-4h.parquet", "coinbase", "BTC/USD", Y2022, Y2023, 2_190),
}
LS3_WIDE = {"stop_distance": 1.5, "target_multiple": 3.0, "volume_spike_threshold": 1.5}
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "ls3": ("liquidity_sweep", {}),
    "sma_cross": ("sma_cross", {}),
    "ls3_wide": ("liquidity_sweep", LS3_WIDE),
}
# (series, case) -> (trades, sha256); fee 0.1 % and slippage 0.05 % per side (the defaults)
FINGERPRINTS: dict[str, dict[str, tuple[int, str]]] = {
    "binance-1h-2023": {
        "ls3": (190, "f21125c1381e6c8e5a26ef3eb2f727d0e01fb6e48b790eb25f947f3c97576ccd"),  # pragma: allowlist secret
        "sma_cross": (177, "00c25e0ec2437d386e4b27ecaeb2b97828428a98e173c67dfc1b4f49d5c99052"),  # pragma: allowlist secret
        "ls3_wide": (211, "525e359683c41e5139a41cf9054695aeb68cd0b1f502938d4a654c1b6cdd2052"),  # pragma: allowlist secret
    },
    "coinbase-4h-2022": {
        "ls3": (32, "9826d48e9f00e290c687b48d041183116655fff66b72cf6fa5141f3b69287f5f"),  # pragma: allowlist secret
        "sma_cross": (47, "114f7a11d103c616cf4a6bb496ad6db1dd2e86ffe0d9e3d4b8cfc1328aa0bf54"),  # pragma: allowlist secret
        "ls3_wide": (42, "3f2bcae782bc848f6f956c788223c1acbb2b19cadba9ff15fe09b8ba0a6a9747"),  # pragma: allowlist secret
    },
}


@pytest.mark.parametrize(("series", "case"), [(s, c) for s in FINGERPRINTS for c in FINGERPRINTS[s]])
def test_backtest_and_replay_fingerprints_are_the_stored_ones(shared_data: Path, series: str, case: str) -> None:
    file, exchange, symbol, start, end, n = SERIES[series]
    strategy, params = CASES[case]
    source = CandleSource(shared_data / file, exchange, symbol, None, start, end)
    prepared = prepare(RunRequest("backtest", strategy, source, params))
    assert len(prepared.bars) == n
    report = run_parity(prepared)
    trades, fingerprint = FINGERPRINTS[series][case]
    assert report.names == ("backtest", "replay")
    assert report.counts == (trades, trades)
    assert report.fingerprints == (fingerprint, fingerprint), report.text()
