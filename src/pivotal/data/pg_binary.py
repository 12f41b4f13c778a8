"""PostgreSQL binary COPY format for fixed-width columns, built and parsed with numpy (no per-row Python objects).

Nullable integers travel as ``NULL_INT`` and are turned into SQL NULL with ``NULLIF`` on the server side (and
back with ``COALESCE`` when reading), which keeps every row the same width.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
HEADER = SIGNATURE + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
TRAILER = b"\xff\xff"
NULL_INT = np.iinfo(np.int64).min

# numpy dtype -> (big-endian wire dtype, SQL type)
WIRE: dict[str, tuple[str, str]] = {
    "int64": (">i8", "BIGINT"),
    "int32": (">i4", "INTEGER"),
    "float64": (">f8", "DOUBLE PRECISION"),
    "bool": ("?", "BOOLEAN"),
}


def _row_dtype(kinds: Mapping[str, str]) -> np.dtype:
    fields: list[tuple[str, str]] = [("_count", ">i2")]
    for name, kind in kinds.items():
        fields += [(f"_len_{name}", ">i4"), (name, WIRE[kind][0])]
    return np.dtype(fields)


def encode(columns: Mapping[str, np.ndarray]) -> bytes:
    """One binary COPY payload (header, rows, trailer) for equally long, null-free numpy columns."""
    kinds = {name: np.asarray(values).dtype.name for name, values in columns.items()}
    rows = np.empty(len(next(iter(columns.values()))), dtype=_row_dtype(kinds))
    rows["_count"] = len(kinds)
    for name, values in columns.items():
        rows[f"_len_{name}"] = np.dtype(WIRE[kinds[name]][0]).itemsize
        rows[name] = values
    return HEADER + rows.tobytes() + TRAILER


def decode(payload: bytes, kinds: Mapping[str, str]) -> dict[str, np.ndarray]:
    """Columns (native byte order) from a binary COPY payload of null-free fixed-width rows of ``kinds``."""
    dtype = _row_dtype(kinds)
    if not payload:
        return {name: np.empty(0, dtype=kind) for name, kind in kinds.items()}
    if not payload.startswith(SIGNATURE):
        raise ValueError("not a PostgreSQL binary COPY stream")
    extension = int.from_bytes(payload[15:19], "big")
    body = memoryview(payload)[19 + extension : len(payload) - len(TRAILER)]
    rows = np.frombuffer(body, dtype=dtype)
    return {name: np.ascontiguousarray(rows[name].astype(kind)) for name, kind in kinds.items()}


def temp_table_ddl(table: str, kinds: Mapping[str, str]) -> str:
    columns = ", ".join(f"{name} {WIRE[kind][1]}" for name, kind in kinds.items())
    return f"CREATE TEMP TABLE {table} ({columns}) ON COMMIT DROP"
