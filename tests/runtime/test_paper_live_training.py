"""`pivotal run --mode paper --live-training` against the local test exchange: the model serves from the node's data
engine, every prediction and outcome is recorded, confirmed level-2 pivots of the streamed real Binance 1h bars are
queued for the trainer process, and the report carries the live-training statistics, as in a replay. With a journal
it is refused in one line (a restart cannot re-derive weights trained live). Loopback only."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pivotal.cli.main import app
from pivotal.config import load_settings
from pivotal.data.backends import open_store
from pivotal.data.candles import Candles
from pivotal.testexchange import TestExchange
from pivotal.testexchange.tape import SymbolData
from tests.runtime.test_paper_models import FIRST, HOUR, STREAMED, THRESHOLDS, step_clock, tapes, trained  # noqa: F401

pytestmark = pytest.mark.timeout(300)

ARGS = ["--models", "cnn", *THRESHOLDS, "-e", "binance", "-s", "BTC/USDT", "-t", "1h"]


def test_paper_trains_live_and_reports_its_statistics(
    trained: Candles,  # noqa: F811
    tapes: dict[str, SymbolData],  # noqa: F811
    shared_data: Path,
    tmp_path: Path,
) -> None:
    start, end = int(trained.ts[FIRST]), int(trained.ts[-1]) + HOUR
    window = ["--start", str(start), "--end", str(end)]
    market = open_store(load_settings())
    try:  # paper sees the run's bars only through the live feed: the store keeps the history before it
        assert market.delete_candles("binance", "BTC/USDT", "1h", start) == 600 - FIRST
    finally:
        market.close()
    refused = CliRunner().invoke(app, ["run", "--mode", "paper", *ARGS, *window, "--exchange-url", "http://127.0.0.1:9",
                                       "--live-training", "--journal", str(tmp_path / "j.jsonl"), "--no-status"])  # fmt: skip
    assert refused.exit_code != 0
    assert "--live-training with --journal" in refused.output and "Traceback" not in refused.output
    with TestExchange(shared_data, ["BTC/USDT"], timeframes=("1h",), start=end - STREAMED * HOUR,
                      preloaded={"BTCUSDT": tapes["BTCUSDT"]}) as ex:  # fmt: skip
        ex.pause()
        done = threading.Event()
        stepper = step_clock(ex, end + HOUR, done)
        try:
            result = CliRunner().invoke(app, ["run", "--mode", "paper", *ARGS, *window, "--exchange-url", ex.url,
                                              "--live-training", "--no-status", "--json"])  # fmt: skip
        finally:
            done.set()
            stepper.join(10)
    out = " ".join(result.output.split())
    assert result.exit_code == 0, out
    report = json.loads(out[out.index("{") :])
    stats = report["live_training"]["cnn"]
    assert stats["enable_live_training"] is True and stats["trainer"] == "process"
    assert stats["predictions"] == 600 - FIRST  # one prediction per streamed or backfilled bar, each recorded
    assert sum(stats["predictions_by_version"].values()) == 600 - FIRST
    assert stats["pivot_samples"] == PIVOT_SAMPLES
    assert stats["outcomes_resolved"] == {"BTC/USDT": OUTCOMES}
    assert stats["trainer_running"] is True  # the trainer process ran beside the node (the run stops it after the report)


PIVOT_SAMPLES = 16  # level-2 pivots of the 200 bars the sampler released (spacing, dedupe), each encoded once
OUTCOMES = 1259  # horizon and pivot outcomes of those predictions resolved by the last bar
