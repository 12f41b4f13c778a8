"""Does live training help? The same starting checkpoint, frozen vs trained live, replayed through the runtime.

Both arms replay the same real bars through a ``TradingNode`` with a ``DataEngine`` (seeded with the history before the
start) and the same ``ModelStrategy`` over a checkpoint trained here on the days before the replay; the live arm
attaches ``runtime.learning.LiveLearning`` (pivot and trend-line samples → queue → trainer process → gate → hot swap),
the frozen arm attaches it with ``enabled=False`` (same serving path and inference history, nothing trained).

Pacing: the trainer runs in its own process while the replay goes as fast as the CPU allows, so how much it trains
depends on the machine. To make the live arm reproducible in what it *can* learn, the replay pauses every
``--drain-every`` bars until the queue is drained (the trainer has trained or skipped every sample), then checks for a
promoted version: the serving model is at most that many bars behind the trainer (a bound on staleness stated in the
report), the trainer's gate still decides what serves.

Metrics, paired by bar (same as-of times in both arms):
- next-L2-pivot accuracy per symbol: the predicted kind of the level-2 pivot head vs the kind of the next level-2
  pivot (``training.labels.build_labels`` over the whole replayed series; bars whose next pivot is never settled in
  the data are left out);
- after-fee PnL: the node's portfolio per-bar returns (fee ``--fee`` and slippage per side, entries at the next open).
The difference live − frozen is tested with a moving-block bootstrap (``training.evaluation.bootstrap``, two-sided
p), Holm-corrected over all tested differences (``core.stats.holm_adjust``).

    .venv/bin/python scripts/frozen_vs_live.py --start 2025-05-30 --days 7 --symbols BTC/USDT,ETH/USDT \\
        --timeframes 1m,1h --out /tmp/fvl.json

The issue's full range: ``--days 90 --timeframes 1m,1h,1d`` (and a Coinbase 1s run with ``--exchange coinbase
--symbols BTC/USD --timeframes 1s,1m``, untested).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pivotal.core.stats import holm_adjust
from pivotal.core.timeframes import timeframe_ms
from pivotal.data.backends import open_store
from pivotal.data.candles import Candles
from pivotal.data.loaders import load_candles_file
from pivotal.data.resample import resample
from pivotal.execution.engine import BacktestConfig
from pivotal.models.output_store import InferenceHistory, OutputStore
from pivotal.runtime.data_engine import DataEngine
from pivotal.runtime.feeds.historical import HistoricalFeed
from pivotal.runtime.learning import LiveLearning, LiveLearningConfig, TrainerOptions
from pivotal.runtime.node import TradingNode
from pivotal.services.model_strategy import CheckpointPredictor, candles_source
from pivotal.strategies.model_strategy import ModelStrategy
from pivotal.strategies.orchestrator import Orchestrator, OrchestratorConfig
from pivotal.training.checkpoints import CheckpointInfo, CheckpointManager
from pivotal.training.evaluation import bootstrap
from pivotal.training.labels import build_labels
from pivotal.training.live_samples import LivePivotConfig
from pivotal.training.promotion import PromotionLog

DAY_MS = 86_400_000


def _ms(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)


def _concat(parts: list[Candles], exchange: str, symbol: str, timeframe: str) -> Candles:
    parts = [p for p in parts if len(p)]
    if not parts:
        raise SystemExit(f"no {exchange} {symbol} {timeframe} bars in the requested range")
    cols = [np.concatenate([getattr(p, f) for p in parts]) for f in ("ts", "open", "high", "low", "close", "volume")]
    ts, o, h, lo, c, v = cols
    return Candles(ts, o, h, lo, c, v, exchange, symbol, timeframe)


def load(data: Path, exchange: str, symbol: str, timeframe: str, start: int, end: int) -> Candles:
    """Bars with open time in [start, end) from the shared data (Binance 1m is split by calendar year)."""
    stem = symbol.replace("/", "")
    folder = data / exchange
    if timeframe == "1m" and exchange == "binance":
        years = range(datetime.fromtimestamp(start / 1000, UTC).year, datetime.fromtimestamp((end - 1) / 1000, UTC).year + 1)
        paths = [folder / f"{stem}-1m-{y}.parquet" for y in years]
    else:
        paths = [folder / f"{stem}-{timeframe}.parquet"]
    parts = [load_candles_file(p, timeframe=timeframe, start=start, end=end - 1, exchange=exchange, symbol=symbol)
             for p in paths if p.exists()]  # fmt: skip
    got = _concat(parts, exchange, symbol, timeframe)
    keep = (got.ts >= start) & (got.ts < end)
    idx = np.flatnonzero(keep)
    return got.slice(int(idx[0]), int(idx[-1]) + 1)


@dataclass
class Data:
    train: dict[str, dict[tuple[str, str], Candles]]  # symbol -> series for the starting checkpoint
    seed: dict[str, dict[tuple[str, str], Candles]]  # symbol -> the engine's history before the replay
    replay: dict[str, Candles]  # symbol -> replayed base bars
    truth: dict[str, Candles]  # symbol -> seed + replay + a tail for labels


def prepare_data(a: argparse.Namespace) -> Data:
    start = _ms(a.start)
    end = start + a.days * DAY_MS
    tfs = a.timeframes.split(",")
    base = tfs[0]
    train_end = start - a.seed_days * DAY_MS
    train_start = train_end - a.train_days * DAY_MS
    out = Data({}, {}, {}, {})
    for symbol in a.symbols.split(","):
        long_ago = train_start - 120 * timeframe_ms(tfs[-1])  # the coarsest window's history
        full = load(a.data, a.exchange, symbol, base, long_ago if len(tfs) > 1 else train_start, end + DAY_MS)
        series = {base: full}
        for tf in tfs[1:]:  # coarser windows aggregated from the base bars (complete buckets), as the engine derives them
            series[tf] = resample(full, tf)[0]
        b = series[base]

        def cut(c: Candles, lo: int, hi: int) -> Candles:
            tf = timeframe_ms(c.timeframe)
            idx = np.flatnonzero((c.ts >= lo) & (c.ts + tf <= hi))  # bars closed by hi
            return c.slice(int(idx[0]), int(idx[-1]) + 1)

        out.train[symbol] = {(symbol, tf): cut(series[tf], train_start if tf == base else long_ago, train_end) for tf in tfs}
        out.seed[symbol] = {(symbol, tf): cut(series[tf], train_end if tf == base else long_ago, start) for tf in tfs}
        out.replay[symbol] = cut(b, start, end)
        out.truth[symbol] = cut(b, train_end, end + DAY_MS)
    return out


def train_start_checkpoint(a: argparse.Namespace, data: Data, root: Path) -> CheckpointInfo:
    import torch

    from pivotal.training.pipeline import RunSpec, make_samples, new_supervised

    torch.manual_seed(a.seed)
    symbols = list(data.train)
    tfs = tuple(a.timeframes.split(","))
    spec = RunSpec("cnn", a.exchange, symbols[0], tfs, window=a.window, progress=False, seed=a.seed)
    sets = [make_samples(data.train[s], RunSpec("cnn", a.exchange, s, tfs, window=a.window, progress=False)) for s in symbols]
    model = new_supervised(spec)
    rng = np.random.default_rng(a.seed)
    for step in range(a.train_steps):
        samples = sets[step % len(sets)]
        model.train_step(samples.batch(np.sort(rng.choice(len(samples), min(64, len(samples)), replace=False))))
    base = data.train[symbols[0]][(symbols[0], tfs[0])]
    span = {"exchange": a.exchange, "symbol": symbols[0], "start": int(base.ts[0]),
            "end": int(base.ts[-1]) + timeframe_ms(tfs[0])}  # fmt: skip
    return CheckpointManager(root).save(model, "val_loss", 1.0, False, span, spec.extra())


def run_arm(a: argparse.Namespace, data: Data, root: Path, info: CheckpointInfo, live: bool, work: Path) -> dict[str, Any]:
    tfs = a.timeframes.split(",")
    base = tfs[0]
    symbols = list(data.replay)
    manager = CheckpointManager(root)
    predictor = CheckpointPredictor(manager.load(info), info, candles_source(data.replay[symbols[0]]), a.exchange)
    params = predictor.input_spec(symbols[0]).pivot_params
    engine = DataEngine(a.exchange, trade_timeframe=None, derive={base: tfs[1:]} if len(tfs) > 1 else {}, pivot_params=params)
    engine.warm_up_series({k: v for s in symbols for k, v in data.seed[s].items()})
    predictor.inputs = lambda symbol, t, spec, h: engine.input_at(symbol, t, h, spec)
    orchestrator = Orchestrator(OrchestratorConfig(buy_threshold=a.threshold, sell_threshold=a.threshold))
    strategy = ModelStrategy([predictor], orchestrator, OutputStore(), fraction=1.0 / len(symbols))
    node = TradingNode(strategy, [(s, base) for s in symbols], exchange=a.exchange, data_engine=engine,
                       config=BacktestConfig(fee_rate=a.fee, slippage=a.slippage))  # fmt: skip
    os.environ["PIVOTAL_DATA_DIR"] = str(work / "data")
    from pivotal.config import load_settings

    store = open_store(load_settings())
    history = InferenceHistory(store, flush_every=1000)
    trainer = TrainerOptions(batch_size=a.batch_size, steps=a.steps, alpha=a.alpha, min_samples=a.min_samples,
                             block_ms=200, nice=a.nice)  # fmt: skip
    config = LiveLearningConfig(enabled=live, pivots=LivePivotConfig(timeframes=(base,)), trainer=trainer, poll_s=0)
    learning = LiveLearning(root, strategy, engine, history, config).attach(node)
    model = learning.model(predictor.name)
    staleness: list[int] = []
    waited = 0.0
    started = time.perf_counter()
    bars = 0
    try:
        for event in HistoricalFeed([data.replay[s] for s in symbols]).events(None):
            node.on_event(event)
            bars += 1
            if live and bars % (a.drain_every * len(symbols)) == 0:
                t0 = time.perf_counter()
                deadline = time.monotonic() + a.drain_timeout_s
                while model.queue is not None and time.monotonic() < deadline:
                    c = model.queue.counts()
                    if c["new"] == 0 and c["pending"] == 0:
                        break
                    time.sleep(0.05)
                waited += time.perf_counter() - t0
                learning.check_swaps()
                staleness += list(learning.stats()[model.name]["staleness_ms"].values())
        result = node.finish()
        learning.flush()
        stats = learning.stats()[model.name]
    finally:
        learning.close()
    elapsed = time.perf_counter() - started
    outputs: dict[str, dict[int, str]] = {s: {} for s in symbols}
    for p in history.query(model_name=predictor.name):
        lv2 = [pp for pp in p.output.pivots if pp.level == 2]
        if lv2:
            outputs[p.symbol][p.as_of] = lv2[0].kind
    store.close()
    events = PromotionLog(root, predictor.name).events()
    return {
        "live": live,
        "seconds": elapsed,
        "waited_for_trainer_s": waited,
        "result": result,
        "outputs": outputs,
        "stats": {k: v for k, v in stats.items() if k not in ("pivots", "trend_lines")},
        "pivots": stats["pivots"],
        "trend_lines": stats["trend_lines"],
        "promotions": sum(e.action == "promote" for e in events) - 1,
        "refusals": sum(e.action == "refuse" for e in events),
        "staleness_ms": staleness,
    }


def pivot_hits(outputs: dict[int, str], truth: Candles, params: Any) -> dict[int, float]:
    labels = build_labels(truth, params)
    tf = timeframe_ms(truth.timeframe)
    close_ts = truth.ts + tf
    out: dict[int, float] = {}
    for as_of, kind in outputs.items():
        i = int(np.searchsorted(close_ts, as_of, side="right")) - 1
        if i < 0 or close_ts[i] != as_of or labels.known_at[i, 1] < 0:
            continue
        actual = "H" if labels.kind[i, 1] > 0 else "L"
        out[as_of] = float(kind == actual)
    return out


def paired(d: np.ndarray, a: argparse.Namespace) -> dict[str, float]:
    est = bootstrap(lambda idx: float(d[idx].mean()), len(d), n_boot=a.n_boot, block=a.block, seed=a.seed)
    return {"mean_diff": est.value, "ci_low": est.low, "ci_high": est.high, "n": est.n, "p": est.p_value}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path(os.environ.get("PIVOTAL_SHARED_DATA", "/work/shared/data")))
    p.add_argument("--exchange", default="binance")
    p.add_argument("--symbols", default="BTC/USDT,ETH/USDT")
    p.add_argument("--start", default="2025-05-30", help="first replayed day (UTC)")
    p.add_argument("--days", type=int, default=7, help="replayed days (the issue asks for >= 90)")
    p.add_argument("--timeframes", default="1m,1h", help="model windows; the first is traded (the issue: 1m,1h,1d)")
    p.add_argument("--window", type=int, default=100)
    p.add_argument("--train-days", type=int, default=8, help="days before the seed the starting checkpoint learns")
    p.add_argument("--train-steps", type=int, default=300)
    p.add_argument("--seed-days", type=int, default=2, help="base-timeframe days the engine starts with")
    p.add_argument("--fee", type=float, default=0.001)
    p.add_argument("--slippage", type=float, default=0.0005)
    p.add_argument("--threshold", type=float, default=0.2, help="orchestrator buy/sell threshold")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--min-samples", type=int, default=20)
    p.add_argument("--nice", type=int, default=10)
    p.add_argument("--drain-every", type=int, default=60, help="bars between waits for the trainer")
    p.add_argument("--drain-timeout-s", type=float, default=120.0)
    p.add_argument("--n-boot", type=int, default=2000)
    p.add_argument("--block", type=int, default=60, help="bootstrap block length in bars")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, default=None)
    p.add_argument("--out", type=Path, default=None, help="JSON with every number")
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    work = a.work or Path(tempfile.mkdtemp(prefix="frozen-vs-live-"))
    t0 = time.perf_counter()
    data = prepare_data(a)
    root0 = work / "start"
    info = train_start_checkpoint(a, data, root0)
    print(f"starting checkpoint {info.id} trained in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    arms = {}
    for name, live in (("frozen", False), ("live", True)):
        root = work / name / "models"
        shutil.copytree(root0, root)
        arms[name] = run_arm(a, data, root, info, live, work / name)
        print(f"{name}: {arms[name]['seconds']:.0f} s", file=sys.stderr, flush=True)
    params = CheckpointPredictor(CheckpointManager(root0).load(info), info, candles_source(data.replay[next(iter(data.replay))]),
                                 a.exchange).input_spec(next(iter(data.replay))).pivot_params  # fmt: skip
    tests: dict[str, dict[str, float]] = {}
    accuracy: dict[str, dict[str, float]] = {}
    for symbol in data.replay:
        hits = {n: pivot_hits(arm["outputs"][symbol], data.truth[symbol], params) for n, arm in arms.items()}
        common = sorted(set(hits["frozen"]) & set(hits["live"]))
        f = np.array([hits["frozen"][t] for t in common])
        lv = np.array([hits["live"][t] for t in common])
        accuracy[symbol] = {"frozen": float(f.mean()), "live": float(lv.mean()), "n": len(common)}
        tests[f"next_L2_pivot_accuracy {symbol}"] = paired(lv - f, a)
    eq = {n: arm["result"].equity for n, arm in arms.items()}
    assert np.array_equal(eq["frozen"].ts, eq["live"].ts)
    rets = {n: np.diff(e.equity) / e.equity[:-1] for n, e in eq.items()}
    tests["after_fee_return_per_bar"] = paired(rets["live"] - rets["frozen"], a)
    adjusted = holm_adjust(np.array([t["p"] for t in tests.values()]))
    for t, q in zip(tests.values(), adjusted, strict=True):
        t["p_holm"] = float(q)
    summary = {
        "command": " ".join(["scripts/frozen_vs_live.py", *(argv if argv is not None else sys.argv[1:])]),
        "data": {
            s: {"replay_first_open": int(c.ts[0]), "replay_last_open": int(c.ts[-1]), "bars": len(c)}
            for s, c in data.replay.items()
        },
        "checkpoint": info.id,
        "accuracy": accuracy,
        "pnl": {
            n: {
                "net_return": float(e.equity[-1] / e.equity[0] - 1),
                "trades": len(arms[n]["result"].trades),
                "metrics": {k: float(v) for k, v in arms[n]["result"].metrics.items()},
            }
            for n, e in eq.items()
        },
        "tests": tests,
        "arms": {n: {k: v for k, v in arm.items() if k not in ("result", "outputs", "staleness_ms")} for n, arm in arms.items()},
        "live_staleness_ms": {
            "p50": float(np.percentile(arms["live"]["staleness_ms"], 50)) if arms["live"]["staleness_ms"] else None,
            "p95": float(np.percentile(arms["live"]["staleness_ms"], 95)) if arms["live"]["staleness_ms"] else None,
        },
        "total_seconds": time.perf_counter() - t0,
    }
    text = json.dumps(summary, indent=2, default=str)
    if a.out is not None:
        a.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
