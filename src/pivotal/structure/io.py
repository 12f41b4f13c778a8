"""Bars for the pivot tools: from a stored series, or from a Parquet/CSV file (columns timestamp|ts, open, high, low,
close[, volume]; timestamps are bar open times in epoch ms or datetimes, UTC).

Bad input raises ``BarsError`` naming the file, row and field and how to fix it; nothing is computed on half a file.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pivotal.config import Settings
from pivotal.data.backends import open_store
from pivotal.data.candles import Candles
from pivotal.core.timeframes import TIMEFRAMES
from pivotal.structure.pivots import validate_bars

PRICE_COLUMNS = ("open", "high", "low", "close")
_SECONDS_LIMIT = 100_000_000_000  # epoch ms pass this in 1973; smaller integers are seconds


class BarsError(ValueError):
    """Input bars that cannot be used; the message says where and how to fix it."""


def _read_table(path: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    if not path.exists():
        raise BarsError(f"{path}: file not found")
    suffixes = "".join(path.suffixes).lower()
    if suffixes.endswith((".parquet", ".pq")):
        meta = pq.read_schema(path).metadata or {}
        return pd.read_parquet(path), {k.decode(): v.decode() for k, v in meta.items() if k != b"pandas"}
    if suffixes.endswith((".csv", ".csv.gz")):
        return pd.read_csv(path), {}
    raise BarsError(f"{path}: unsupported file type {path.suffix!r}; use .parquet or .csv")


def _ms_timestamps(path: Path, column: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(column):
        utc = column.dt.tz_convert("UTC") if column.dt.tz is not None else column.dt.tz_localize("UTC")
        return utc.dt.as_unit("ms").astype("int64").to_numpy()
    if not pd.api.types.is_numeric_dtype(column):
        try:
            return _ms_timestamps(path, pd.to_datetime(column, utc=True))
        except (ValueError, TypeError):
            raise BarsError(
                f"{path}: field 'timestamp': cannot parse {column.iloc[0]!r}; use epoch ms or ISO datetimes"
            ) from None
    ts = column.to_numpy()
    if np.isnan(ts.astype(np.float64)).any():
        row = int(np.flatnonzero(np.isnan(ts.astype(np.float64)))[0])
        raise BarsError(f"{path}: row {row}, field 'timestamp' is empty; drop the row")
    ts = ts.astype(np.int64)
    if len(ts) and ts.max() < _SECONDS_LIMIT:
        raise BarsError(f"{path}: field 'timestamp' looks like epoch seconds (max {int(ts.max())}); convert to milliseconds")
    return ts


def _check_sorted(path: Path, ts: np.ndarray) -> None:
    steps = np.diff(ts)
    if len(steps) and steps.min() <= 0:
        row = int(np.argmax(steps <= 0)) + 1
        problem = "repeats" if steps[row - 1] == 0 else "is earlier than"
        raise BarsError(
            f"{path}: row {row}, field 'timestamp': {int(ts[row])} {problem} the previous row; sort and deduplicate bars"
        )


def infer_timeframe(ts: np.ndarray) -> str | None:
    """The named timeframe of the most common step between bars (None if there is none or it has no name)."""
    if len(ts) < 2:
        return None
    step, _ = Counter(np.diff(ts).tolist()).most_common(1)[0]
    return next((name for name, ms in TIMEFRAMES.items() if ms == step), None)


def load_bars_file(path: Path, start: int | None = None, end: int | None = None, timeframe: str | None = None) -> Candles:
    """Bars with ``start <= ts < end`` from a Parquet or CSV file, validated (spec A.7)."""
    frame, meta = _read_table(path)
    frame = frame.rename(columns=str.lower)
    ts_col = "timestamp" if "timestamp" in frame.columns else "ts" if "ts" in frame.columns else None
    missing = [c for c in PRICE_COLUMNS if c not in frame.columns] + ([] if ts_col else ["timestamp|ts"])
    if missing:
        raise BarsError(f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(map(str, frame.columns))}")
    ts = _ms_timestamps(path, frame[ts_col])
    _check_sorted(path, ts)
    lo, hi = np.iinfo(np.int64).min if start is None else start, np.iinfo(np.int64).max if end is None else end
    keep = (ts >= lo) & (ts < hi)
    prices = {c: frame[c].to_numpy(np.float64)[keep] for c in PRICE_COLUMNS}
    volume = frame["volume"].to_numpy(np.float64)[keep] if "volume" in frame.columns else np.zeros(int(keep.sum()))
    first_row = int(np.argmax(keep)) if keep.any() else 0
    try:
        validate_bars(prices["high"], prices["low"], prices["open"], prices["close"])
    except ValueError as exc:
        raise BarsError(f"{path}: {_shift_row(str(exc), first_row)}") from None
    ts = ts[keep]
    tf = timeframe or _meta_timeframe(meta) or infer_timeframe(ts) or ""
    return Candles(ts, prices["open"], prices["high"], prices["low"], prices["close"], volume, "", path.stem, tf)


def _meta_timeframe(meta: dict[str, str]) -> str | None:
    """The ``timeframe`` key of the Parquet metadata (plain or JSON-quoted), if it names a known timeframe."""
    value = meta.get("timeframe", "").strip().strip('"')
    return value if value in TIMEFRAMES else None


def _shift_row(message: str, offset: int) -> str:
    """validate_bars counts rows inside the selected range; report the row number of the file."""
    if offset and message.startswith("row "):
        row, rest = message[4:].split(":", 1)
        return f"row {int(row) + offset}:{rest}"
    return message


def load_bars_store(
    settings: Settings, exchange: str, symbol: str, timeframe: str, start: int | None = None, end: int | None = None
) -> Candles:
    """Bars of one stored series (``start <= ts < end``)."""
    store = open_store(settings)
    try:
        bars = store.candles(exchange, symbol, timeframe, start, end)
    finally:
        store.close()
    if len(bars) == 0:
        raise BarsError(
            f"no stored candles for {exchange} {symbol} {timeframe} in the requested range; "
            "import them first (`pivotal data import` / `pivotal data download`); `pivotal data info` lists stored series"
        )
    return bars
