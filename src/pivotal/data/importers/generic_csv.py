"""Any candle CSV with a header, given a column mapping such as ``ts=time,open=o,high=h,low=l,close=c,volume=v``.

The ts column may hold epoch seconds, ms, µs or ns (decided by magnitude) or ISO-8601 text (UTC unless an offset is given).
The file is read in chunks (``streaming``); whether ts is epoch numbers or ISO text is decided by the first chunk.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pivotal.data.candles import FIELDS
from pivotal.data.importers.base import (
    CandleBatch,
    ImportFormatError,
    iso_ms,
    lines_from,
    numeric_column,
    require_columns,
    timestamp_column,
)
from pivotal.data.importers.streaming import CHUNK_ROWS, Columns, csv_chunks

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
    path: Path,
    exchange: str | None,
    symbol: str | None,
    timeframe: str | None,
    mapping: dict[str, str] | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> CandleBatch:
    """Parse a header CSV with a column mapping, streamed in chunks of ``chunk_rows`` rows."""
    source = str(path)
    if not (exchange and symbol and timeframe):
        raise ImportFormatError(f"{path}: a generic CSV needs --exchange, --symbol and --timeframe")
    mapping = mapping or DEFAULT_MAPPING
    columns = Columns()
    iso: bool | None = None  # decided by the first chunk: epoch numbers or ISO text, like a whole-file read
    try:
        with csv_chunks(path, chunk_rows=chunk_rows) as chunks:
            for offset, frame in chunks:
                if offset == 0:
                    require_columns(list(frame.columns), tuple(mapping[f] for f in FIELDS), source)
                first_line = 2 + offset  # line 1 is the header
                if iso is None:
                    iso = not frame[mapping["ts"]].str.strip().str.fullmatch(r"-?\d+(\.\d+)?").all()
                if iso:
                    ts = iso_ms(frame[mapping["ts"]], source, "ts", lines_from(first_line))
                else:
                    ts = timestamp_column(frame, mapping["ts"], source, first_line)
                columns.add(ts=ts, **{f: numeric_column(frame, mapping[f], f, source, first_line) for f in FIELDS[1:]})
    except pd.errors.EmptyDataError:
        raise ImportFormatError(f"{path}: no header and no rows; fix: the file is empty") from None
    except pd.errors.ParserError as exc:
        raise ImportFormatError(f"{path}: not a well-formed CSV: {str(exc).strip()}") from None
    except UnicodeDecodeError as exc:
        raise ImportFormatError(f"{path}: not UTF-8 text ({exc.reason}); fix: save the CSV as UTF-8") from None
    return CandleBatch(columns.candles(exchange, symbol, timeframe), source)
