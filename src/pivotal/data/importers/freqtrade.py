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

from pivotal.data.candles import Candles
from pivotal.data.importers.base import CandleBatch, ImportFormatError, epoch_ms, require_columns
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
        naive = date.dt.tz_convert("UTC").dt.tz_localize(None) if date.dt.tz is not None else date
        ts = naive.to_numpy().astype("datetime64[ms]").astype(np.int64)
    else:
        ts = epoch_ms(date.to_numpy(np.int64))
    out = frame[["open", "high", "low", "close", "volume"]].astype(np.float64)
    out.insert(0, "ts", ts)
    return out


def _read_json(path: Path) -> pd.DataFrame:
    try:
        rows = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ImportFormatError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}") from None
    if not isinstance(rows, list):
        raise ImportFormatError(f"{path}: expected a JSON list of [ms, open, high, low, close, volume] rows")
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != 6 or row[0] is None:
            raise ImportFormatError(f"{path}: row {i}: expected [ms, open, high, low, close, volume], got {row!r}")
    frame = pd.DataFrame(rows, columns=["ts", "open", "high", "low", "close", "volume"])
    frame["ts"] = epoch_ms(frame["ts"].to_numpy(np.int64))
    return frame.astype({c: np.float64 for c in ("open", "high", "low", "close", "volume")})
