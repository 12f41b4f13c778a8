"""Every validation rule, and that its message names the file, row, field, value and fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pivotal.data.candles import Candles
from pivotal.data.trades import Trades
from pivotal.data.validation import (
    ValidationError,
    validate_candles,
    validate_depth_snapshot,
    validate_depth_updates,
    validate_trades,
)

M = 60_000


def bars(**overrides: list[float] | list[int]) -> Candles:
    """Five hand-written 1m bars (valid unless overridden)."""
    fields = {
        "ts": [0, M, 2 * M, 3 * M, 4 * M],
        "open": [10.0, 11.0, 12.0, 13.0, 14.0],
        "high": [12.0, 13.0, 14.0, 15.0, 16.0],
        "low": [9.0, 10.0, 11.0, 12.0, 13.0],
        "close": [11.0, 12.0, 13.0, 14.0, 15.0],
        "volume": [1.0, 2.0, 3.0, 4.0, 5.0],
    }
    fields.update(overrides)
    arrays = {k: np.array(v, dtype=np.int64 if k == "ts" else np.float64) for k, v in fields.items()}
    return Candles(**arrays, exchange="binance", symbol="BTC/USDT", timeframe="1m")


def test_valid_bars_pass() -> None:
    validate_candles(bars(), "ok.csv")


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"ts": [0, M, M, 3 * M, 4 * M]}, r"row 2, field 'ts': value 60000 repeats the previous row's timestamp; fix: remove"),
        ({"ts": [0, 2 * M, M, 3 * M, 4 * M]}, r"row 2, field 'ts': value 60000 is earlier than the previous row; fix: sort"),
        ({"ts": [0, M, 2 * M + 1, 3 * M, 4 * M]}, r"row 2, field 'ts': value 120001 is not aligned to the 1m grid"),
        ({"open": [10.0, 11.0, float("nan"), 13.0, 14.0]}, r"row 2, field 'open': value nan is not finite"),
        ({"close": [11.0, 12.0, 13.0, 11.0, 15.0]}, r"row 3, field 'low': value 12.0 is above open or close"),
        ({"low": [9.0, 10.0, 0.0, 12.0, 13.0]}, r"row 2, field 'low': value 0.0 is not a positive price"),
        ({"high": [12.0, 13.0, 14.0, 13.5, 16.0]}, r"row 3, field 'high': value 13.5 is below open or close"),
        ({"low": [9.0, 11.5, 11.0, 12.0, 13.0]}, r"row 1, field 'low': value 11.5 is above open or close"),
        ({"volume": [1.0, 2.0, 3.0, 4.0, -5.0]}, r"row 4, field 'volume': value -5.0 is negative; fix: volume must be >= 0"),
        ({"volume": [1.0, float("inf"), 3.0, 4.0, 5.0]}, r"row 1, field 'volume': value inf is not finite"),
    ],
)
def test_each_candle_rule_names_file_row_field(overrides: dict, expected: str) -> None:
    with pytest.raises(ValidationError, match=r"^BTCUSDT-1m\.csv: " + expected):
        validate_candles(bars(**overrides), "BTCUSDT-1m.csv")


def test_message_counts_every_failing_row() -> None:
    with pytest.raises(ValidationError, match=r"row 1, field 'volume'.*\(3 rows fail this check\)"):
        validate_candles(bars(volume=[1.0, -1.0, -2.0, 3.0, -4.0]), "f.csv")


def test_labels_and_timeframe_are_required() -> None:
    good = bars()
    with pytest.raises(ValidationError, match=r"field 'symbol' is empty"):
        validate_candles(Candles(good.ts, good.open, good.high, good.low, good.close, good.volume, "binance", "", "1m"))
    with pytest.raises(ValidationError, match=r"field 'timeframe': value '7m' is unknown; fix: use one of 1s 1m"):
        validate_candles(Candles(good.ts, good.open, good.high, good.low, good.close, good.volume, "binance", "X/Y", "7m"))
    with pytest.raises(ValidationError, match=r"field 'ts' has dtype float64"):
        validate_candles(
            Candles(good.ts.astype(float), good.open, good.high, good.low, good.close, good.volume, "b", "X/Y", "1m")
        )


def test_weekly_bars_must_open_on_monday() -> None:
    monday = 4 * 86_400_000  # 1970-01-05
    week = 7 * 86_400_000
    ones = np.ones(2)
    validate_candles(Candles(np.array([monday, monday + week]), ones, ones, ones, ones, ones, "b", "X/Y", "1w"))
    with pytest.raises(ValidationError, match=r"row 0, field 'ts': value 0 is not aligned to the 1w grid"):
        validate_candles(Candles(np.array([0, week]), ones, ones, ones, ones, ones, "b", "X/Y", "1w"))


def test_real_file_with_seconds_instead_of_ms_is_rejected(shared_data: Path) -> None:
    frame = pd.read_parquet(shared_data / "binance/BTCUSDT-1m.parquet")
    candles = Candles.from_frame(frame, "binance", "BTC/USDT", "1m")
    validate_candles(candles, "BTCUSDT-1m.parquet")
    in_seconds = Candles(
        candles.ts // 1000, candles.open, candles.high, candles.low, candles.close, candles.volume, "b", "X", "1m"
    )
    with pytest.raises(ValidationError, match=r"row 0, field 'ts'.*not aligned.*check the unit"):
        validate_candles(in_seconds, "BTCUSDT-1m.parquet")


def trades(**overrides: list) -> Trades:
    fields = {
        "ts": [1, 2, 2, 5],
        "trade_id": [10, 11, 12, 13],
        "price": [100.0, 101.0, 99.0, 100.5],
        "amount": [0.1, 0.2, 0.3, 0.4],
        "is_buyer_maker": [True, False, True, False],
    }
    fields.update(overrides)
    return Trades(*(np.array(v) for v in fields.values()), exchange="binance", symbol="BTC/USDT")


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"ts": [1, 3, 2, 5]}, r"row 2, field 'ts': value 2 is earlier than the previous row"),
        ({"trade_id": [10, 11, 10, 13]}, r"row 2, field 'trade_id': value 10 appears twice"),
        ({"price": [100.0, 0.0, 99.0, 100.5]}, r"row 1, field 'price': value 0.0 is not a positive price"),
        ({"amount": [0.1, 0.2, float("nan"), 0.4]}, r"row 2, field 'amount': value nan is not a positive finite amount"),
    ],
)
def test_each_trade_rule(overrides: dict, expected: str) -> None:
    validate_trades(trades(), "ok")
    with pytest.raises(ValidationError, match=r"^trades\.csv: " + expected):
        validate_trades(trades(**overrides), "trades.csv")


def test_depth_rules_on_real_rows(shared_data: Path) -> None:
    snapshot = pd.read_parquet(shared_data / "binance/BTCUSDT-book_snapshot.parquet")
    updates = pd.read_parquet(shared_data / "binance-usdm/BTCUSDT-depth_updates.parquet").iloc[:100]
    validate_depth_snapshot(snapshot, "snap")
    validate_depth_updates(updates, "upd")
    with pytest.raises(ValidationError, match=r"^snap: missing columns \['level'\]"):
        validate_depth_snapshot(snapshot.drop(columns=["level"]), "snap")
    bad = snapshot.copy()
    bad.loc[3, "qty"] = -1.0
    with pytest.raises(ValidationError, match=r"row 3, field 'qty': value -1.0"):
        validate_depth_snapshot(bad, "snap")
    bad = updates.copy()
    bad.loc[5, "first_update_id"] = bad.loc[5, "final_update_id"] + 1
    with pytest.raises(ValidationError, match=r"row 5, field 'first_update_id'.*after final_update_id"):
        validate_depth_updates(bad, "upd")
    bad = updates.copy()
    bad["local_ts_ns"] = bad["local_ts_ns"].astype("Int64")
    bad.loc[9, "local_ts_ns"] = pd.NA
    with pytest.raises(ValidationError, match=r"row 9, field 'local_ts_ns'.*is null"):
        validate_depth_updates(bad, "upd")
