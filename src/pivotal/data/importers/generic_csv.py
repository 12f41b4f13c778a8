"""Any candle CSV with a header, given a column mapping such as ``ts=time,open=o,high=h,low=l,close=c,volume=v``.

The ts column may hold epoch seconds, ms, µs or ns (decided by magnitude) or ISO-8601 text (UTC unless an offset is given).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pivotal.data.candles import FIELDS, Candles
from pivotal.data.importers.base import (
    CandleBatch,
    ImportFormatError,
    iso_ms,
    lines_from,
    numeric_column,
    require_columns,
    timestamp_column,
)

DEFAULT_MAPPING: dict[str, str] = {name: name for name in FIELDS}


def parse_mapping(spec: str | None) -> dict[str, str]:
    """``'ts=time,open=o'`` -> full field->column mapping (unmapped fields keep their own name)."""
    mapping = dict(DEFAULT_MAPPING)
    if not spec:
        return mapping
    for item in spec.split(","):
        field, sep, column = item.partition("=")
        field, column = field.strip(), column.strip()
        if not sep or not column or field not in FIELDS:
            raise ValueError(f"bad --map entry {item!r}: use FIELD=COLUMN with FIELD one of {', '.join(FIELDS)}")
        mapping[field] = column
    return mapping


def read_generic_csv(
    path: Path, exchange: str | None, symbol: str | None, timeframe: str | None, mapping: dict[str, str] | None = None
) -> CandleBatch:
    source = str(path)
    if not (exchange and symbol and timeframe):
        raise ImportFormatError(f"{path}: a generic CSV needs --exchange, --symbol and --timeframe")
    mapping = mapping or DEFAULT_MAPPING
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except pd.errors.EmptyDataError:
        raise ImportFormatError(f"{path}: no header and no rows; fix: the file is empty") from None
    except pd.errors.ParserError as exc:
        raise ImportFormatError(f"{path}: not a well-formed CSV: {str(exc).strip()}") from None
    except UnicodeDecodeError as exc:
        raise ImportFormatError(f"{path}: not UTF-8 text (byte {exc.start}); fix: save the CSV as UTF-8") from None
    require_columns(list(frame.columns), tuple(mapping[f] for f in FIELDS), source)
    first_line = 2  # line 1 is the header
    values = {f: numeric_column(frame, mapping[f], f, source, first_line) for f in FIELDS[1:]}
    return CandleBatch(
        Candles(
            _timestamps(frame, mapping["ts"], source),
            values["open"],
            values["high"],
            values["low"],
            values["close"],
            values["volume"],
            exchange=exchange,
            symbol=symbol,
            timeframe=timeframe,
        ),
        source,
    )


def _timestamps(frame: pd.DataFrame, column: str, source: str) -> np.ndarray:
    text = frame[column].str.strip()
    if text.str.fullmatch(r"-?\d+(\.\d+)?").all():
        return timestamp_column(frame, column, source, 2)
    return iso_ms(frame[column], source, "ts", lines_from(2))
