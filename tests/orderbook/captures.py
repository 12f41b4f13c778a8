"""The four recorded Binance L2 captures of ../shared/data (spot @depth@100ms, USD-M @depth@0ms), loaded once."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from pivotal.data.importers.base import DepthBatch, TradeBatch
from pivotal.data.importers.shared_parquet import read_shared
from pivotal.data.orderbook.messages import DepthMessages, snapshot_levels
from pivotal.data.trades import Trades

CAPTURES = [("binance", "BTCUSDT"), ("binance", "ETHUSDT"), ("binance-usdm", "BTCUSDT"), ("binance-usdm", "ETHUSDT")]


@dataclass(frozen=True)
class Capture:
    folder: str
    raw: str
    snapshot: tuple[int, np.ndarray, np.ndarray]
    messages: DepthMessages
    trades: Trades
    ticker: pd.DataFrame  # book_ticker sorted by update_id (not stored: read with pandas)


@cache
def load_capture(root: Path, folder: str, raw: str) -> Capture:
    base = root / folder
    snap = read_shared(base / f"{raw}-book_snapshot.parquet")
    upd = read_shared(base / f"{raw}-depth_updates.parquet")
    trades = read_shared(base / f"{raw}-trades.parquet")
    assert isinstance(snap, DepthBatch) and isinstance(upd, DepthBatch) and isinstance(trades, TradeBatch)
    lid, bids, asks, _ = snapshot_levels(snap.frame)
    ticker = pd.read_parquet(base / f"{raw}-book_ticker.parquet").sort_values("update_id", kind="stable")
    return Capture(
        folder, raw, (lid, bids, asks), DepthMessages.from_frame(upd.frame), trades.trades, ticker.reset_index(drop=True)
    )


# Spot BTC/USDT messages after which the rebuilt top differs from the latest bookTicker with update_id <= u: a level
# the ticker shows but the 100 ms diff stream never adds (see tests/orderbook/test_book.py).
UNEXPLAINED_BY_DIFFS = {("binance", "BTCUSDT"): [50093478174, 50093480542]}
