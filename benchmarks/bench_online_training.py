"""Online training out of the serving process, on CPU, with real Binance 1m data: staleness, inference under
training, training throughput.

- **Staleness** (the issue's number): wall time from a pivot confirming (its samples are put on the queue) until a
  model trained on those samples serves (the serving process has hot-swapped in a promoted version whose lineage
  contains them), p50/p95, for 1 and 10 streams. The trainer is a separate process (``python -m
  pivotal.training.online``) on the embedded SQLite queue; serving is this process (``ServingModel`` +
  ``ServingWatcher``). Samples: real Binance 1m bars (BTC/USDT, ETH/USDT, SOL/USDT; the data has no more 1m
  symbols, so 10 and 50 streams are these 3 symbols over distinct ``--bars`` blocks of their 2025 file), one 60-bar
  1m window, targets from
  ``training.labels``; each level-2 pivot confirmation enqueues the samples whose label it settles (at most 8).
  Replay is compressed in time: every stream confirms one pivot per ``--event-s`` seconds (the real rate of 1m L2
  pivots is a few per hour per symbol, far lower). The gate runs at ``--alpha`` (default 1.0: promote when the mean
  out-of-sample loss is lower; a refused version delays its samples until a later version is promoted).
- **Inference p99** of single predictions in the serving process, trainer idle vs trainer running (ratio; goal ≤ 1.5).
  The trainer runs at ``--trainer-nice`` with one torch thread; ``--pin`` pins serving to CPU 0 and the trainer to
  CPU 1 (``os.sched_setaffinity``).
- **Training samples/s** of the trainer (samples x gradient steps per second of gradient-step time, from its metrics
  feed; the gate's and the publish's time are not in it), and
  the ratio to the same model's ``train_step`` in this process on the same batches (reference measured in this run).

    .venv/bin/python benchmarks/bench_online_training.py [--seconds 25] [--event-s 2.0] [--streams 1,10,50]
    .venv/bin/python benchmarks/bench_online_training.py --quick   # 1, 10 and 50 streams, 20 s each
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from pivotal.data.candles import Candles  # noqa: E402
from pivotal.features.input_spec import InputSpec, WindowSpec  # noqa: E402
from pivotal.models.cnn import CNNModel  # noqa: E402
from pivotal.models.protocol import CNNConfig  # noqa: E402
from pivotal.models.serving import ServingModel, prefer_serving_latency  # noqa: E402
from pivotal.services.online import ServingWatcher, serving_model  # noqa: E402
from pivotal.structure.types import PivotParams  # noqa: E402
from pivotal.training.checkpoints import CheckpointManager  # noqa: E402
from pivotal.training.dataset import SampleSet, build_samples, input_shape, prepare  # noqa: E402
from pivotal.training.queue import QueuedSample, samples_from_set, to_batch  # noqa: E402
from pivotal.training.queue_embedded import SqliteSampleQueue  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "binance"
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
SPEC = InputSpec((WindowSpec("1m", 60),), min_bars=60, pivot_params=PivotParams(levels=2), context_levels=2)
LEVEL = 2
PER_EVENT = 8
NAME = "online-bench"


_FRAMES: dict[str, pd.DataFrame] = {}


def stream_events(stream: int, bars: int) -> tuple[str, list[list[QueuedSample]]]:
    """Stream ``stream``: a symbol and a block of ``bars`` rows of its 2025 file (distinct per stream); its pivot
    confirmations in time order, each the samples whose level-2 label it settles (newest ``PER_EVENT``)."""
    file = SYMBOLS[stream % len(SYMBOLS)]
    block = stream // len(SYMBOLS)
    if file not in _FRAMES:
        _FRAMES[file] = pd.read_parquet(DATA / f"{file}-1m-2025.parquet")
    frame = _FRAMES[file].iloc[block * bars : (block + 1) * bars]
    if len(frame) < bars:
        raise SystemExit(f"{file}: no block {block} of {bars} bars in 2025; use fewer streams or --bars")
    ts_col = "ts" if "ts" in frame.columns else "timestamp"
    symbol = f"{file[:-4]}/USDT"
    label = f"{symbol}@{pd.Timestamp(int(frame[ts_col].iloc[0]), unit='ms'):%Y-%m-%d}#{block}"
    candles = Candles.from_frame(frame, "binance", symbol, "1m")
    samples: SampleSet = build_samples(prepare({(symbol, "1m"): candles}, SPEC), symbol, SPEC, levels=LEVEL)
    close_ts = candles.ts + 60_000
    known = samples.known_at[:, LEVEL - 1]
    events = []
    for bar in np.unique(known[known >= 0]):
        rows = np.flatnonzero(known == bar)[-PER_EVENT:]
        events.append(samples_from_set(samples, rows.tolist(), label, "1m", [int(close_ts[bar])] * len(rows)))
    return label, events


def build_base(root: Path) -> None:
    config = CNNConfig(shape=input_shape(SPEC, LEVEL), conv_channels=(16, 32), gru_hidden=32, trunk_hidden=64)
    model = CNNModel(config, name=NAME)
    CheckpointManager(root).save(model, "val_loss", 1.0, False, {"exchange": "binance", "symbol": "BTC/USDT", "end": 0})


def p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


class Prober:
    """Single-input predictions at a steady rate in a thread of the serving process; wall latencies in ms."""

    def __init__(self, serving: ServingModel, encoded: tuple[np.ndarray, np.ndarray], hz: float = 50.0) -> None:
        self.serving, self.encoded, self.period = serving, encoded, 1.0 / hz
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            self.serving.predict(self.encoded)
            self.latencies.append((time.perf_counter() - started) * 1000)
            time.sleep(max(0.0, self.period - (time.perf_counter() - started)))

    def start(self) -> Prober:
        self._thread.start()
        return self

    def stop(self) -> list[float]:
        self._stop.set()
        self._thread.join()
        return self.latencies


def run(
    n_streams: int,
    seconds: float,
    event_s: float,
    alpha: float,
    bars: int,
    tmp: Path,
    poll_s: float,
    *,
    idle_s: float = 8.0,
    trainer_nice: int = 10,
    pin: bool = False,
    warm_s: float = 300.0,
) -> dict[str, object]:
    root = tmp / f"models-{n_streams}"
    build_base(root)
    streams = [stream_events(i, bars) for i in range(n_streams)]
    queue_path = tmp / f"queue-{n_streams}.sqlite"
    queue = SqliteSampleQueue(queue_path)
    serving = serving_model(root, NAME)
    enqueued: dict[str, float] = {}
    served_at: dict[str, float] = {}
    manager = CheckpointManager(root, keep=1_000_000)
    swaps: list[tuple[str, float]] = []

    def on_swap(_old: str, new: str) -> None:
        # the measurement's bookkeeping (which samples a version contains) is done after the run: walking the
        # lineage here would load the measured serving process with work a server does not do
        swaps.append((new, time.perf_counter()))

    serving.on_swap = on_swap
    first = streams[0][1][0][0]
    encoded = (first.arrays["windows"].astype(np.float32), first.arrays["context"])
    watcher = ServingWatcher(root, NAME, serving, poll_s=poll_s).start()

    idle = Prober(serving, encoded).start()
    time.sleep(idle_s)
    idle_lat = idle.stop()

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    trainer = subprocess.Popen(
        [sys.executable, "-m", "pivotal.training.online", "--root", str(root), "--name", NAME, "--queue", f"sqlite:{queue_path}",
         "--batch-size", "32", "--steps", "2", "--block-ms", "200", "--alpha", str(alpha), "--min-samples", "8",
         "--keep", "1000000", "--consumer", "bench", "--nice", str(trainer_nice), "--threads", "1",
         *(["--cpus", "1"] if pin else [])],
        env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    # the trainer process imports torch and loads the checkpoint (long on a busy machine): not part of the staleness.
    # It is ready once it has published a version of a warm-up batch (keys outside the measured samples).
    feed = root / ".online" / NAME / "metrics.jsonl"
    warm = [QueuedSample(f"warmup|{s.key}", s.symbol, s.timeframe, s.as_of, s.known_at, s.arrays) for s in streams[0][1][0]]
    queue.put(warm)
    deadline = time.perf_counter() + warm_s
    while not feed.exists() and time.perf_counter() < deadline:
        time.sleep(0.2)
    ready_s = warm_s - (deadline - time.perf_counter())
    busy = Prober(serving, encoded).start()
    started = time.perf_counter()
    cursors = [0] * n_streams
    next_at = [started + event_s * i / n_streams for i in range(n_streams)]  # staggered streams
    while time.perf_counter() - started < seconds:
        now = time.perf_counter()
        for i, (_, events) in enumerate(streams):
            if now >= next_at[i] and cursors[i] < len(events):
                batch = events[cursors[i]]
                queue.put(batch)
                t = time.perf_counter()
                for s in batch:
                    enqueued.setdefault(s.key, t)
                cursors[i] += 1
                next_at[i] += event_s
        time.sleep(0.01)
    produced_until = time.perf_counter()
    time.sleep(min(10.0, seconds / 2))  # drain: the last samples get their chance to be served
    busy_lat = busy.stop()
    ended = time.perf_counter()
    trainer.terminate()  # SIGTERM: the step in progress finishes (long on a busy machine), then it is killed
    try:
        trainer.wait(120)
    except subprocess.TimeoutExpired:
        trainer.kill()
        trainer.wait()
    watcher.stop()
    queue.close()
    infos = {i.id: i for i in manager.list(NAME)}
    for version, at in swaps:  # a sample serves from the first swap to a version whose lineage contains it
        node = infos.get(version)
        while node is not None and node.extra.get("online"):
            for key in node.extra["sample_keys"]:
                served_at.setdefault(key, at)
            node = infos.get(node.extra["parent"])

    staleness = [served_at[k] - t for k, t in enqueued.items() if k in served_at]
    never = sum(k not in served_at for k in enqueued)
    # samples never served by the end are censored: their staleness is at least (end - enqueue)
    censored = staleness + [ended - t for k, t in enqueued.items() if k not in served_at]
    metrics = [json.loads(line) for line in feed.read_text().splitlines() if line] if feed.exists() else []
    metrics = [m for m in metrics if not any(k.startswith("warmup|") for k in _keys(root, m.get("version")))]
    trained = sum(m["trained"] for m in metrics)
    train_s = sum(m["train_s"] for m in metrics)
    gates = [m for m in metrics if m["gate"] is not None]
    return {
        "streams": [label for label, _ in streams],
        "trainer_ready_s": ready_s,
        "samples_enqueued": len(enqueued),
        "samples_served": len(staleness),
        "samples_not_served_by_end": never,
        "produce_s": produced_until - started,
        "staleness_p50_s": p(staleness, 50),
        "staleness_p95_s": p(staleness, 95),
        "staleness_p95_s_with_censored": p(censored, 95),
        "swaps": len(swaps),
        "versions_published": len(metrics),
        "gate_decisions": len(gates),
        "promoted": sum(bool(m["promoted"]) for m in gates),
        "train_samples_per_s": trained * 2 / train_s if train_s else float("nan"),
        "mean_batch": trained / max(len(metrics), 1),
        "idle_p99_ms": p(idle_lat, 99),
        "busy_p99_ms": p(busy_lat, 99),
        "inference_p99_ratio": p(busy_lat, 99) / p(idle_lat, 99),
        "idle_n": len(idle_lat),
        "busy_n": len(busy_lat),
        "_root": str(root),
        "_batch": streams[0][1][:4],
    }


def _keys(root: Path, version: str | None) -> list[str]:
    if version is None:
        return []
    infos = {i.id: i for i in CheckpointManager(root, keep=1_000_000).list(NAME)}
    info = infos.get(version)
    return list(info.extra.get("sample_keys", [])) if info is not None else []


def reference_train_rate(root: Path, samples: list[QueuedSample], size: int) -> float:
    """Samples/s of the same model's ``train_step`` on batches of ``size`` (the trainer's mean batch) in this process,
    nothing else running (the reference)."""
    model = CheckpointManager(root).load(CheckpointManager(root).list(NAME)[-1])
    batch = to_batch((samples * size)[: max(size, 1)])
    model.train_step(batch)
    started, steps = time.perf_counter(), 20
    for _ in range(steps):
        model.train_step(batch)
    return len(batch["action"]) * steps / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=25.0, help="replay length per run")
    parser.add_argument("--event-s", type=float, default=2.0, help="seconds between pivot confirmations per stream")
    parser.add_argument("--alpha", type=float, default=1.0, help="promotion gate level")
    parser.add_argument("--bars", type=int, default=1500, help="1m bars per stream")
    parser.add_argument("--poll-s", type=float, default=0.1, help="serving watcher poll interval")
    parser.add_argument("--streams", default="1,10,50", help="stream counts to run")
    parser.add_argument("--trainer-nice", type=int, default=10, help="the trainer's niceness increment")
    parser.add_argument("--pin", action="store_true", help="serving on CPU 0, the trainer on CPU 1")
    parser.add_argument("--quick", action="store_true", help="20 s per stream count, 4 s idle probe")
    parser.add_argument("--warm-s", type=float, default=300.0, help="longest wait for the trainer's first (warm-up) version")
    parser.add_argument(
        "--switch-interval-ms",
        type=float,
        default=5.0,
        help="the serving process's thread switch interval (CPython's default, which pivotal run/serve keep: 5)",
    )
    args = parser.parse_args()
    prefer_serving_latency(args.switch_interval_ms / 1000)
    if args.quick:
        args.seconds = 20.0
    if args.pin:
        os.sched_setaffinity(0, {0})
    torch.set_num_threads(1)
    pinned = ", pinned: serving CPU 0, trainer CPU 1" if args.pin else ""
    print(f"CPU, torch threads 1 (serving, thread switch interval {args.switch_interval_ms:g} ms) + 1 (trainer, "
          f"nice +{args.trainer_nice}{pinned}); "
          f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}; gate alpha {args.alpha}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for n in (int(x) for x in args.streams.split(",")):
            print(f"running {n} stream(s)", flush=True)
            results[n] = run(n, args.seconds, args.event_s, args.alpha, args.bars, Path(tmp), args.poll_s,
                             idle_s=4.0 if args.quick else 8.0, trainer_nice=args.trainer_nice, pin=args.pin,
                             warm_s=args.warm_s)  # fmt: skip
        last = results[max(results)]
        flat = [s for events in last["_batch"] for s in events]  # type: ignore[attr-defined]
        refs = {
            n: reference_train_rate(Path(str(last["_root"])), flat, round(float(r["mean_batch"])))  # type: ignore[arg-type]
            for n, r in results.items()
            if round(float(r["mean_batch"])) > 0  # type: ignore[arg-type]
        }
        for n, r in results.items():
            r.pop("_root", None)
            r.pop("_batch", None)
            print(f"\n== {n} stream(s): {', '.join(r['streams'])}")  # type: ignore[arg-type]
            for key, value in r.items():
                if key != "streams":
                    print(f"  {key:28s} {value:.3f}" if isinstance(value, float) else f"  {key:28s} {value}")
        for n, ref in refs.items():
            rate = float(results[n]["train_samples_per_s"])  # type: ignore[arg-type]
            print(f"{n} stream(s): reference train_step in-process at batch {round(float(results[n]['mean_batch']))}: "  # type: ignore[arg-type]
                  f"{ref:.1f} samples/s; trainer/reference {rate / ref:.2f}")  # fmt: skip
        ten = results.get(10, results[max(results)])
        served = int(ten["samples_served"]) / max(int(ten["samples_enqueued"]), 1)  # type: ignore[call-overload]
        goal = "met" if float(ten["staleness_p95_s_with_censored"]) <= 60 and served >= 0.95 else "NOT met"  # type: ignore[arg-type]
        for n in results.keys() - refs.keys():
            print(f"{n} stream(s): the trainer published no version in the run (no train rate)")
        for n, r in results.items():
            print(f"{n} stream(s): staleness p50 {float(r['staleness_p50_s']):.1f} s, p95 {float(r['staleness_p95_s']):.1f} s "  # type: ignore[arg-type]
                  f"(with censored {float(r['staleness_p95_s_with_censored']):.1f} s); inference p99 running/idle "  # type: ignore[arg-type]
                  f"{float(r['inference_p99_ratio']):.2f}")  # type: ignore[arg-type]  # fmt: skip
        print(f"goal staleness p95 <= 60 s (10 streams): {goal}; goal inference p99 running/idle <= 1.5")


if __name__ == "__main__":
    main()
