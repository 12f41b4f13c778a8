"""Arrow <-> pandas conversion for order-book rows, shared by the backends."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from pivotal.data.validation import OPTIONAL_DEPTH_COLUMNS


def depth_arrow(rows: pd.DataFrame, columns: tuple[str, ...]) -> pa.Table:
    """Arrow table of ``columns`` (optional Binance columns absent from ``rows`` become nulls)."""
    arrays = {}
    for name in columns:
        if name in rows.columns:
            arrays[name] = pa.array(rows[name], from_pandas=True)
        else:
            arrays[name] = pa.nulls(len(rows), pa.int64())
    table = pa.table(arrays)
    casts = {name: pa.int64() for name in columns if name not in ("side", "price", "qty")}
    casts.update(price=pa.float64(), qty=pa.float64(), side=pa.string())
    return table.cast(pa.schema([(name, casts[name]) for name in columns]))


def depth_frame(table: pa.Table) -> pd.DataFrame:
    """DataFrame with the nullable Binance columns as pandas ``Int64`` and every other integer as int64."""
    frame = table.to_pandas(types_mapper=lambda t: pd.Int64Dtype() if pa.types.is_integer(t) else None)
    for name in frame.columns:
        if isinstance(frame[name].dtype, pd.Int64Dtype) and name not in OPTIONAL_DEPTH_COLUMNS:
            frame[name] = frame[name].astype("int64")
    return frame
