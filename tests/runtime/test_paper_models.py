"""`pivotal run --mode paper` with a model and with several symbols, against the local test exchange streaming the
recorded Binance 1h bars: the same orchestrator decisions and the same trades as `pivotal run --mode replay` of the
same bars. The model (a tiny CNN trained here on 600 real BTC/USDT 1h bars) reads its inputs in paper mode from the
node's data engine, seeded with the stored history before the run (the run's bars are deleted from the store before
the paper run: they reach it only through the feed); in replay from the store. The exchange clock is
paused and stepped one bar at a time, so the feed backfills the bars already closed over REST and streams the rest.
Loopback only."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from pivotal.cli.main import app
from pivotal.config import load_settings
from pivotal.core.timeframes import timeframe_ms
from pivotal.data.backends import open_store
from pivotal.data.candles import Candles
from pivotal.data.loaders import load_candles_file
from pivotal.testexchange import TestExchange
from pivotal.testexchange.tape import SymbolData, load_symbol
from tests.models.real_samples import real_candles

pytestmark = pytest.mark.timeout(120)

HOUR = timeframe_ms("1h")
FIRST = 400  # the runs trade bars [FIRST, 600) of the trained slice; the model's window (100 bars) comes before
THRESHOLDS = ["-p", "buy_threshold=0.09", "-p", "sell_threshold=0.09"]  # the CNN's scores here: -0.12 .. -0.07
STREAMED = 12  # the last bars stream as they close; the ones before are backfilled over REST


@pytest.fixture(scope="module")
def tapes(shared_data: Path) -> dict[str, SymbolData]:
    return {s: load_symbol(shared_data, s, ("1h",)) for s in ("BTCUSDT", "ETHUSDT")}


@pytest.fixture(autouse=True)
def _nothing_left_running() -> Iterator[None]:
    yield
    alive = [t.name for t in threading.enumerate() if t.name in ("pivotal-testexchange", "pivotal-live-feed")]
    assert alive == [], f"threads still running: {alive}"


@pytest.fixture
def trained(shared_data: Path) -> Candles:
    """A tiny CNN (20 seeded steps) checkpointed as ``cnn``; its BTC/USDT bars and ETH/USDT's in the store."""
    import torch

    from pivotal.services.train import checkpoints
    from pivotal.training.pipeline import RunSpec, load_series, make_samples, new_supervised

    torch.set_num_threads(1)
    torch.manual_seed(0)
    base = real_candles(shared_data, 600, offset=19_000)
    spec = RunSpec("cnn", "binance", "BTC/USDT", ("1h",), window=100, progress=False)
    samples = make_samples(load_series(None, spec, base), spec)
    model = new_supervised(spec)
    rng = np.random.default_rng(0)
    for _ in range(20):
        model.train_step(samples.batch(np.sort(rng.choice(len(samples), 64, replace=False))))
    settings = load_settings()
    span = {"exchange": "binance", "symbol": "BTC/USDT", "start": int(base.ts[0]), "end": int(base.ts[-1])}
    checkpoints(settings).save(model, "val_loss", 1.0, False, span, spec.extra())
    eth = load_candles_file(shared_data / "binance" / "ETHUSDT-1h-2018-2026.parquet", start=int(base.ts[0]),
                            end=int(base.ts[-1]) + HOUR, exchange="binance", symbol="ETH/USDT")  # fmt: skip
    assert len(eth) == 600
    market = open_store(settings)
    try:
        market.write_candles(base, source="test slice")
        market.write_candles(eth, source="test slice")
    finally:
        market.close()
    return base


def step_clock(ex: TestExchange, until: int, done: threading.Event) -> threading.Thread:
    """Move the paused exchange clock one bar at a time up to ``until`` (the feed streams each bar as it closes)."""

    def run() -> None:
        while not done.is_set() and ex.now_ms() < until:
            ex.advance(HOUR)
            done.wait(0.01)

    thread = threading.Thread(target=run, name="test-clock-stepper", daemon=True)
    thread.start()
    return thread


def run(args: list[str], tmp_path: Path, name: str) -> tuple[list[dict[str, Any]], str, dict[str, Any]]:
    """One run: its journal's model decisions, its trade list (the file) and its report."""
    journal, trades = tmp_path / f"{name}.jsonl", tmp_path / f"{name}.csv"
    result = CliRunner().invoke(app, [*args, "--journal", str(journal), "--trades-out", str(trades), "--json"])
    out = " ".join(result.output.split())
    assert result.exit_code == 0, out
    records = [json.loads(line[9:]) for line in journal.read_text().splitlines()]
    decisions = [r for r in records if r["k"] == "model_decision"]
    return decisions, trades.read_text(), json.loads(out[out.index("{") :])


def paper_and_replay(
    trained: Candles, tapes: dict[str, SymbolData], shared_data: Path, tmp_path: Path, args: list[str], symbols: list[str]
) -> tuple[tuple[list[dict[str, Any]], str, dict[str, Any]], tuple[list[dict[str, Any]], str, dict[str, Any]]]:
    start, end = int(trained.ts[FIRST]), int(trained.ts[-1]) + HOUR
    window = ["--start", str(start), "--end", str(end)]
    replay = run(["run", "--mode", "replay", *args, *window], tmp_path, "replay")
    market = open_store(load_settings())
    try:  # paper sees the run's bars only through the live feed: the store keeps the history before it
        assert all(market.delete_candles("binance", s, "1h", start) == 600 - FIRST for s in symbols)
    finally:
        market.close()
    preloaded = {s.replace("/", ""): tapes[s.replace("/", "")] for s in symbols}
    with TestExchange(shared_data, symbols, timeframes=("1h",), start=end - STREAMED * HOUR, preloaded=preloaded) as ex:
        ex.pause()  # before the feed subscribes: the clock moves only when the test steps it
        done = threading.Event()
        stepper = step_clock(ex, end + HOUR, done)
        try:
            paper = run(["run", "--mode", "paper", *args, *window, "--exchange-url", ex.url, "--no-status"], tmp_path,
                        "paper")  # fmt: skip
        finally:
            done.set()
            stepper.join(10)
    return paper, replay


def test_a_model_in_paper_decides_and_trades_as_its_replay(
    trained: Candles, tapes: dict[str, SymbolData], shared_data: Path, tmp_path: Path
) -> None:
    args = ["--models", "cnn", *THRESHOLDS, "-e", "binance", "-s", "BTC/USDT",
            "-t", "1h"]  # fmt: skip
    (p_dec, p_trades, p_rep), (r_dec, r_trades, r_rep) = paper_and_replay(
        trained, tapes, shared_data, tmp_path, args, ["BTC/USDT"]
    )
    closes = [int(t) + HOUR for t in trained.ts[FIRST:]]
    assert [d["as_of"] for d in r_dec] == closes  # one decision per bar, every input ready (history from the store)
    assert {d["action"] for d in r_dec} == {"SELL", "HOLD"}
    assert p_dec == r_dec  # the same decisions: inputs, outputs, weights, targets
    assert p_rep["metrics"]["trades"] == r_rep["metrics"]["trades"] >= 10
    assert p_trades == r_trades


@pytest.mark.parametrize("strategy", [["--strategy", "sma_cross"], ["--models", "cnn", *THRESHOLDS]], ids=["sma", "model"])
def test_two_symbols_in_paper_trade_as_their_replay(
    strategy: list[str], trained: Candles, tapes: dict[str, SymbolData], shared_data: Path, tmp_path: Path
) -> None:
    args = [*strategy, "-e", "binance", "-s", "BTC/USDT,ETH/USDT", "-t", "1h"]
    (p_dec, p_trades, p_rep), (r_dec, r_trades, r_rep) = paper_and_replay(
        trained, tapes, shared_data, tmp_path, args, ["BTC/USDT", "ETH/USDT"]
    )
    assert [r["symbol"] for r in p_rep["symbols"]] == ["BTC/USDT", "ETH/USDT"]
    assert all(r["trades"] >= 3 for r in r_rep["symbols"])
    assert p_rep["symbols"] == r_rep["symbols"]  # trades, wins and returns per symbol
    assert p_dec == r_dec
    assert p_trades == r_trades
    if "--models" in strategy:
        assert {d["symbol"] for d in p_dec} == {"BTC/USDT", "ETH/USDT"} and len(p_dec) == 2 * (600 - FIRST)
