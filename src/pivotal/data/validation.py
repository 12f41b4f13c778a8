"""Validation of every write: candles, trades and order-book rows.

Checks are vectorised; on failure the message names the source, the first offending row (0-based position in the
batch), the field, the value, how many rows fail the same rule, and how to fix the input.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from pivotal.core.timeframes import TIMEFRAMES
from pivotal.data.alignment import is_aligned
from pivotal.data.candles import Candles
from pivotal.data.trades import Trades

SNAPSHOT_COLUMNS = ("local_ts_ns", "event_ts_ms", "last_update_id", "side", "level", "price", "qty")
UPDATE_COLUMNS = (
    "local_ts_ns",
    "event_ts_ms",
    "first_update_id",
    "final_update_id",
    "side",
    "price",
    "qty",
)
# Columns Binance fills only on some venues (USD-M): they may be missing or null.
OPTIONAL_DEPTH_COLUMNS = ("event_ts_ms", "transaction_ts_ms", "prev_final_update_id")


# Market data cannot predate Bitcoin (2009-01-01) nor lie more than a day in the future; anything outside is a unit
# or sign mistake (seconds read as ms, µs read as ms, a negative number), not data.
EARLIEST_MS = 1_230_768_000_000  # 2009-01-01T00:00:00Z
FUTURE_SLACK_MS = 86_400_000


def sane_time_range(now_ms: int | None = None) -> tuple[int, int]:
    """Inclusive epoch-ms bounds for imported or downloaded times: 2009-01-01 .. now + 1 day."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    return EARLIEST_MS, now + FUTURE_SLACK_MS


def describe_time_range(now_ms: int | None = None) -> str:
    lo, hi = sane_time_range(now_ms)
    fmt = "%Y-%m-%d %H:%M"
    return f"{datetime.fromtimestamp(lo / 1000, UTC):{fmt}} .. {datetime.fromtimestamp(hi / 1000, UTC):{fmt}} UTC"


class ValidationError(ValueError):
    """Input rejected before anything was written."""


def _where(source: str) -> str:
    return source or "<input>"


def _reject(source: str, mask: np.ndarray, field: str, values: np.ndarray, problem: str, fix: str) -> None:
    """Raise for the first row where ``mask`` is True (no-op when the mask is all False)."""
    bad = np.flatnonzero(mask)
    if len(bad) == 0:
        return
    row = int(bad[0])
    value = values[row].item() if hasattr(values[row], "item") else values[row]
    more = f" ({len(bad)} rows fail this check)" if len(bad) > 1 else ""
    raise ValidationError(f"{_where(source)}: row {row}, field '{field}': value {value!r} {problem}{more}; fix: {fix}")


def _require_labels(source: str, **labels: str) -> None:
    for name, value in labels.items():
        if not value:
            raise ValidationError(f"{_where(source)}: field '{name}' is empty; fix: pass the {name} of the series")


def _check_positive_prices(source: str, columns: dict[str, np.ndarray]) -> None:
    for name, values in columns.items():
        _reject(source, ~np.isfinite(values), name, values, "is not finite", "drop or repair rows with NaN/inf prices")
        _reject(source, values <= 0, name, values, "is not a positive price", "prices must be > 0")


def _check_strictly_increasing(source: str, ts: np.ndarray, field: str) -> None:
    if len(ts) < 2:
        return
    step = np.diff(ts)
    duplicate = np.concatenate(([False], step == 0))
    _reject(source, duplicate, field, ts, "repeats the previous row's timestamp", "remove duplicate bars")
    unsorted = np.concatenate(([False], step < 0))
    _reject(source, unsorted, field, ts, "is earlier than the previous row", "sort rows by timestamp")


def validate_candles(candles: Candles, source: str = "") -> None:
    """Sorted unique open times on the timeframe grid, finite positive prices, low <= open,close <= high, volume >= 0."""
    _require_labels(source, exchange=candles.exchange, symbol=candles.symbol, timeframe=candles.timeframe)
    if candles.timeframe not in TIMEFRAMES:
        raise ValidationError(
            f"{_where(source)}: field 'timeframe': value {candles.timeframe!r} is unknown; fix: use one of {' '.join(TIMEFRAMES)}"
        )
    ts = np.asarray(candles.ts)
    if ts.dtype.kind not in "iu":
        raise ValidationError(f"{_where(source)}: field 'ts' has dtype {ts.dtype}; fix: pass integer epoch milliseconds")
    _check_strictly_increasing(source, ts, "ts")
    _reject(
        source,
        ~is_aligned(ts, candles.timeframe),
        "ts",
        ts,
        f"is not aligned to the {candles.timeframe} grid",
        "timestamps must be bar open times in epoch ms (check the unit: s/ms/µs)",
    )
    prices = {name: np.asarray(getattr(candles, name), dtype=np.float64) for name in ("open", "high", "low", "close")}
    _check_positive_prices(source, prices)
    body_low = np.minimum(prices["open"], prices["close"])
    body_high = np.maximum(prices["open"], prices["close"])
    _reject(source, prices["low"] > body_low, "low", prices["low"], "is above open or close", "low must be <= open, close")
    _reject(source, prices["high"] < body_high, "high", prices["high"], "is below open or close", "high must be >= open, close")
    volume = np.asarray(candles.volume, dtype=np.float64)
    _reject(source, ~np.isfinite(volume), "volume", volume, "is not finite", "drop or repair rows with NaN/inf volume")
    _reject(source, volume < 0, "volume", volume, "is negative", "volume must be >= 0 (base units)")


def validate_trades(trades: Trades, source: str = "") -> None:
    """Trades sorted by time, unique trade ids, finite positive price and amount."""
    _require_labels(source, exchange=trades.exchange, symbol=trades.symbol)
    ts = np.asarray(trades.ts)
    if len(ts) > 1:
        _reject(source, np.concatenate(([False], np.diff(ts) < 0)), "ts", ts, "is earlier than the previous row", "sort by ts")
    ids = np.asarray(trades.trade_id)
    order = np.argsort(ids, kind="stable")
    repeated = np.zeros(len(ids), bool)
    if len(ids) > 1:
        repeated[order[1:][np.diff(ids[order]) == 0]] = True
    _reject(source, repeated, "trade_id", ids, "appears twice in the batch", "remove duplicate trades")
    _check_positive_prices(source, {"price": np.asarray(trades.price, dtype=np.float64)})
    amount = np.asarray(trades.amount, dtype=np.float64)
    _reject(source, ~np.isfinite(amount) | (amount <= 0), "amount", amount, "is not a positive finite amount", "amount > 0")


def _check_depth_frame(rows: pd.DataFrame, columns: Sequence[str], source: str) -> None:
    missing = [c for c in columns if c not in rows.columns]
    if missing:
        raise ValidationError(f"{_where(source)}: missing columns {missing}; fix: provide {list(columns)}")
    for name in columns:
        if name in OPTIONAL_DEPTH_COLUMNS or name == "side":
            continue
        nulls = rows[name].isna().to_numpy()
        _reject(source, nulls, name, rows[name].to_numpy(), "is null", f"every row needs a {name}")
    side = rows["side"].to_numpy(dtype=object)
    _reject(source, ~np.isin(side, ["bid", "ask"]), "side", side, "is not 'bid' or 'ask'", "use side 'bid' or 'ask'")
    _check_positive_prices(source, {"price": rows["price"].to_numpy(np.float64)})
    qty = rows["qty"].to_numpy(np.float64)
    _reject(source, ~np.isfinite(qty) | (qty < 0), "qty", qty, "is not a finite quantity >= 0", "qty >= 0 (0 removes a level)")


def validate_depth_snapshot(rows: pd.DataFrame, source: str = "") -> None:
    _check_depth_frame(rows, SNAPSHOT_COLUMNS, source)
    level = rows["level"].to_numpy()
    _reject(source, level < 0, "level", level, "is negative", "level 0 is the best price")


def validate_depth_updates(rows: pd.DataFrame, source: str = "") -> None:
    _check_depth_frame(rows, UPDATE_COLUMNS, source)
    first = rows["first_update_id"].to_numpy(np.int64)
    final = rows["final_update_id"].to_numpy(np.int64)
    _reject(source, first > final, "first_update_id", first, "is after final_update_id", "U must be <= u")
