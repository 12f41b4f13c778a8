"""Trade-based microstructure fields: exact hand values, as-of boundary, real Binance prints through the store."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pivotal.data.duckdb_store import DuckDBStore
from pivotal.data.trades import Trades
from pivotal.features.assemble import build_input
from pivotal.features.input_spec import InputSpec, WindowSpec
from pivotal.features.order_flow import order_flow


def hand_trades() -> Trades:
    ts = np.array([1_000, 5_000, 9_000, 9_500, 10_000], np.int64)
    price = np.array([100.0, 101.0, 102.0, 100.0, 999.0])
    amount = np.array([1.0, 2.0, 1.0, 4.0, 50.0])
    sold = np.array([False, True, False, True, False])  # is_buyer_maker: the aggressor sold
    return Trades(ts, np.arange(5, dtype=np.int64), price, amount, sold, "x", "A/B")


def test_hand_values_and_the_print_at_t_is_excluded() -> None:
    flow = order_flow(hand_trades(), t=10_000, windows_ms=(1_000, 10_000))
    assert flow is not None
    assert flow["last_trade_age_ms"] == 500.0  # the print at exactly t=10000 belongs to the next bar
    assert (flow["trades_1s"], flow["buy_volume_1s"], flow["sell_volume_1s"]) == (2.0, 1.0, 4.0)
    assert flow["buy_ratio_1s"] == pytest.approx(0.2)
    assert flow["vwap_offset_1s"] == pytest.approx(math.log((102 + 400) / 5 / 100))
    assert (flow["trades_10s"], flow["buy_volume_10s"], flow["sell_volume_10s"]) == (4.0, 2.0, 6.0)
    assert flow["vwap_offset_10s"] == pytest.approx(math.log((100 + 202 + 102 + 400) / 8 / 100))


def test_no_recent_print_means_no_fields() -> None:
    assert order_flow(hand_trades(), t=1_000, windows_ms=(10_000,)) is None  # only the print at t itself
    assert order_flow(hand_trades(), t=60_000, windows_ms=(10_000,)) is None
    quiet = order_flow(hand_trades(), t=12_000, windows_ms=(1_000, 10_000))
    assert quiet is not None and quiet["trades_1s"] == 0.0 and quiet["trades_10s"] == 4.0  # 5000, 9000, 9500, 10000
    empty = order_flow(hand_trades(), t=20_000, windows_ms=(1_000, 15_000))
    assert empty is not None and empty["trades_1s"] == 0.0 and empty["buy_ratio_1s"] == 0.5 and empty["vwap_offset_1s"] == 0.0


def test_real_binance_prints_through_the_store(shared_data: Path, tmp_path: Path) -> None:
    frame = pd.read_parquet(shared_data / "binance" / "BTCUSDT-trades.parquet")
    frame = frame[frame.timestamp >= 1_723_161_255_000].rename(columns={"timestamp": "ts", "qty": "amount"})
    trades = Trades.from_frame(frame, "binance", "BTC/USDT")
    store = DuckDBStore(tmp_path / "t.duckdb")
    store.write_trades(trades, source="BTCUSDT-trades.parquet")
    t = int(trades.ts[len(trades) // 2])
    spec = InputSpec((WindowSpec("1m", 300),))
    inp = build_input(store, "binance", "BTC/USDT", t, spec)
    store.close()
    assert inp.microstructure == order_flow(trades, t)
    before = frame[(frame.ts >= t - 60_000) & (frame.ts < t)]
    buys = before.amount[~before.is_buyer_maker].sum()
    assert inp.microstructure is not None
    assert inp.microstructure["trades_60s"] == len(before) > 100
    assert inp.microstructure["buy_volume_60s"] == pytest.approx(buys, rel=1e-12)
    assert inp.microstructure["buy_ratio_60s"] == pytest.approx(buys / before.amount.sum(), rel=1e-12)
    assert inp.ohlcv == {}  # no candles stored: completeness would refuse this input
