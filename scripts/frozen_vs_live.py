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

The two arms run as two processes at once (``--arm frozen|live`` is the child mode); each writes its partial result
(predictions' level-2 kind per as-of time, mark-to-market equity per bar, counters) to ``<work>/<arm>/partial.*`` after
every replayed day, so a run cut short still yields a report over the days both arms covered (``--report-only``).

The issue's range (1m contiguous for both symbols 2025-05-20 .. 08-18; context from the 1h file, 1d aggregated from it;
starting checkpoint trained on the March block)::

    nice -n 5 .venv/bin/python scripts/frozen_vs_live.py --start 2025-05-21 --days 89 --seed-days 1 \\
        --train-start 2025-03-22 --train-days 8 --timeframes 1m,1h,1d \\
        --context-file 1h=1h:binance/{stem}-1h-2018-2026.parquet --context-file 1d=1h:binance/{stem}-1h-2018-2026.parquet

Coinbase 1s (BTC/USD; the 1s file has a bar only in seconds with trades, 4.6 % of them, so a 1s model window never
passes the completeness rule: the model reads 1m, the 1s bars are replayed for the pivot detector, and the live
samples come from L2 pivots on 1s and 1m, as the reference's live training does)::

    .venv/bin/python scripts/frozen_vs_live.py --exchange coinbase --symbols BTC/USD --timeframes 1m \\
        --start 2016-10-08 --days 2 --train-start 2016-10-07 --train-days 0.75 --seed-days 0.25 \\
        --pivot-streams 1s --pivot-timeframes 1s,1m
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import subprocess
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
from pivotal.models.serving import Served
from pivotal.runtime.data_engine import DataEngine
from pivotal.runtime.feeds.historical import HistoricalFeed
from pivotal.runtime.learning import LiveLearning, LiveLearningConfig, TrainerOptions
from pivotal.runtime.node import TradingNode
from pivotal.services.model_strategy import CheckpointPredictor, candles_source
from pivotal.services.online import staleness as staleness_of
from pivotal.strategies.model_strategy import ModelStrategy
from pivotal.strategies.orchestrator import Orchestrator, OrchestratorConfig
from pivotal.training.checkpoints import CheckpointInfo, CheckpointManager
from pivotal.training.evaluation import bootstrap
from pivotal.training.labels import build_labels
from pivotal.training.live_samples import LivePivotConfig
from pivotal.training.promotion import PromotionLog

DAY_MS = 86_400_000
ARMS = ("frozen", "live")


def _ms(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def _concat(parts: list[Candles], exchange: str, symbol: str, timeframe: str) -> Candles:
    parts = [p for p in parts if len(p)]
    if not parts:
        raise SystemExit(f"no {exchange} {symbol} {timeframe} bars in the requested range")
    cols = [np.concatenate([getattr(p, f) for p in parts]) for f in ("ts", "open", "high", "low", "close", "volume")]
    ts, o, h, lo, c, v = cols
    return Candles(ts, o, h, lo, c, v, exchange, symbol, timeframe)


def _within(c: Candles, start: int, end: int) -> Candles:
    idx = np.flatnonzero((c.ts >= start) & (c.ts < end))
    if not len(idx):
        raise SystemExit(f"no {c.exchange} {c.symbol} {c.timeframe} bars in {_iso(start)} .. {_iso(end)}")
    return c.slice(int(idx[0]), int(idx[-1]) + 1)


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
    return _within(_concat(parts, exchange, symbol, timeframe), start, end)


def load_context(a: argparse.Namespace, symbol: str, tf: str, start: int, end: int) -> Candles:
    """A context timeframe's bars from ``--context-file TF=FILE_TF:PATH`` (aggregated when FILE_TF is finer)."""
    file_tf, rel = a.context[tf]
    path = a.data / rel.format(stem=symbol.replace("/", ""))
    got = load_candles_file(path, timeframe=file_tf, start=start, end=end - 1, exchange=a.exchange, symbol=symbol)
    got = _within(got, start, end)
    return got if file_tf == tf else resample(got, tf)[0]


@dataclass
class Data:
    train: dict[str, dict[tuple[str, str], Candles]]  # symbol -> series for the starting checkpoint
    seed: dict[str, dict[tuple[str, str], Candles]]  # symbol -> the engine's history before the replay
    replay: dict[str, Candles]  # symbol -> replayed base bars
    streams: dict[str, list[Candles]]  # symbol -> context bars fed as their own events during the replay
    truth: dict[str, Candles]  # symbol -> seed + replay + a tail for labels


def _cut(c: Candles, lo: int, hi: int) -> Candles:
    tf = timeframe_ms(c.timeframe)
    idx = np.flatnonzero((c.ts >= lo) & (c.ts + tf <= hi))  # bars closed by hi
    if not len(idx):
        raise SystemExit(f"no {c.symbol} {c.timeframe} bars closed in {_iso(lo)} .. {_iso(hi)}")
    return c.slice(int(idx[0]), int(idx[-1]) + 1)


def prepare_data(a: argparse.Namespace) -> Data:
    start = _ms(a.start)
    end = start + int(a.days * DAY_MS)
    tfs = a.timeframes.split(",")
    base = tfs[0]
    seed_start = start - int(a.seed_days * DAY_MS)
    if a.train_start:
        train_start = _ms(a.train_start)
        train_end = train_start + int(a.train_days * DAY_MS)
    else:
        train_end = seed_start
        train_start = train_end - int(a.train_days * DAY_MS)
    out = Data({}, {}, {}, {}, {})
    for symbol in a.symbols.split(","):
        long_ago = train_start - 120 * timeframe_ms(tfs[-1])  # the coarsest window's history
        series: dict[str, Candles] = {}
        if a.train_start:  # two blocks: training elsewhere, then the replay's own block
            train_base = load(a.data, a.exchange, symbol, base, train_start, train_end)
            run_base = load(a.data, a.exchange, symbol, base, seed_start, end + DAY_MS)
        else:
            lo = long_ago if len(tfs) > 1 and not a.context else train_start
            train_base = run_base = load(a.data, a.exchange, symbol, base, lo, end + DAY_MS)
        for tf in tfs[1:]:  # context: from its file, or aggregated from the base bars (complete buckets)
            series[tf] = load_context(a, symbol, tf, long_ago, end + DAY_MS) if tf in a.context else resample(run_base, tf)[0]
        out.train[symbol] = {(symbol, base): _cut(train_base, train_start, train_end)}
        out.train[symbol].update({(symbol, tf): _cut(series[tf], long_ago, train_end) for tf in tfs[1:]})
        out.seed[symbol] = {(symbol, base): _cut(run_base, seed_start, start)}
        out.seed[symbol].update({(symbol, tf): _cut(series[tf], long_ago, start) for tf in tfs[1:]})
        out.replay[symbol] = _cut(run_base, start, end)
        out.streams[symbol] = [_cut(series[tf], start, end) for tf in tfs[1:]] if a.context_stream else []
        for tf in a.pivot_streams.split(",") if a.pivot_streams else ():  # finer bars for the pivot detector only
            fine = load(a.data, a.exchange, symbol, tf, seed_start, end)
            out.seed[symbol][(symbol, tf)] = _cut(fine, seed_start, start)
            out.streams[symbol].append(_cut(fine, start, end))
        out.truth[symbol] = _cut(run_base, seed_start, end + DAY_MS)
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


def _write_atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def save_partial(work: Path, record: dict[str, Any], preds: dict[str, dict[int, int]], eq: dict[int, float]) -> None:
    """The arm's state so far: ``partial.npz`` (as-of times and level-2 kinds per symbol, equity per bar time) and
    ``partial.json`` (counters); written atomically so a killed run leaves the last complete day."""
    arrays: dict[str, np.ndarray] = {"eq_ts": np.fromiter(eq.keys(), np.int64), "eq": np.fromiter(eq.values(), np.float64)}
    for i, got in enumerate(preds.values()):
        arrays[f"ts_{i}"] = np.fromiter(got.keys(), np.int64)
        arrays[f"kind_{i}"] = np.fromiter(got.values(), np.int8)
    record = {**record, "symbols": list(preds)}

    def npz(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]  # numpy's stub types the first keyword as allow_pickle

    _write_atomic(work / "partial.npz", npz)
    _write_atomic(work / "partial.json", lambda tmp: tmp.write_text(json.dumps(record, indent=1, default=str)))


def run_arm(a: argparse.Namespace, data: Data, root: Path, info: CheckpointInfo, live: bool, work: Path) -> dict[str, Any]:
    tfs = a.timeframes.split(",")
    base = tfs[0]
    symbols = list(data.replay)
    manager = CheckpointManager(root)
    predictor = CheckpointPredictor(manager.load(info), info, candles_source(data.replay[symbols[0]]), a.exchange)
    params = predictor.input_spec(symbols[0]).pivot_params
    derive = {base: tfs[1:]} if len(tfs) > 1 and not a.context_stream else {}
    engine = DataEngine(a.exchange, trade_timeframe=None, derive=derive, pivot_params=params)
    engine.warm_up_series({k: v for s in symbols for k, v in data.seed[s].items()})
    predictor.inputs = lambda symbol, t, spec, h: engine.input_at(symbol, t, h, spec)
    orchestrator = Orchestrator(OrchestratorConfig(buy_threshold=a.threshold, sell_threshold=a.threshold))
    strategy = ModelStrategy([predictor], orchestrator, OutputStore(), fraction=1.0 / len(symbols))
    node = TradingNode(strategy, [(s, base) for s in symbols], exchange=a.exchange, data_engine=engine,
                       config=BacktestConfig(fee_rate=a.fee, slippage=a.slippage))  # fmt: skip
    os.environ["PIVOTAL_DATA_DIR"] = str(work / "data")
    from pivotal.config import load_settings

    store = open_store(load_settings())
    history = InferenceHistory(store, flush_every=5000)
    trainer = TrainerOptions(batch_size=a.batch_size, steps=a.steps, alpha=a.alpha, min_samples=a.min_samples,
                             block_ms=200, nice=a.nice, replay=a.replay, replay_ratio=a.replay_ratio,
                             lr=a.lr or None)  # fmt: skip
    pivot_tfs = tuple(a.pivot_timeframes.split(",")) if a.pivot_timeframes else (base,)
    levels = tuple(int(x) for x in a.outcome_levels.split(",") if x)
    config = LiveLearningConfig(enabled=live, pivots=LivePivotConfig(timeframes=pivot_tfs), trainer=trainer, poll_s=0,
                                outcome_levels=levels)  # fmt: skip
    learning = LiveLearning(root, strategy, engine, history, config).attach(node)
    model = learning.model(predictor.name)
    # what the report needs, captured as the run goes (the history is the record; this is its cheap copy)
    preds: dict[str, dict[int, int]] = {s: {} for s in symbols}
    served_model = predictor.model
    on_served = served_model.on_served

    def capture(served: Served) -> None:
        on_served(served)
        out = served.output
        lv2 = [pp for pp in out.pivots if pp.level == 2]
        preds[out.symbol][int(out.timestamp)] = (1 if lv2[0].kind == "H" else -1) if lv2 else 0

    served_model.on_served = capture
    portfolio = node.engine.portfolio
    equity: dict[int, float] = {}
    staleness: list[int] = []
    waited = 0.0
    started = time.perf_counter()
    bars = 0
    queued_at_check = 0
    first = int(data.replay[symbols[0]].ts[0])
    next_save = first + int(a.save_every_days * DAY_MS)
    days_done = 0.0

    def record(done: bool) -> dict[str, Any]:
        stats = learning.stats()[model.name]
        return {
            "arm": "live" if live else "frozen", "done": done, "checkpoint": info.id, "bars": bars,
            "replayed_from": _iso(first), "replayed_through": _iso(int(node.now or first)), "days": days_done,
            "seconds": time.perf_counter() - started, "waited_for_trainer_s": waited, "trades": len(node.trades),
            "stats": {k: v for k, v in stats.items() if k not in ("pivots", "trend_lines")},
            "pivots": stats["pivots"], "trend_lines": stats["trend_lines"], "staleness_ms": staleness,
        }  # fmt: skip

    drain_bars = a.drain_every * len(symbols)
    try:
        for event in HistoricalFeed([c for s in symbols for c in (data.replay[s], *data.streams[s])]).events(None):
            t = event.known_at
            if t >= next_save:
                days_done = (next_save - first) / DAY_MS
                save_partial(work, record(False), preds, equity)
                next_save += int(a.save_every_days * DAY_MS)
            node.on_event(event)
            bar = getattr(event, "bar", None)
            if bar is None or bar.timeframe != base:
                continue
            equity[int(t)] = portfolio.equity()
            bars += 1
            if live and bars % drain_bars == 0 and model.queue is not None:
                # pacing: the samples queued before the previous check must be trained (full: all of them) before
                # the replay goes on, so the serving model is at most 2 x drain-every bars behind its samples
                t0 = time.perf_counter()
                queued = model.counts.pivot_samples + model.counts.trend_samples
                allowed = 0 if a.pacing == "full" else queued - queued_at_check
                queued_at_check = queued
                deadline = time.monotonic() + a.drain_timeout_s
                while time.monotonic() < deadline:
                    c = model.queue.counts()
                    if c["new"] + c["pending"] <= allowed:
                        break
                    time.sleep(0.05)
                waited += time.perf_counter() - t0
                learning.check_swaps()
                staleness += list(staleness_of(root, model.name, node.now).staleness_ms.values())
        result = node.finish()
        learning.flush()
        days_done = (int(data.replay[symbols[0]].ts[-1]) + timeframe_ms(base) - first) / DAY_MS
        final = record(True)
        final["metrics"] = {k: float(v) for k, v in result.metrics.items()}
    finally:
        learning.close()
    events = PromotionLog(root, predictor.name).events()
    final["promotions"] = sum(e.action == "promote" for e in events) - 1
    final["refusals"] = sum(e.action == "refuse" for e in events)
    final["seconds"] = time.perf_counter() - started
    # the inference history agrees with the captured copy (same as-of times, same kinds)
    for p in history.query(model_name=predictor.name):
        lv2 = [pp for pp in p.output.pivots if pp.level == 2]
        kind = (1 if lv2[0].kind == "H" else -1) if lv2 else 0
        if preds[p.symbol].get(p.as_of) != kind:
            raise AssertionError(f"{p.symbol} {p.as_of}: history {kind} != captured {preds[p.symbol].get(p.as_of)}")
    store.close()
    save_partial(work, final, preds, equity)
    return final


def pivot_hits(outputs: dict[int, int], truth: Candles, params: Any) -> dict[int, float]:
    labels = build_labels(truth, params)
    tf = timeframe_ms(truth.timeframe)
    close_ts = truth.ts + tf
    out: dict[int, float] = {}
    for as_of, kind in outputs.items():
        i = int(np.searchsorted(close_ts, as_of, side="right")) - 1
        if kind == 0 or i < 0 or close_ts[i] != as_of or labels.known_at[i, 1] < 0:
            continue
        actual = 1 if labels.kind[i, 1] > 0 else -1
        out[as_of] = float(kind == actual)
    return out


def paired(d: np.ndarray, a: argparse.Namespace) -> dict[str, float]:
    est = bootstrap(lambda idx: float(d[idx].mean()), len(d), n_boot=a.n_boot, block=a.block, seed=a.seed)
    return {"mean_diff": est.value, "ci_low": est.low, "ci_high": est.high, "n": est.n, "p": est.p_value}


def load_partial(work: Path) -> tuple[dict[str, Any], dict[str, dict[int, int]], dict[int, float]]:
    record = json.loads((work / "partial.json").read_text())
    z = np.load(work / "partial.npz")
    preds = {s: dict(zip(z[f"ts_{i}"].tolist(), z[f"kind_{i}"].tolist(), strict=True)) for i, s in enumerate(record["symbols"])}
    return record, preds, dict(zip(z["eq_ts"].tolist(), z["eq"].tolist(), strict=True))


def _by_week(
    hits: dict[str, dict[str, dict[int, float]]], eq_ts: list[int], eq: dict[str, np.ndarray], cut: int
) -> list[dict[str, Any]]:
    """Per 7-day block from the first compared bar: each arm's next-L2-pivot accuracy per symbol and net return
    (descriptive, not tested: whether live training improves as it adapts, or drifts)."""
    if not eq_ts:
        return []
    first, week = int(eq_ts[0]), 7 * DAY_MS
    ts = np.asarray(eq_ts, np.int64)
    out = []
    for lo in range(first, cut + 1, week):
        hi = lo + week
        row: dict[str, Any] = {"from": _iso(lo), "to": _iso(min(hi, cut + 1) - 60_000)}
        for symbol, per_arm in hits.items():
            common = [t for t in per_arm["frozen"] if lo <= t < hi and t <= cut and t in per_arm["live"]]
            row[symbol] = {"n": len(common)} | {
                arm: float(np.mean([per_arm[arm][t] for t in common])) if common else None for arm in ARMS
            }
        idx = np.flatnonzero((ts >= lo) & (ts < hi))
        if len(idx) > 1:
            i0 = max(int(idx[0]) - 1, 0)  # the equity at the previous block's last bar
            row["net_return"] = {arm: float(e[idx[-1]] / e[i0] - 1) for arm, e in eq.items()}
        out.append(row)
    return out


def report(a: argparse.Namespace, data: Data, work: Path, started: float) -> dict[str, Any]:
    """Paired tests over what both arms replayed (the common prefix when a run was cut short)."""
    with open(work / "start" / "params.pkl", "rb") as f:
        params = pickle.load(f)
    parts = {n: load_partial(work / n) for n in ARMS if (work / n / "partial.json").exists()}
    if len(parts) < 2:
        raise SystemExit(f"{work}: partial results of both arms are needed (have {sorted(parts)})")
    eq_common = sorted(set(parts["frozen"][2]) & set(parts["live"][2]))
    cut = eq_common[-1] if eq_common else 0
    tests: dict[str, dict[str, float]] = {}
    accuracy: dict[str, dict[str, float]] = {}
    hits_by_symbol: dict[str, dict[str, dict[int, float]]] = {}
    for symbol in data.replay:
        hits = {n: pivot_hits(p[1][symbol], data.truth[symbol], params) for n, p in parts.items()}
        hits_by_symbol[symbol] = hits
        common = sorted(t for t in set(hits["frozen"]) & set(hits["live"]) if t <= cut)
        fz = np.array([hits["frozen"][t] for t in common])
        lv = np.array([hits["live"][t] for t in common])
        accuracy[symbol] = {"frozen": float(fz.mean()), "live": float(lv.mean()), "n": len(common)}
        tests[f"next_L2_pivot_accuracy {symbol}"] = paired(lv - fz, a)
    eq = {n: np.array([p[2][t] for t in eq_common]) for n, p in parts.items()}
    rets = {n: np.diff(e) / e[:-1] for n, e in eq.items()}
    weeks = _by_week(hits_by_symbol, eq_common, eq, cut)
    tests["after_fee_return_per_bar"] = paired(rets["live"] - rets["frozen"], a)
    adjusted = holm_adjust(np.array([t["p"] for t in tests.values()]))
    for t, q in zip(tests.values(), adjusted, strict=True):
        t["p_holm"] = float(q)
    arms = {n: p[0] for n, p in parts.items()}
    stale = arms["live"].get("staleness_ms") or []
    return {
        "command": " ".join(["scripts/frozen_vs_live.py", *a.argv]),
        "complete": all(r["done"] for r in arms.values()),
        "compared_through": _iso(cut) if cut else None,
        "days_compared": (cut - int(eq_common[0]) + timeframe_ms(a.timeframes.split(",")[0])) / DAY_MS if eq_common else 0,
        "data": {
            s: {"replay_first_open": _iso(int(c.ts[0])), "replay_last_open": _iso(int(c.ts[-1])), "bars": len(c)}
            for s, c in data.replay.items()
        },
        "accuracy": accuracy,
        "pnl": {n: {"net_return_mark_to_market": float(e[-1] / e[0] - 1) if len(e) else None} for n, e in eq.items()},
        "tests": tests,
        "by_week": weeks,
        "arms": {n: {k: v for k, v in r.items() if k != "staleness_ms"} for n, r in arms.items()},
        "live_staleness_ms": {
            "checks": len(stale),
            "p50": float(np.percentile(stale, 50)) if stale else None,
            "p95": float(np.percentile(stale, 95)) if stale else None,
        },
        "total_seconds": time.perf_counter() - started,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--data", type=Path, default=Path(os.environ.get("PIVOTAL_SHARED_DATA", "/work/shared/data")))
    p.add_argument("--exchange", default="binance")
    p.add_argument("--symbols", default="BTC/USDT,ETH/USDT")
    p.add_argument("--start", default="2025-05-30", help="first replayed day (UTC)")
    p.add_argument("--days", type=float, default=7, help="replayed days (the issue asks for >= 90)")
    p.add_argument("--timeframes", default="1m,1h", help="model windows; the first is traded (the issue: 1m,1h,1d)")
    p.add_argument("--window", type=int, default=100)
    p.add_argument("--train-start", default="", help="first day the starting checkpoint learns (default: just before the seed)")
    p.add_argument("--train-days", type=float, default=8, help="days the starting checkpoint learns")
    p.add_argument("--train-steps", type=int, default=300)
    p.add_argument("--seed-days", type=float, default=2, help="base-timeframe days the engine starts with")
    p.add_argument(
        "--context-file",
        action="append",
        default=[],
        metavar="TF=FILE_TF:PATH",
        help="a context timeframe's bars from a file under --data ({stem}: BTCUSDT), aggregated from FILE_TF",
    )
    p.add_argument(
        "--context-stream",
        action="store_true",
        help="feed the context bars as their own events (default: the engine derives them from the base)",
    )
    p.add_argument("--pivot-timeframes", default="", help="timeframes of the live pivot samples (default: the base)")
    p.add_argument(
        "--pivot-streams",
        default="",
        help="finer timeframes replayed for the engine's pivot detectors only (not model windows), e.g. 1s",
    )
    p.add_argument(
        "--outcome-levels",
        default="2",
        help="pivot levels whose resolved outcomes the live arm also trains on ('' = none: the reference's live samples only)",
    )
    p.add_argument("--replay", type=int, default=TrainerOptions.replay, help="the trainer's replay reservoir (0: off)")
    p.add_argument("--replay-ratio", type=float, default=TrainerOptions.replay_ratio, help="replayed samples per fresh one")
    p.add_argument("--lr", type=float, default=TrainerOptions.lr, help="the trainer's fine-tuning rate (0: the checkpoint's)")
    p.add_argument("--fee", type=float, default=0.001)
    p.add_argument("--slippage", type=float, default=0.0005)
    p.add_argument("--threshold", type=float, default=0.2, help="orchestrator buy/sell threshold")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--min-samples", type=int, default=20)
    p.add_argument("--nice", type=int, default=10, help="the trainer's niceness increment over the replay's")
    p.add_argument("--drain-every", type=int, default=60, help="bars between waits for the trainer")
    p.add_argument(
        "--pacing",
        choices=("full", "pipelined"),
        default="full",
        help="full: each wait drains the queue; pipelined: the samples of the previous interval only",
    )
    p.add_argument("--drain-timeout-s", type=float, default=120.0)
    p.add_argument("--save-every-days", type=float, default=1.0, help="partial results every this many replayed days")
    p.add_argument("--n-boot", type=int, default=2000)
    p.add_argument("--block", type=int, default=60, help="bootstrap block length in bars")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, default=None)
    p.add_argument("--out", type=Path, default=None, help="JSON with every number")
    p.add_argument("--arm", choices=ARMS, default=None, help="child mode: replay one arm (the parent runs both at once)")
    p.add_argument("--report-only", action="store_true", help="the report from the partial results in --work")
    a = p.parse_args(argv)
    a.argv = list(argv if argv is not None else sys.argv[1:])
    a.context = {}
    for item in a.context_file:
        tf, _, rest = item.partition("=")
        file_tf, _, path = rest.partition(":")
        if not (tf and file_tf and path):
            raise SystemExit(f"--context-file {item!r}: expected TF=FILE_TF:PATH, e.g. 1d=1h:binance/{{stem}}-1h.parquet")
        a.context[tf] = (file_tf, path)
    import torch

    torch.set_num_threads(1)
    work = a.work or Path(tempfile.mkdtemp(prefix="frozen-vs-live-"))
    t0 = time.perf_counter()
    data = prepare_data(a)
    root0 = work / "start"
    if a.arm is not None:
        with open(root0 / "info.pkl", "rb") as f:
            info = pickle.load(f)
        result = run_arm(a, data, work / a.arm / "models", info, a.arm == "live", work / a.arm)
        print(f"{a.arm}: {result['seconds']:.0f} s", file=sys.stderr, flush=True)
        return 0
    if not a.report_only:
        info = train_start_checkpoint(a, data, root0)
        first = next(iter(data.replay))
        predictor = CheckpointPredictor(CheckpointManager(root0).load(info), info, candles_source(data.replay[first]), a.exchange)
        params = predictor.input_spec(first).pivot_params
        with open(root0 / "info.pkl", "wb") as f:
            pickle.dump(info, f)
        with open(root0 / "params.pkl", "wb") as f:
            pickle.dump(params, f)
        print(f"starting checkpoint {info.id} trained in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        children = {}
        for name in ARMS:
            shutil.copytree(root0, work / name / "models", ignore=shutil.ignore_patterns("*.pkl"))
            log = open(work / f"{name}.log", "ab")  # noqa: SIM115 - closed below
            children[name] = (subprocess.Popen([sys.executable, __file__, *a.argv, "--arm", name, "--work", str(work)],
                                               stdout=log, stderr=subprocess.STDOUT), log)  # fmt: skip
        for name, (proc, log) in children.items():
            code = proc.wait()
            log.close()
            print(f"{name} arm exited {code}", file=sys.stderr, flush=True)
    summary = report(a, data, work, t0)
    text = json.dumps(summary, indent=2, default=str)
    if a.out is not None:
        a.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
