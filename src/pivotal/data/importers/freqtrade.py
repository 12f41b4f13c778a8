"""freqtrade candle files: ``<BASE>_<QUOTE>-<tf>.feather`` (columns date/open/high/low/close/volume) and
``.json`` (a list of ``[ms, open, high, low, close, volume]``). The exchange is the parent folder
(freqtrade keeps ``user_data/data/<exchange>/``) unless given explicitly.
"""

from __future__ import annotations

import json
from pathlib import Path

import ccxt
import numpy as np
import pandas as pd
import pyarrow as pa

from pivotal.data.candles import Candles
from pivotal.data.importers.base import CandleBatch, ImportFormatError, arrow_epoch_ms, epoch_ms, iso_ms, require_columns, rows
from pivotal.data.symbols import split_freqtrade_pair

FEATHER_COLUMNS = ("date", "open", "high", "low", "close", "volume")


def is_freqtrade_file(path: Path) -> bool:
    if path.suffix.lower() not in (".feather", ".json"):
        return False
    try:
        split_freqtrade_pair(path.stem)
    except ValueError:
        return False
    return True


def read_freqtrade(
    path: Path, exchange: str | None = None, symbol: str | None = None, timeframe: str | None = None
) -> CandleBatch:
    source = str(path)
    exchange = exchange or _exchange_from_folder(path)
    if symbol is None or timeframe is None:
        try:
            named_symbol, named_tf = split_freqtrade_pair(path.stem)
        except ValueError as exc:
            raise ImportFormatError(f"{path}: {exc}; pass --symbol and --timeframe") from None
        symbol, timeframe = symbol or named_symbol, timeframe or named_tf
    frame = _read_feather(path) if path.suffix.lower() == ".feather" else _read_json(path)
    candles = Candles(
        ts=frame["ts"].to_numpy(np.int64),
        open=frame["open"].to_numpy(np.float64),
        high=frame["high"].to_numpy(np.float64),
        low=frame["low"].to_numpy(np.float64),
        close=frame["close"].to_numpy(np.float64),
        volume=frame["volume"].to_numpy(np.float64),
        exchange=exchange,
        symbol=symbol,
        timeframe=timeframe,
    )
    return CandleBatch(candles, source)


def _exchange_from_folder(path: Path) -> str:
    folder = path.parent.name
    if folder in ccxt.exchanges:
        return folder
    raise ImportFormatError(f"{path}: parent folder {folder!r} is not a ccxt exchange id; pass --exchange")


def _read_feather(path: Path) -> pd.DataFrame:
    frame = pd.read_feather(path)
    require_columns(list(frame.columns), FEATHER_COLUMNS, str(path))
    date = frame["date"]
    if date.isna().any():
        raise ImportFormatError(f"{path}: row {int(np.flatnonzero(date.isna())[0])}, field date: missing timestamp")
    if pd.api.types.is_datetime64_any_dtype(date):
        # by its unit, exactly: a sub-ms time is rejected, never floored onto the grid
        ts = arrow_epoch_ms(pa.Array.from_pandas(date), str(path), "date")
    elif pd.api.types.is_numeric_dtype(date) and not pd.api.types.is_bool_dtype(date):
        ts = epoch_ms(date.to_numpy(), str(path), "date")
    else:
        ts = iso_ms(date, str(path), "date", rows)
    for name in FEATHER_COLUMNS[1:]:
        if not pd.api.types.is_numeric_dtype(frame[name]) or pd.api.types.is_bool_dtype(frame[name]):
            raise ImportFormatError(f"{path}: field {name}: type {frame[name].dtype} is not numeric; fix: store float64 prices")
    out = frame[["open", "high", "low", "close", "volume"]].astype(np.float64)
    out.insert(0, "ts", ts)
    return out


def _read_json(path: Path) -> pd.DataFrame:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ImportFormatError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from None
    except UnicodeDecodeError:
        raise ImportFormatError(f"{path}: not UTF-8 text; fix: a freqtrade .json file is UTF-8 JSON") from None
    except RecursionError:
        raise ImportFormatError(f"{path}: JSON nested too deeply to be a candle list; fix: export the pair again") from None
    if not isinstance(data, list):
        raise ImportFormatError(f"{path}: expected a JSON list of [ms, open, high, low, close, volume] rows")
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != 6 or not all(_is_number(v) for v in row):
            raise ImportFormatError(f"{path}: row {i}: expected [ms, open, high, low, close, volume] numbers, got {_short(row)}")
    ts_values = [row[0] for row in data]
    if all(isinstance(v, int) for v in ts_values):
        big = next((i for i, v in enumerate(ts_values) if abs(v) >= 2**63), None)
        if big is not None:
            raise ImportFormatError(f"{path}: row {big}, field ts: value {ts_values[big]} is too large for an epoch timestamp")
        ts = epoch_ms(np.array(ts_values, dtype=np.int64), str(path), "ts")
    else:
        ts = epoch_ms(np.array(ts_values, dtype=np.float64), str(path), "ts")
    frame = pd.DataFrame([row[1:] for row in data], columns=list(FEATHER_COLUMNS[1:]), dtype=np.float64)
    frame.insert(0, "ts", ts)
    return frame


def _is_number(value: object) -> bool:
    """JSON numbers only (bool is an int in Python but not a number here), and ints small enough for a float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return not isinstance(value, int) or abs(value) < 2**1000


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
