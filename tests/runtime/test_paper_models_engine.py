"""The data engine as a live model node uses it: seeded with the history training loads (a stored coarser series
that starts before the base and ends before the run, filled from the base after it) and then fed base bars, it
derives the coarser bars causally and cuts, with a model's own input spec, the input training cuts from the store —
on real Binance BTC/USDT 1m and 1h bars."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pivotal.core.errors import UserInputError
from pivotal.data.candles import Candles
from pivotal.data.duckdb_store import DuckDBStore
from pivotal.features.assemble import build_input, load_input_series
from pivotal.features.input_spec import InputSpec, WindowSpec
from pivotal.runtime.data_engine import DataEngine
from pivotal.runtime.feeds.historical import HistoricalFeed
from pivotal.structure.types import PivotParams
from tests.runtime.test_data_engine import HOUR, MIN, SYM, assert_equal_inputs, real_minutes


def stored_hours(shared: Path, start: str, end: str) -> Candles:
    frame = pd.read_parquet(shared / "binance" / "BTCUSDT-1h-2018-2026.parquet")
    lo, hi = (int(pd.Timestamp(x, tz="UTC").value // 1_000_000) for x in (start, end))
    return Candles.from_frame(frame[(frame.timestamp >= lo) & (frame.timestamp < hi)], "binance", SYM, "1h")


def test_a_seeded_engine_cuts_the_inputs_training_cuts(shared_data: Path, tmp_path: Path) -> None:
    minutes = real_minutes(shared_data, "2024-03-01 00:00", "2024-03-03 12:00")
    hours = stored_hours(shared_data, "2024-02-28 00:00", "2024-03-02 00:00")  # starts 2 days early, ends mid-run
    spec = InputSpec((WindowSpec("1m", 120), WindowSpec("1h", 60)), pivot_params=PivotParams(levels=5),
                     order_flow_windows_ms=())  # fmt: skip
    store = DuckDBStore(tmp_path / "m.duckdb")
    try:
        store.write_candles(minutes)
        store.write_candles(hours)
        split = 2_000  # the run starts at this minute; the seed is what closed before it
        before = int(minutes.ts[split])
        trained = load_input_series(store, "binance", SYM, spec)  # training's series: stored 1h, then filled
        assert int(trained[(SYM, "1h")].ts[0]) == int(hours.ts[0]) and len(trained[(SYM, "1h")]) == 72 + 36
        seed = {k: c.slice(0, int(np.searchsorted(c.ts + (MIN if k[1] == "1m" else HOUR), before, "right")))
                for k, c in trained.items()}  # fmt: skip
        eng = DataEngine("binance", trade_timeframe=None, derive={"1m": ["1h"]}, pivot_params=spec.pivot_params)
        eng.warm_up_series(seed)
        assert len(eng.candles(SYM, "1h")) == len(seed[(SYM, "1h")])  # not re-derived from the minutes' history
        times = [int(minutes.ts[i]) + MIN for i in (split, split + 59, split + 600, len(minutes) - 1)]
        for ev in HistoricalFeed([minutes.slice(split, len(minutes))]).events():
            eng.on_event(ev)
            if ev.known_at in times:
                assert_equal_inputs(
                    eng.input_at(SYM, ev.known_at, spec=spec), build_input(store, "binance", SYM, ev.known_at, spec)
                )
        assert eng.candles(SYM, "1h").equals(trained[(SYM, "1h")])  # derived after the seed: training's fill
    finally:
        store.close()
    with pytest.raises(UserInputError, match=r"^input spec pivots .* differ from the data engine's"):
        DataEngine("binance", trade_timeframe=None, pivot_params=PivotParams(levels=3)).input_at(SYM, before, spec=spec)
