"""`pivotal run` with models and the orchestrator (strategy "model", [[models]], [orchestrator]): a small CNN trained
here on 600 real Binance BTC/USDT 1h bars, checkpointed, then traded by a replay through the trading node — the same
decisions and trades as `pivotal backtest --strategy model` on the same bars, every orchestrator decision in the
journal with its inputs' as-of time, under the risk engine, and refusals in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pivotal.cli.main import app
from pivotal.config import load_settings
from pivotal.core.timeframes import timeframe_ms
from pivotal.data.backends import open_store
from pivotal.data.candles import Candles
from pivotal.services.backtest import run_backtest
from tests.models.real_samples import real_candles

runner = CliRunner()
HOUR = timeframe_ms("1h")


@pytest.fixture
def trained(shared_data: Path) -> Candles:
    """A tiny CNN (20 seeded steps) checkpointed as ``cnn``, and its bars in the store (as a node's inputs)."""
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
    market = open_store(settings)
    try:
        market.write_candles(base, source="test slice")
    finally:
        market.close()
    return base


def invoke(args: list[str]) -> tuple[int, str]:
    result = runner.invoke(app, args)
    return result.exit_code, " ".join(result.output.split())


def window(base: Candles, first: int = 0) -> list[str]:
    """The replay window from bar ``first`` to the end (the store holds all: a model sees its history before it)."""
    return ["--start", str(int(base.ts[first])), "--end", str(int(base.ts[-1]) + HOUR)]


def test_a_model_replay_trades_as_the_backtest_and_journals_each_decision(trained: Candles, tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text(
        'mode = "replay"\nexchange = "binance"\nsymbols = ["BTC/USDT"]\ntimeframes = ["1h"]\n'
        '[[models]]\nname = "cnn"\n[orchestrator]\nbuy_threshold = 0.0\nsell_threshold = 0.0\n'
    )
    journal = tmp_path / "run.jsonl"
    code, out = invoke(["run", "--config", str(config), *window(trained), "--journal", str(journal),
                        "--trades-out", str(tmp_path / "rp.json"), "--json"])  # fmt: skip
    assert code == 0, out
    report = json.loads(out[out.index("{") :])
    assert report["strategy"] == "model" and report["events"] == 600
    assert report["params"]["models"] == "cnn" and report["params"]["buy_threshold"] == 0.0
    expected = run_backtest(trained, "model", {"models": "cnn", "buy_threshold": 0.0, "sell_threshold": 0.0})
    assert len(expected.result.trades) > 0
    replayed = json.loads((tmp_path / "rp.json").read_text())
    assert [(t["entry_time"], t["direction"], t["exit_time"]) for t in replayed] == [
        (t.entry_time, t.direction, t.exit_time) for t in expected.result.trades
    ]
    records = [json.loads(line[9:]) for line in journal.read_text().splitlines()]
    decisions = [r for r in records if r["k"] == "model_decision"]
    closes = [int(t) + HOUR for t in trained.ts]
    assert [d["as_of"] for d in decisions] == closes  # one per bar, as of its close
    assert {d["reason"] for d in decisions[:99]} == {"no output"}  # < 100 bars closed: the model's input is not ready
    used = decisions[99]["contributions"]
    assert [(c["model_name"], c["output_ts"], c["used"]) for c in used] == [("cnn", closes[99], True)]
    # a rerun on the finished journal re-derives the run and writes no decision twice
    code, out = invoke(["run", "--config", str(config), *window(trained), "--journal", str(journal), "--json"])
    assert code == 0, out
    keys = [json.loads(line[9:])["key"] for line in journal.read_text().splitlines()]
    assert len(keys) == len(set(keys)) and sum(k.startswith("model_decision:") for k in keys) == 600


def test_flags_override_the_orchestrator_and_the_risk_engine_applies(trained: Candles, tmp_path: Path) -> None:
    base = ["run", "--models", "cnn", "-e", "binance", "-s", "BTC/USDT", "-t", "1h", *window(trained, 300), "--json"]
    code, out = invoke([*base, "-p", "buy_threshold=0.0", "-p", "sell_threshold=0.0"])
    assert code == 0, out
    free = json.loads(out[out.index("{") :])
    code, out = invoke([*base, "-p", "buy_threshold=1.0", "-p", "sell_threshold=1.0"])  # |S| never reaches 1: abstains
    assert code == 0, out
    assert json.loads(out[out.index("{") :])["metrics"]["trades"] == 0 < free["metrics"]["trades"]
    config = tmp_path / "risk.toml"
    config.write_text('[[models]]\nname = "cnn"\n[orchestrator]\nbuy_threshold = 0.0\nsell_threshold = 0.0\n'
                      "[risk]\nstop_loss = 0.004\n")  # fmt: skip
    code, out = invoke(["run", "--config", str(config), "-e", "binance", "-s", "BTC/USDT", "-t", "1h",
                        *window(trained, 300), "--trades-out", str(tmp_path / "risk.csv"), "--json"])  # fmt: skip
    assert code == 0, out
    managed = json.loads(out[out.index("{") :])
    assert managed["status"]["risk"] is not None and managed["audit"] is None  # the engine ran (audit in memory)
    reasons = (tmp_path / "risk.csv").read_text().splitlines()[1:]
    assert any(",BREAKER," in row for row in reasons)  # the stop-loss closed a position the model still wanted
    assert managed["metrics"]["trades"] > free["metrics"]["trades"]  # ... and the model entered again


def test_model_refusals_are_one_line(trained: Candles) -> None:
    code, out = invoke(["run", "--models", "rnn", "-e", "binance", "-s", "BTC/USDT", "-t", "1h", *window(trained)])
    assert code == 1 and "model strategy: no checkpoints for model 'rnn' under " in out and "have: cnn" in out
    code, out = invoke(["run", "--strategy", "model", "-e", "binance", "-s", "BTC/USDT", "-t", "1h"])
    assert code == 1 and 'models: strategy "model" trades checkpoints; fix: add a [[models]] entry' in out
    assert "Traceback" not in out


def test_a_model_trades_several_symbols_with_one_checkpoint(trained: Candles, shared_data: Path) -> None:
    """The same checkpoint decides for BTC/USDT and ETH/USDT (its input built per symbol); BTC's decisions and trades
    are the single-symbol run's, since nothing couples the symbols but the shared equity."""
    from pivotal.data.loaders import load_candles_file

    path = shared_data / "binance" / "ETHUSDT-1h-2018-2026.parquet"
    eth = load_candles_file(path, start=int(trained.ts[0]), end=int(trained.ts[-1]) + HOUR, exchange="binance",
                            symbol="ETH/USDT")  # fmt: skip
    market = open_store(load_settings())
    try:
        market.write_candles(eth, source="test slice")
    finally:
        market.close()
    args = ["run", "--models", "cnn", "-p", "buy_threshold=0", "-p", "sell_threshold=0", "-e", "binance", "-t", "1h",
            *window(trained, 400), "--json"]  # fmt: skip
    code, out = invoke([*args, "-s", "BTC/USDT,ETH/USDT"])
    assert code == 0, out
    both = json.loads(out[out.index("{") :])
    assert both["events"] == 2 * 200 and len(eth) == 600 and [r["symbol"] for r in both["symbols"]] == ["BTC/USDT", "ETH/USDT"]
    assert all(r["trades"] > 0 for r in both["symbols"])
    code, out = invoke([*args, "-s", "BTC/USDT"])
    assert code == 0, out
    alone = json.loads(out[out.index("{") :])
    assert both["symbols"][0]["trades"] == alone["metrics"]["trades"]
    assert both["symbols"][0]["net_return_pct"] == pytest.approx(alone["symbols"][0]["net_return_pct"])


def test_live_training_queues_confirmed_pivots_and_reports_it(trained: Candles, tmp_path: Path) -> None:
    """`--live-training`: the replay's model reads its inputs from the node's data engine, each confirmed L2 pivot
    of the traded 1h series becomes a queued sample for the out-of-process trainer, and the report says which version
    served; without the flag there is no live-training report."""
    import sqlite3

    args = ["run", "--mode", "replay", "-e", "binance", "-s", "BTC/USDT", "-t", "1h", "--models", "cnn",
            *window(trained, 300), "--json"]  # fmt: skip
    code, out = invoke([*args, "--live-training"])
    assert code == 0, out
    report = json.loads(out[out.index("{") :])
    (stats,) = report["live_training"].values()
    assert stats["enable_live_training"] is True
    assert sum(stats["predictions_by_version"].values()) == report["events"] == 300
    pivots = stats["pivots"]["BTC/USDT"]
    assert pivots["total_trained_pivots"] == pivots["trained_pivots_1h"] > 0, pivots
    queue = Path(stats["queue"].removeprefix("sqlite:"))
    with sqlite3.connect(queue) as db:
        keys = [k for (k,) in db.execute("SELECT key FROM entries")]  # still queued (an ack deletes the entry)
        done = {k for (k,) in db.execute("SELECT key FROM done")}  # trained
    assert len(keys) == len(set(keys)) and len(set(keys) | done) >= pivots["total_trained_pivots"]
    code, out = invoke(args)
    assert code == 0, out
    assert json.loads(out[out.index("{") :])["live_training"] is None
