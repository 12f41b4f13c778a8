"""Live learning in a replay through the trading node (``runtime.learning``), on real Binance BTC/USDT 1m bars of
2024-02-28 .. 2024-03-02 with a tiny CNN trained here on the first day: every confirmed L2 pivot reaches the queue
exactly once, the trainer process publishes a version, a promotion hot-swaps it between two bars and the predictions
after it carry the new version in the inference history, staleness is reported; with live training off nothing is
queued and the predictions equal those of a plain replay."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from pivotal.config import load_settings
from pivotal.data.backends import open_store
from pivotal.data.candles import Candles
from pivotal.data.loaders import load_candles_file
from pivotal.models.output_store import InferenceHistory, OutputStore
from pivotal.runtime.data_engine import DataEngine
from pivotal.runtime.feeds.historical import HistoricalFeed
from pivotal.runtime.learning import LiveLearning, LiveLearningConfig, TrainerOptions
from pivotal.runtime.node import TradingNode
from pivotal.services.model_strategy import CheckpointPredictor, candles_source
from pivotal.services.online import promote
from pivotal.strategies.model_strategy import ModelStrategy
from pivotal.strategies.orchestrator import Orchestrator, OrchestratorConfig
from pivotal.training.checkpoints import CheckpointInfo, CheckpointManager
from pivotal.training.live_samples import LivePivotConfig
from pivotal.training.online import read_metrics
from pivotal.training.promotion import PromotionLog
from pivotal.training.queue import QueuedSample
from pivotal.training.queue_embedded import SqliteSampleQueue

SYMBOL = "BTC/USDT"
MIN = 60_000
DAY = 1440
T0 = 1_709_078_400_000  # 2024-02-28 00:00 UTC
WARM = 2 * DAY  # bars the engine is seeded with (the first is the CNN's training day)


@dataclass
class Setup:
    root: Path
    info: CheckpointInfo
    bars: Candles  # WARM seeded bars, then the replayed ones


@pytest.fixture
def setup(shared_data: Path, tmp_path: Path) -> Setup:
    """A tiny CNN (20 seeded steps on the first day) checkpointed under ``root``."""
    import torch

    from pivotal.training.pipeline import RunSpec, load_series, make_samples, new_supervised

    torch.set_num_threads(1)
    torch.manual_seed(0)
    bars = load_candles_file(shared_data / "binance" / "BTCUSDT-1m-2024.parquet", timeframe="1m", start=T0,
                             end=T0 + 4 * DAY * MIN, exchange="binance", symbol=SYMBOL)  # fmt: skip
    assert len(bars) == 4 * DAY
    spec = RunSpec("cnn", "binance", SYMBOL, ("1m",), window=100, progress=False)
    samples = make_samples(load_series(None, spec, bars.slice(0, DAY)), spec)
    model = new_supervised(spec)
    rng = np.random.default_rng(0)
    for _ in range(20):
        model.train_step(samples.batch(np.sort(rng.choice(len(samples), 64, replace=False))))
    root = tmp_path / "models"
    span = {"exchange": "binance", "symbol": SYMBOL, "start": T0, "end": T0 + DAY * MIN}
    info = CheckpointManager(root).save(model, "val_loss", 1.0, False, span, spec.extra())
    return Setup(root, info, bars)


@dataclass
class Run:
    node: TradingNode
    engine: DataEngine
    strategy: ModelStrategy
    history: InferenceHistory

    def replay(self, bars: Candles) -> None:
        for event in HistoricalFeed([bars]).events(None):
            self.node.on_event(event)


@pytest.fixture
def history() -> Iterator[InferenceHistory]:
    store = open_store(load_settings())
    try:
        yield InferenceHistory(store, flush_every=500)
    finally:
        store.close()


def build(s: Setup, history: InferenceHistory) -> Run:
    """A node trading the CNN on 1m with a data engine seeded with the first WARM bars (the runner's live path)."""
    manager = CheckpointManager(s.root)
    predictor = CheckpointPredictor(manager.load(s.info), s.info, candles_source(s.bars), "binance")
    engine = DataEngine("binance", trade_timeframe=None, pivot_params=predictor.input_spec(SYMBOL).pivot_params)
    engine.warm_up(s.bars.slice(0, WARM))
    predictor.inputs = lambda symbol, t, spec, h: engine.input_at(symbol, t, h, spec)
    orchestrator = Orchestrator(OrchestratorConfig(buy_threshold=0.0, sell_threshold=0.0))
    strategy = ModelStrategy([predictor], orchestrator, OutputStore())
    node = TradingNode(strategy, [(SYMBOL, "1m")], exchange="binance", data_engine=engine)
    return Run(node, engine, strategy, history)


def queued_keys(root: Path) -> list[str]:
    """Keys still queued, then the keys trained (an ack deletes its entry; the done table keeps every trained key)."""
    with sqlite3.connect(root / ".online" / "cnn" / "queue.sqlite") as db:
        pending = [k for (k,) in db.execute("SELECT key FROM entries ORDER BY seq")]
        done = [k for (k,) in db.execute("SELECT key FROM done ORDER BY key")]
    queued = set(pending)
    return pending + [k for k in done if k not in queued]


def test_replay_queues_each_pivot_once_trains_out_of_process_and_hot_swaps(setup: Setup, history: InferenceHistory) -> None:
    run = build(setup, history)
    config = LiveLearningConfig(pivots=LivePivotConfig(timeframes=("1m",)), poll_s=0,
                                trainer=TrainerOptions(batch_size=64, steps=1, block_ms=200, nice=0))  # fmt: skip
    learning = LiveLearning(setup.root, run.strategy, run.engine, history, config).attach(run.node)
    first = setup.info.id
    try:
        day = setup.bars.slice(WARM, WARM + DAY)
        run.replay(day)  # serving never waits: the trainer runs in its own process meanwhile
        mid = run.engine.now
        assert mid is not None
        learning.flush()
        deadline = time.monotonic() + 120  # bound the wait for the first published version
        while not read_metrics(setup.root, "cnn") and time.monotonic() < deadline:
            time.sleep(0.5)
        model = learning.model("cnn")
        assert model.stop_trainer() == 0  # SIGTERM: the step in progress finishes, the process exits cleanly
        published = [m["version"] for m in read_metrics(setup.root, "cnn") if m["version"]]
        assert published, "the trainer published no version"
        log = PromotionLog(setup.root, "cnn")
        if log.serving() == first:  # the gate refused (or had no second batch yet): promote by hand, logged
            promote(setup.root, "cnn", published[-1], reason="test: promote the trainer's newest version")
        target = log.serving()
        assert target is not None and target != first
        rest = setup.bars.slice(WARM + DAY, WARM + DAY + 360)
        run.replay(rest)
        learning.flush()
        stats = learning.stats()["cnn"]
        end = run.engine.now
        assert end is not None
    finally:
        learning.close()

    # every L2 pivot the engine confirmed during the replay, queued once, input as of the pivot bar's close
    pivots = run.engine.pivots(SYMBOL, "1m")
    series = run.engine.candles(SYMBOL, "1m")
    expected = []
    for kind, arr in (("H", pivots.highs[1]), ("L", pivots.lows[1])):
        for index, confirmed in zip(arr.index.tolist(), arr.confirmed_at.tolist(), strict=True):
            if confirmed >= WARM:
                expected.append(f"{SYMBOL}|1m|2|{kind}|{int(series.ts[index])}")
    keys = queued_keys(setup.root)
    pivot_keys = [k for k in keys if not k.startswith(("trend|", "outcome|"))]
    assert len(expected) > 100 and sorted(pivot_keys) == sorted(expected)  # exactly once each
    assert stats["pivot_samples"] == len(expected) and stats["pivots"][SYMBOL]["trained_pivots_1m"] == len(expected)
    trend_keys = [k for k in keys if k.startswith("trend|")]
    assert len(trend_keys) == len(set(trend_keys)) == stats["trend_samples"] > 0
    assert stats["trend_lines"][SYMBOL]["lines"] > 0

    # swaps happen between two bars (the trainer's own promotions during the day, then the one above); each
    # prediction carries the version serving at its bar: the last one swapped in at or before its as-of time
    promoted = [e.version for e in PromotionLog(setup.root, "cnn").events() if e.action == "promote"]
    swapped = iter(promoted[1:])  # promoted[0]: the initial version; two promotions between checks swap once
    assert learning.swaps and all(v in swapped for _, _, v in learning.swaps)  # an ordered subsequence of the log
    assert learning.swaps[-1][2] == target and learning.swaps[-1][0] <= mid + MIN
    rows = history.query(model_name="cnn", symbol=SYMBOL, timeframe="1m")
    assert len(rows) == DAY + 360
    for p in rows:
        serving = [v for t, _, v in learning.swaps if t <= p.as_of]
        assert p.model_version == (serving[-1] if serving else first)
    assert {p.model_version for p in rows if p.as_of > mid} == {target}
    by_version: dict[str, int] = {}
    for p in rows:
        by_version[p.model_version] = by_version.get(p.model_version, 0) + 1
    assert stats["predictions_by_version"] == by_version and stats["serving_version"] == target
    assert stats["swaps"] == len(learning.swaps)

    # staleness at the node's clock: now minus the newest label the serving version was trained on
    trained = CheckpointManager(setup.root).resolve(f"cnn/{target}")
    through = int(trained.extra["trained_through_by_symbol"][SYMBOL])
    assert mid - DAY * MIN < through <= mid
    assert stats["staleness_ms"] == {SYMBOL: end - through}
    assert stats["last_training_loss"] is not None and stats["outcomes_stored"][SYMBOL] > 0


def test_resolved_pivot_outcomes_are_queued_once_with_the_predictions_own_input(
    setup: Setup, history: InferenceHistory
) -> None:
    """Each level-2 pivot outcome becomes a pivot-head sample: queued no earlier than it is known, with the truth as
    stored in the history and the input the prediction was made from (its hash checked), wrong ones first."""
    run = build(setup, history)
    config = LiveLearningConfig(pivots=LivePivotConfig(timeframes=("1m",)), poll_s=0, start_trainer=False, trend=None)
    learning = LiveLearning(setup.root, run.strategy, run.engine, history, config).attach(run.node)
    model = learning.model("cnn")
    put = model.put
    queued_at: dict[str, int] = {}

    def spy(samples: list[QueuedSample]) -> None:
        for sample in samples:
            queued_at[sample.key] = int(run.engine.now or 0)
        put(samples)

    model.put = spy  # type: ignore[method-assign]
    try:
        run.replay(setup.bars.slice(WARM, WARM + 720))
        learning.flush()
        stats = learning.stats()["cnn"]
    finally:
        learning.close()
    rows = [r for r in history.rows.outcomes(target="pivot_L2") if r.direction != 0]
    assert len(rows) > 300 and stats["input_mismatch"] == 0 and stats["incomplete"] == 0
    queue = SqliteSampleQueue(setup.root / ".online" / "cnn" / "queue.sqlite")
    try:
        blobs = queue._db.execute("SELECT key, payload FROM entries WHERE key LIKE 'outcome|%' ORDER BY seq").fetchall()
    finally:
        queue.close()
    got = {key: QueuedSample.decode(blob) for key, blob in blobs}
    assert len(got) == len(blobs) == len(rows) == stats["outcome_samples"]  # once each
    for row in rows:
        sample = got[f"outcome|{SYMBOL}|1m|L2|{row.as_of}"]
        assert sample.as_of == row.as_of and sample.known_at == row.known_at <= queued_at[sample.key]
        assert sample.arrays["kind"].tolist() == [-1, 0 if row.direction > 0 else 1, -1, -1, -1][: len(sample.arrays["kind"])]
        assert sample.arrays["price"][1] == np.float32(row.value) and int(sample.arrays["action"]) == -1
        assert np.isnan(sample.arrays["price"][0]) and np.isfinite(sample.arrays["bars"][1])
    order = [k for k, _ in blobs]
    by_time: dict[int, list[bool]] = {}
    for row in sorted(rows, key=lambda r: order.index(f"outcome|{SYMBOL}|1m|L2|{r.as_of}")):
        by_time.setdefault(queued_at[f"outcome|{SYMBOL}|1m|L2|{row.as_of}"], []).append(bool(row.hit))
    assert all(hits == sorted(hits) for hits in by_time.values())  # refuted (hit False) first within a bar


def test_live_training_off_queues_nothing_and_predicts_as_a_plain_replay(setup: Setup, history: InferenceHistory) -> None:
    day = setup.bars.slice(WARM, WARM + 720)
    plain = build(setup, history)
    plain.replay(day)
    expected = outputs(plain)
    run = build(setup, history)
    config = LiveLearningConfig(enabled=False, poll_s=0)
    learning = LiveLearning(setup.root, run.strategy, run.engine, history, config).attach(run.node)
    try:
        run.replay(day)
        stats = learning.stats()["cnn"]
    finally:
        learning.close()
    got = outputs(run)
    assert len(got) == 720 and got == expected
    assert not (setup.root / ".online" / "cnn" / "queue.sqlite").exists()
    assert stats["enable_live_training"] is False and stats["pivot_samples"] == stats["trend_samples"] == 0
    assert stats["trainer_running"] is False and stats["predictions"] == 720
    assert trades(plain) == trades(run)
    per_model = LiveLearningConfig(disabled_models=("cnn",))
    assert not per_model.trains("cnn") and per_model.trains("rnn") and not LiveLearningConfig(enabled=False).trains("rnn")


def outputs(run: Run) -> list[tuple[int, str, float, float]]:
    store = run.strategy.outputs
    assert isinstance(store, OutputStore)
    return [(o.timestamp, o.action, o.confidence, o.direction_vector) for o in store.recent("cnn")]


def trades(run: Run) -> list[tuple[int, int, int]]:
    return [(t.entry_time, t.direction, t.exit_time) for t in run.node.finish().trades]


class _Rule:
    """A predictor that is not a checkpoint (live learning has no weights to train or swap for it)."""

    name = "rule"

    def predict(self, symbol: str, t: int, last_predictions: object, position: int = 0) -> None:
        return None


def test_live_learning_refuses_predictors_without_a_checkpoint(tmp_path: Path, history: InferenceHistory) -> None:
    from pivotal.core.errors import UserInputError

    strategy = ModelStrategy([_Rule()])
    with pytest.raises(UserInputError, match=r"live learning needs checkpoint predictors .*got \['_Rule'\]"):
        LiveLearning(tmp_path, strategy, DataEngine("binance"), history)
