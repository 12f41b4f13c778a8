"""What every importer produces: parsed batches ready for one atomic store write, and the errors it raises.

Importers are pure (file -> batch); the dispatcher writes each batch through the ``MarketStore``, whose
validation rejects bad rows naming source, row and field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd
import pyarrow as pa

from pivotal.data.candles import Candles
from pivotal.data.store import MarketStore
from pivotal.data.trades import Trades
from pivotal.data.validation import describe_time_range, sane_time_range


class ImportFormatError(ValueError):
    """A file cannot be parsed; the message names the file, the line/row and the field."""


class UnsupportedFile(Exception):
    """A recognised file that pivotal deliberately does not import; the message says why."""


class ImportBatch(Protocol):
    """One parsed file, written by one atomic store call."""

    @property
    def source(self) -> str: ...

    @property
    def rows(self) -> int: ...

    @property
    def series(self) -> str: ...

    def write(self, store: MarketStore) -> int: ...


@dataclass(frozen=True)
class CandleBatch:
    candles: Candles
    source: str

    @property
    def rows(self) -> int:
        return len(self.candles)

    @property
    def series(self) -> str:
        c = self.candles
        return f"{c.exchange} {c.symbol} {c.timeframe}"

    def write(self, store: MarketStore) -> int:
        return store.write_candles(self.candles, source=self.source)


@dataclass(frozen=True)
class TradeBatch:
    trades: Trades
    source: str

    @property
    def rows(self) -> int:
        return len(self.trades)

    @property
    def series(self) -> str:
        return f"{self.trades.exchange} {self.trades.symbol} trades"

    def write(self, store: MarketStore) -> int:
        return store.write_trades(self.trades, source=self.source)


@dataclass(frozen=True)
class DepthBatch:
    """Binance L2 rows: ``kind`` is 'book_snapshot' or 'depth_updates' (columns as in the store protocol)."""

    exchange: str
    symbol: str
    kind: str
    frame: pd.DataFrame
    source: str

    @property
    def rows(self) -> int:
        return len(self.frame)

    @property
    def series(self) -> str:
        return f"{self.exchange} {self.symbol} {self.kind}"

    def write(self, store: MarketStore) -> int:
        if self.kind == "book_snapshot":
            return store.write_depth_snapshot(self.exchange, self.symbol, self.frame, source=self.source)
        return store.write_depth_updates(self.exchange, self.symbol, self.frame, source=self.source)


def require_columns(names: list[str], needed: tuple[str, ...], source: str) -> None:
    missing = [c for c in needed if c not in names]
    if missing:
        raise ImportFormatError(f"{source}: missing column(s) {', '.join(missing)}; found {', '.join(names)}")


def require_no_nulls(table: pa.Table, columns: tuple[str, ...], source: str) -> None:
    """Nulls would silently become garbage integers; name the first one instead."""
    for name in columns:
        col = table.column(name)
        if col.null_count:
            row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
            raise ImportFormatError(f"{source}: row {row}, field {name}: empty value")


def numeric_column(frame: pd.DataFrame, column: str, field: str, source: str, first_line: int) -> np.ndarray:
    """Parse one text column as float64; an unparsable cell raises naming file line and field.

    ``first_line`` is the 1-based file line of the frame's first row. Literal 'nan' parses (the store rejects it).
    """
    text = frame[column]
    values = pd.to_numeric(text, errors="coerce").to_numpy(np.float64)
    missing = np.flatnonzero(np.isnan(values))
    if len(missing):  # only NaN cells are looked at again: no text copies of the whole column
        literal = text.iloc[missing].astype(str).str.strip().str.lower().isin(("nan",)).to_numpy()
        if not literal.all():
            i = int(missing[np.flatnonzero(~literal)[0]])
            raise ImportFormatError(f"{source}: line {first_line + i}, field {field}: cannot parse {text.iloc[i]!r} as a number")
    return values


Where = Callable[[int], str]
"""Names the position of a value: ``row 12`` (Parquet, JSON, 0-based) or ``line 14`` (CSV, 1-based file line)."""


def rows(i: int) -> str:
    return f"row {i}"


def lines_from(first_line: int) -> Where:
    return lambda i: f"line {first_line + i}"


def _bad_time(source: str, where: Where, field: str, i: int, value: object, problem: str) -> ImportFormatError:
    return ImportFormatError(f"{source}: {where(i)}, field {field}: value {value!r} {problem}")


def _unit_scale(v: np.ndarray) -> np.ndarray:
    """Divisor to ms per value by magnitude: s -> -1000 (a multiplier), ms -> 1, µs -> 1000, ns -> 1e6."""
    a = np.abs(v)
    return np.select([a < 10**11, a < 10**14, a < 10**17], [-1000, 1, 1000], 1_000_000).astype(np.int64)


def epoch_ms(
    values: np.ndarray,
    source: str = "<input>",
    field: str = "ts",
    where: Where = rows,
    shown: np.ndarray | None = None,
    exact: bool = True,
) -> np.ndarray:
    """Epoch timestamps in s, ms, µs or ns -> exact int64 ms, unit decided per value by magnitude.

    Binance spot dumps switched from ms to µs in 2025; a 2020s date is ~1.7e9 s, 1.7e12 ms, 1.7e15 µs, 1.7e18 ns.
    Every unit behaves like ms: a value that is not a whole millisecond is rejected (never floored onto the grid),
    so is a value that overflows, and one outside ``validation.sane_time_range`` (negative, 1970, far future).
    ``shown`` holds the values as written in the file (CSV text), for messages. ``exact=False`` is for event times
    (trades), which the store keeps at ms resolution: a sub-ms part is dropped instead of rejected.
    """
    v = np.asarray(values)
    if shown is not None:
        try:
            return epoch_ms(v, source, field, where, exact=exact)
        except ImportFormatError as exc:
            raise _with_original(exc, v, shown) from None
    if v.dtype.kind == "u":
        too_big = v > np.iinfo(np.int64).max
        if too_big.any():
            i = int(np.flatnonzero(too_big)[0])
            raise _bad_time(source, where, field, i, int(v[i]), "is too large for an epoch timestamp; fix: use epoch ms")
        v = v.astype(np.int64)
    if v.dtype.kind == "f":
        return _float_epoch_ms(v, source, field, where, exact)
    if v.dtype.kind not in "i":
        raise ImportFormatError(f"{source}: field {field}: values of type {v.dtype} are not epoch timestamps")
    v = v.astype(np.int64, copy=False)
    scale = _unit_scale(v)
    divides = scale > 0
    off = divides & (v % np.where(divides, scale, 1) != 0)
    if exact and off.any():
        i = int(np.flatnonzero(off)[0])
        unit = "µs" if scale[i] == 1000 else "ns"
        raise _bad_time(
            source, where, field, i, int(v[i]), f"({unit}) is not a whole millisecond; fix: round times to bar open times"
        )
    # a seconds value times 1000 cannot overflow: |v| < 1e11
    out = np.where(divides, v // np.where(divides, scale, 1), v * 1000)
    check_time_range(out, values, source, field, where)
    return out.astype(np.int64, copy=False)


def _with_original(exc: ImportFormatError, values: np.ndarray, shown: np.ndarray) -> ImportFormatError:
    """Replace the parsed value in a message by the cell's text (1e+20 -> '99999999999999999999')."""
    text = str(exc)
    for i in range(len(values)):
        parsed = values[i].item()
        if f"value {parsed!r} " in text:
            return ImportFormatError(text.replace(f"value {parsed!r} ", f"value {str(shown[i]).strip()!r} ", 1))
    return exc


def _float_epoch_ms(v: np.ndarray, source: str, field: str, where: Where, exact: bool = True) -> np.ndarray:
    """Float input (decimal text, JSON floats): finite, inside int64, and a whole number of ms after scaling."""
    bad = ~np.isfinite(v)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _bad_time(source, where, field, i, v[i].item(), "is not a timestamp; fix: every row needs an epoch time")
    big = np.abs(v) >= 2.0**63
    if big.any():
        i = int(np.flatnonzero(big)[0])
        raise _bad_time(source, where, field, i, v[i].item(), "is too large for an epoch timestamp; fix: use epoch ms")
    a = np.abs(v)
    factor = np.select([a < 1e11, a < 1e14, a < 1e17], [1000.0, 1.0, 1e-3], 1e-6)
    ms = v * factor
    whole = np.round(ms)
    off = np.abs(ms - whole) > 1e-3
    if not exact:
        whole = np.where(off, np.floor(ms), whole)
    elif off.any():
        i = int(np.flatnonzero(off)[0])
        raise _bad_time(source, where, field, i, v[i].item(), "is not a whole millisecond; fix: round times to bar open times")
    out = whole.astype(np.int64)
    check_time_range(out, v, source, field, where)
    return out


def check_time_range(ms: np.ndarray, original: np.ndarray, source: str, field: str, where: Where) -> None:
    """Reject times outside ``validation.sane_time_range`` naming the first one as it appeared in the file."""
    lo, hi = sane_time_range()
    bad = (ms < lo) | (ms > hi)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        value = original[i].item() if hasattr(original[i], "item") else original[i]
        raise _bad_time(
            source, where, field, i, value, f"is outside {describe_time_range()}; fix: check the unit (s/ms/µs/ns) and sign"
        )


def arrow_epoch_ms(column: pa.ChunkedArray | pa.Array, source: str, field: str, exact: bool = True) -> np.ndarray:
    """An Arrow time column -> exact int64 epoch ms, by its type.

    ``timestamp[s|ms|us|ns]`` (what pandas writes for datetimes) and ``date32/64`` convert by their unit; integers
    are epoch ms (the shared layout's contract) and floats must be whole ms; strings are ISO-8601 (UTC unless an
    offset is given). Every value must be a whole ms inside the sane range; errors name the row.
    """
    kind = column.type
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        if pa.types.is_date32(kind):
            return _checked_ms(column.cast(pa.int32()).to_numpy().astype(np.int64) * 86_400_000, column, source, field)
        unit = "ms" if pa.types.is_date64(kind) else kind.unit
        raw = column.cast(pa.int64()).to_numpy()
        divisor = {"s": -1000, "ms": 1, "us": 1000, "ns": 1_000_000}[unit]
        if divisor < 0:  # clipped first: a huge seconds value must not wrap around into the sane range
            return _checked_ms(np.clip(raw, -(10**15), 10**15) * 1000, column, source, field)
        off = raw % divisor != 0
        if exact and off.any():
            i = int(np.flatnonzero(off)[0])
            raise _bad_time(
                source,
                rows,
                field,
                i,
                _shown(column, i),
                f"({kind}) is not a whole millisecond; fix: round times to bar open times",
            )
        return _checked_ms(raw // divisor, column, source, field)
    if pa.types.is_integer(kind):
        raw = column.to_numpy()
        if raw.dtype.kind == "u" and (raw > np.iinfo(np.int64).max).any():
            i = int(np.flatnonzero(raw > np.iinfo(np.int64).max)[0])
            raise _bad_time(source, rows, field, i, int(raw[i]), "is too large for an epoch timestamp; fix: use epoch ms")
        return _checked_ms(raw.astype(np.int64), column, source, field)
    if pa.types.is_floating(kind):
        raw = column.to_numpy().astype(np.float64)
        bad = ~np.isfinite(raw) | (np.abs(raw) >= 2.0**63) | (raw != np.round(raw))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise _bad_time(source, rows, field, i, raw[i].item(), "is not a whole number of epoch ms; fix: store int64 epoch ms")
        return _checked_ms(raw.astype(np.int64), column, source, field)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        text = pd.Series(column.to_pylist(), dtype=object)
        return iso_ms(text, source, field, rows)
    raise ImportFormatError(
        f"{source}: field {field}: type {kind} is not a time; fix: store int64 epoch ms or an Arrow timestamp"
    )


def _checked_ms(ms: np.ndarray, column: pa.ChunkedArray | pa.Array, source: str, field: str) -> np.ndarray:
    lo, hi = sane_time_range()
    bad = (ms < lo) | (ms > hi)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _bad_time(
            source,
            rows,
            field,
            i,
            _shown(column, i),
            f"is outside {describe_time_range()}; fix: check the unit (s/ms/µs/ns) and sign",
        )
    return np.ascontiguousarray(ms.astype(np.int64, copy=False))


def _shown(column: pa.ChunkedArray | pa.Array, i: int) -> object:
    """Value ``i`` as the file holds it: an ISO time where Python can represent it, else the raw integer."""
    try:
        value = column[i].as_py()
    except (OverflowError, ValueError):  # outside datetime's years 1..9999: show the stored integer
        storage = pa.int32() if pa.types.is_date32(column.type) else pa.int64()
        return column[i].cast(storage).as_py()
    return value.isoformat() if hasattr(value, "isoformat") else value


def iso_ms(text: pd.Series, source: str, field: str, where: Where) -> np.ndarray:
    """ISO-8601 strings (UTC unless an offset is given) -> exact epoch ms; unparsable or sub-ms values name their row."""
    stripped = text.astype(str).str.strip()
    # pandas applies the last seen offset to naive strings that follow it in one call (2.x); parse the two apart.
    aware = stripped.str.contains(r"(?:Z|[+-]\d\d(?::?\d\d)?)$", case=False, regex=True).to_numpy()
    parsed = pd.Series(pd.NaT, index=stripped.index, dtype="datetime64[ns, UTC]")
    for group in (aware, ~aware):
        if group.any():
            parsed[group] = pd.to_datetime(stripped[group], utc=True, errors="coerce", format="ISO8601")
    bad = parsed.isna().to_numpy() | text.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _bad_time(source, where, field, i, text.iloc[i], "cannot be parsed as an epoch or ISO-8601 time")
    ns = parsed.dt.tz_localize(None).to_numpy().astype("datetime64[ns]").astype(np.int64)
    off = ns % 1_000_000 != 0
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise _bad_time(source, where, field, i, text.iloc[i], "is not a whole millisecond; fix: round times to bar open times")
    ms = ns // 1_000_000
    check_time_range(ms, text.to_numpy(dtype=object), source, field, where)
    return ms


def timestamp_column(frame: pd.DataFrame, column: str, source: str, first_line: int, exact: bool = True) -> np.ndarray:
    """Numeric epoch timestamps (any unit, see ``epoch_ms``) -> int64 ms; NaN/empty raises naming the line.

    Integer text is parsed exactly (a float64 would round ns values); decimals go through the float path.
    """
    text = frame[column]
    where = lines_from(first_line)
    values = pd.to_numeric(text, errors="coerce")
    shown = text.to_numpy(dtype=object)
    if values.dtype.kind in "iu":
        return epoch_ms(values.to_numpy(), source, "ts", where, shown, exact)
    floats = values.to_numpy(np.float64)
    missing = np.isnan(floats)
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        cell = str(text.iloc[i]).strip()
        if cell == "" or cell.lower() == "nan":
            raise ImportFormatError(f"{source}: {where(i)}, field ts: missing timestamp")
        raise ImportFormatError(f"{source}: {where(i)}, field ts: cannot parse {text.iloc[i]!r} as a number")
    return epoch_ms(floats, source, "ts", where, shown, exact)
