"""Write stored candles to a Parquet file in the layout of ``../shared/data``, readable by ``data.loaders``."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pivotal.data.candles import Candles


def write_parquet(candles: Candles, out: Path) -> None:
    """``timestamp`` = open time in ms plus OHLCV, with exchange/symbol/timeframe metadata; written to a temporary file
    first so a failed export never leaves a half-written file."""
    table = pa.table({"timestamp": candles.ts, **{f: getattr(candles, f) for f in ("open", "high", "low", "close", "volume")}})
    meta = {"exchange": candles.exchange, "symbol": candles.symbol, "timeframe": candles.timeframe, "volume_unit": "base"}
    table = table.replace_schema_metadata({k.encode(): v.encode() for k, v in meta.items()})
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    pq.write_table(table, partial, compression="zstd")
    os.replace(partial, out)
