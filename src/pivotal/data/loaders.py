"""The one way to get candles for a computation: from a file (``load_candles_file``) or from the store (``load_candles``).

Every command that takes ``--input FILE`` (pivots, backtest, optimize, train) reads it here, so the same file gives
the same bars everywhere and is validated by the same rules as an import (``data.validation.validate_candles``).

Files: Parquet or CSV with columns ``timestamp|ts, open, high, low, close[, volume]``; timestamps are bar open times,
read by the importers' one set of rules (``importers.base``: Parquet integers are epoch ms, Arrow timestamps convert by
their unit, CSV epochs by magnitude s/ms/µs/ns, ISO-8601 is UTC unless it has an offset; whole ms only, 2009 .. now +
1 day), so a file gives the same times here as through ``pivotal data import``. Other layouts the importers recognise
(Binance dumps, freqtrade files) are read through them. The timeframe is ``timeframe`` if given, else the Parquet
``timeframe`` metadata, else the most common step.

Errors are one line naming the file/series, the row and field, and the fix: ``BarsError`` (a ``UserInputError``) for
bad arguments or files, ``SeriesNotFound`` (a ``DataNotFound``) when the store lacks the series.
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pivotal.core.errors import DataNotFound, UserInputError
from pivotal.core.timeframes import TIMEFRAMES
from pivotal.data.candles import Candles
from pivotal.data.importers.base import ImportFormatError, arrow_epoch_ms, iso_ms, lines_from, timestamp_column
from pivotal.data.store import MarketStore, SeriesInfo
from pivotal.data.validation import ValidationError, validate_candles

PRICE_COLUMNS = ("open", "high", "low", "close")
_IMPORT_HINT = "`pivotal data import` / `pivotal data download`"


class BarsError(UserInputError):
    """Input bars that cannot be used (bad file, bad range, bad timeframe); the message says where and how to fix it."""


class SeriesNotFound(DataNotFound):
    """The store holds no candles for the requested series or range; the message lists what it does hold."""


# ----------------------------------------------------------------------------------------------------- arguments


def check_timeframe(timeframe: str, where: str = "") -> str:
    """``timeframe`` if it is a known name, else a ``BarsError`` listing the valid ones (and the likely intended one)."""
    if timeframe in TIMEFRAMES:
        return timeframe
    hint = f" (did you mean {timeframe.lower()!r}?)" if timeframe.lower() in TIMEFRAMES else ""
    prefix = f"{where}: " if where else ""
    raise BarsError(f"{prefix}unknown timeframe {timeframe!r}{hint}; use one of: {' '.join(TIMEFRAMES)}")


def check_range(start: int | None, end: int | None) -> None:
    """``start < end`` when both are given (the range is ``start <= ts < end``, epoch ms)."""
    if start is not None and end is not None and start >= end:
        raise BarsError(f"empty time range: start {_iso(start)} is not before end {_iso(end)}; pass a start earlier than end")


def _iso(ms: int) -> str:
    try:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return str(ms)


def infer_timeframe(ts: np.ndarray) -> str | None:
    """The named timeframe of the most common step between bars (None if there is none or it has no name)."""
    if len(ts) < 2:
        return None
    step, _ = Counter(np.diff(ts).tolist()).most_common(1)[0]
    return next((name for name, ms in TIMEFRAMES.items() if ms == step), None)


# ----------------------------------------------------------------------------------------------------- files


def load_candles_file(
    path: Path,
    *,
    timeframe: str | None = None,
    start: int | None = None,
    end: int | None = None,
    exchange: str = "",
    symbol: str = "",
) -> Candles:
    """Validated bars with ``start <= ts < end`` from a candle file; ``symbol`` defaults to the file name's stem.

    The whole file is validated (row numbers are rows of the file), then the range is selected: nothing is computed
    on half a file.
    """
    path = Path(path)
    check_range(start, end)
    if timeframe is not None:
        check_timeframe(timeframe, str(path))
    if not path.exists():
        raise BarsError(f"{path}: file not found")
    if path.is_dir():
        raise BarsError(f"{path}: is a folder; pass one candle file (import folders with `pivotal data import`)")
    frame, meta = _read_table(path)
    if frame is None:
        candles = _via_importers(path, timeframe, exchange, symbol, reason=meta.get("reason", ""))
    else:
        candles = _from_frame(path, frame, meta, timeframe)
    candles = replace(candles, exchange=exchange or candles.exchange, symbol=symbol or candles.symbol or path.stem)
    _validate(candles, str(path))
    return _select(candles, start, end)


def _read_table(path: Path) -> tuple[pd.DataFrame | None, dict[str, str]]:
    """The file as a frame plus its Parquet metadata; ``None`` when it is not a plain candle table.

    The time column is converted here, by the importers' rules (``importers.base.arrow_epoch_ms`` for Parquet: Arrow
    timestamps by their unit, integers epoch ms, ISO strings; ``generic_csv``'s epoch-by-magnitude or ISO for CSV), so
    the frame's ``ts`` is already exact epoch ms: the same file gives the same times here and in ``data import``.
    """
    suffixes = "".join(path.suffixes).lower()
    try:
        if suffixes.endswith((".parquet", ".pq")):
            table = pq.read_table(path)
            meta = table.schema.metadata or {}
            info = {k.decode(): v.decode() for k, v in meta.items() if k != b"pandas"}
            name = _time_column(table.column_names)
            ts = None if name is None else arrow_epoch_ms(table.column(name), str(path), name)
            frame = table.drop_columns([name] if name is not None else []).to_pandas()
        elif suffixes.endswith((".csv", ".csv.gz")):
            header = pd.read_csv(path, nrows=0).columns
            name = _time_column([str(c) for c in header])
            frame, info = pd.read_csv(path, dtype={name: str} if name is not None else None), {}
            ts = None if name is None else _csv_times(frame.pop(name), str(path))
        elif suffixes.endswith((".zip", ".feather", ".json")):
            return None, {"reason": f"unsupported file type {path.suffix!r}"}
        else:
            raise BarsError(f"{path}: unsupported file type {path.suffix!r}; use .parquet or .csv")
    except ImportFormatError as exc:
        raise BarsError(str(exc).splitlines()[0]) from None
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        if isinstance(exc, BarsError):
            raise
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BarsError(f"{path}: cannot read the file ({first}); use a Parquet or CSV candle file") from None
    columns = [str(c).strip().lower() for c in ([name] if name is not None else []) + list(frame.columns)]
    frame = frame.rename(columns=lambda c: str(c).strip().lower())
    if ts is not None:
        frame.insert(0, "ts", ts)
    missing = _missing_columns(frame)
    if missing:
        return None, {"reason": f"missing column(s) {', '.join(missing)}; found {', '.join(columns)}"}
    return frame, info


def _time_column(names: list[str]) -> str | None:
    """The bar open time column as the file names it (``timestamp`` or ``ts``, any case and padding)."""
    for wanted in ("timestamp", "ts"):
        found = [n for n in names if n.strip().lower() == wanted]
        if found:
            return found[0]
    return None


def _csv_times(text: pd.Series, source: str) -> np.ndarray:
    """CSV times as ``data import --format csv`` reads them: epoch s/ms/µs/ns by magnitude, or ISO-8601 (UTC)."""
    frame = pd.DataFrame({"ts": text})
    if text.str.strip().str.fullmatch(r"-?\d+(\.\d+)?").all():
        return timestamp_column(frame, "ts", source, 2)
    return iso_ms(text, source, "ts", lines_from(2))


def _missing_columns(frame: pd.DataFrame) -> list[str]:
    has_ts = "timestamp" in frame.columns or "ts" in frame.columns
    return [c for c in PRICE_COLUMNS if c not in frame.columns] + ([] if has_ts else ["timestamp|ts"])


def _via_importers(path: Path, timeframe: str | None, exchange: str, symbol: str, reason: str) -> Candles:
    """Exchange layouts (Binance dumps, freqtrade) through the importers; ``reason`` is the error if none applies."""
    from pivotal.data.importers.base import CandleBatch, ImportFormatError, UnsupportedFile
    from pivotal.data.importers.dispatch import ImportOptions, detect_format, parse_file

    options = ImportOptions(exchange=exchange or None, symbol=symbol or None, timeframe=timeframe)
    try:
        detect_format(path, options)
    except (ImportFormatError, ValueError, OSError):
        fix = "columns timestamp|ts, open, high, low, close[, volume]" if "column" in reason else "use .parquet or .csv"
        raise BarsError(f"{path}: {reason}; {fix}") from None
    try:
        batch = parse_file(path, options)
    except UnsupportedFile as exc:
        raise BarsError(f"{path}: {exc}") from None
    except (ImportFormatError, ValueError, OSError) as exc:
        text = str(exc).splitlines()[0]
        raise BarsError(text if text.startswith(str(path)) else f"{path}: {text}") from None
    if not isinstance(batch, CandleBatch):
        raise BarsError(f"{path}: not a candle file (it holds {type(batch).__name__}); pass a candle file")
    return batch.candles


def _from_frame(path: Path, frame: pd.DataFrame, meta: dict[str, str], timeframe: str | None) -> Candles:
    ts = np.ascontiguousarray(frame["ts"].to_numpy(np.int64))
    prices = {c: _floats(path, frame[c], c) for c in PRICE_COLUMNS}
    volume = _floats(path, frame["volume"], "volume") if "volume" in frame.columns else np.zeros(len(ts))
    tf = timeframe or _meta_timeframe(meta) or infer_timeframe(ts)
    if tf is None and len(ts):
        why = "a single bar" if len(ts) == 1 else "the most common step between bars names none"
        raise BarsError(f"{path}: cannot tell the timeframe ({why}); pass --timeframe")
    return Candles(ts, prices["open"], prices["high"], prices["low"], prices["close"], volume, "", "", tf or "")


def _floats(path: Path, column: pd.Series, name: str) -> np.ndarray:
    try:
        return np.ascontiguousarray(column.to_numpy(np.float64))
    except (ValueError, TypeError):
        values = pd.to_numeric(column, errors="coerce")
        row = int(np.flatnonzero(values.isna() & column.notna())[0])
        raise BarsError(f"{path}: row {row}, field '{name}': cannot parse {column.iloc[row]!r} as a number") from None


def _meta_timeframe(meta: dict[str, str]) -> str | None:
    """The ``timeframe`` key of the Parquet metadata (plain or JSON-quoted), if it names a known timeframe."""
    value = meta.get("timeframe", "").strip().strip('"')
    return value if value in TIMEFRAMES else None


def _validate(candles: Candles, source: str) -> None:
    """The import rules of ``data.validation`` (labels are filled in: a file needs no exchange to be computed on)."""
    if len(candles) == 0:
        return
    labelled = replace(candles, exchange=candles.exchange or "file")
    try:
        validate_candles(labelled, source)
    except ValidationError as exc:
        raise BarsError(str(exc)) from None


def _select(candles: Candles, start: int | None, end: int | None) -> Candles:
    if start is None and end is None:
        return candles
    lo = 0 if start is None else int(np.searchsorted(candles.ts, start, "left"))
    hi = len(candles) if end is None else int(np.searchsorted(candles.ts, end, "left"))
    return candles.slice(lo, max(lo, hi))


# ----------------------------------------------------------------------------------------------------- store


def load_candles(
    store: MarketStore, exchange: str, symbol: str, timeframe: str, *, start: int | None = None, end: int | None = None
) -> Candles:
    """Bars of one stored series with ``start <= ts < end``; ``SeriesNotFound`` says what the store holds instead."""
    check_timeframe(timeframe)
    check_range(start, end)
    bars = store.candles(exchange, symbol, timeframe, start, end)
    if len(bars) == 0:
        raise SeriesNotFound(_not_found(store.series(), exchange, symbol, timeframe, start, end))
    return bars


def _not_found(stored: list[SeriesInfo], exchange: str, symbol: str, timeframe: str, start: int | None, end: int | None) -> str:
    """One line: which series is missing, what is stored nearest to it, and the fix."""
    head = f"no stored candles for {exchange} {symbol} {timeframe}"
    if not stored:
        return f"{head}: the store is empty; import first ({_IMPORT_HINT})"
    exchanges = sorted({s.exchange for s in stored})
    if exchange not in exchanges:
        close = [e for e in exchanges if e.lower() == exchange.lower()]
        hint = f"; did you mean {close[0]!r}?" if close else f"; import it first ({_IMPORT_HINT})"
        return f"{head}: no series of exchange {exchange!r} (stored exchanges: {', '.join(exchanges)}){hint}"
    symbols = sorted({s.symbol for s in stored if s.exchange == exchange})
    if symbol not in symbols:
        guess = _symbol_guess(symbol, symbols)
        hint = f"; did you mean {guess!r}?" if guess else f"; import it first ({_IMPORT_HINT})"
        return f"{head}: {exchange} has no symbol {symbol!r} (stored: {_short(symbols)}){hint}"
    series = [s for s in stored if s.exchange == exchange and s.symbol == symbol]
    timeframes = sorted((s.timeframe for s in series), key=lambda t: TIMEFRAMES.get(t, 0))
    match = next((s for s in series if s.timeframe == timeframe), None)
    if match is None:
        return (
            f"{head}: stored timeframes of {exchange} {symbol}: {', '.join(timeframes)}; pick one, "
            f"or import {timeframe} ({_IMPORT_HINT})"
        )
    wanted = f"[{_iso(start) if start is not None else '(first)'}, {_iso(end) if end is not None else '(last)'})"
    return (
        f"{head} in the requested range {wanted}: stored from {_iso(match.first_ts)} to {_iso(match.last_ts)}; "
        "widen the range or import the missing bars"
    )


def _symbol_guess(symbol: str, symbols: list[str]) -> str | None:
    """``BTCUSDT`` / ``btc-usdt`` / ``BTC_USDT`` -> the stored ``BTC/USDT`` (same letters, separators aside)."""

    def squash(s: str) -> str:
        return "".join(ch for ch in s.upper() if ch.isalnum())

    same = [s for s in symbols if squash(s) == squash(symbol)]
    if same:
        return same[0]
    same = [s for s in symbols if squash(s.split(":")[0]) == squash(symbol)]
    if same:
        return same[0]
    close = difflib.get_close_matches(symbol.upper(), symbols, n=1, cutoff=0.8)
    return close[0] if close else None


def _short(names: list[str], limit: int = 12) -> str:
    return ", ".join(names) if len(names) <= limit else ", ".join(names[:limit]) + f", … ({len(names)} in all)"
