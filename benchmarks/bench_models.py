"""Model benchmarks on CPU: single-input inference latency (p50/p99) and training throughput (samples/s).

Inputs are real encoded samples (binance BTC/USDT 1h with 4h/1d aggregated from it, three windows). Every latency is
also printed as a ratio to a reference measured in the same run: one forward pass of a 2-layer MLP over the same
flattened input (the bare cost of a torch call on this machine), so numbers from a busy machine stay comparable.

    .venv/bin/python benchmarks/bench_models.py [--quick] [--threads 1]
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from pivotal.data.candles import Candles  # noqa: E402
from pivotal.data.resample import resample  # noqa: E402
from pivotal.features.input_spec import InputSpec, WindowSpec  # noqa: E402
from pivotal.models.cnn import CNNModel  # noqa: E402
from pivotal.models.protocol import CNN_PRESETS, CNNConfig, with_shape  # noqa: E402
from pivotal.models.supervised import SupervisedModel  # noqa: E402
from pivotal.models.transformer import TransformerModel, preset_config  # noqa: E402
from pivotal.structure.types import PivotParams  # noqa: E402
from pivotal.training.dataset import SampleSet, build_samples, input_shape, prepare  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "binance" / "BTCUSDT-1h-2018-2026.parquet"


def real_samples(window: int, bars: int) -> tuple[SampleSet, InputSpec]:
    frame = pd.read_parquet(DATA).iloc[-bars:]
    base = Candles.from_frame(frame, "binance", "BTC/USDT", "1h")
    spec = InputSpec(tuple(WindowSpec(tf, window) for tf in ("1h", "4h", "1d")), pivot_params=PivotParams(levels=5))
    candles = {("BTC/USDT", "1h"): base, ("BTC/USDT", "4h"): resample(base, "4h")[0], ("BTC/USDT", "1d"): resample(base, "1d")[0]}
    return build_samples(prepare(candles, spec), "BTC/USDT", spec, levels=3, stride=7), spec


def latency_ms(fn: Callable[[], object], repeats: int) -> tuple[float, float, float, float]:
    """Wall p50/p99 and CPU-time p50/p99 (this thread only: with torch on 1 thread it is the call's own compute,
    free of the waiting that a busy shared machine adds to wall time)."""
    for _ in range(max(3, repeats // 10)):
        fn()
    wall, cpu = np.empty(repeats), np.empty(repeats)
    for i in range(repeats):
        c0, w0 = time.thread_time(), time.perf_counter()
        fn()
        wall[i], cpu[i] = (time.perf_counter() - w0) * 1000, (time.thread_time() - c0) * 1000
    p = np.percentile
    return float(p(wall, 50)), float(p(wall, 99)), float(p(cpu, 50)), float(p(cpu, 99))


def reference_mlp(samples: SampleSet) -> nn.Module:
    flat = samples.windows[0].size + samples.context.shape[1]
    return nn.Sequential(nn.Linear(flat, 64), nn.ReLU(), nn.Linear(64, 3)).eval()


def bench_inference(models: dict[str, SupervisedModel], samples: SampleSet, repeats: int) -> None:
    x = (samples.windows[-1].astype(np.float32), samples.context[-1])
    mlp = reference_mlp(samples)
    flat = torch.from_numpy(np.concatenate([x[0].ravel(), x[1]]))[None]
    with torch.inference_mode():
        ref = latency_ms(lambda: mlp(flat), repeats)
    print(f"\nsingle-input predict() latency in ms, CPU, torch threads={torch.get_num_threads()}, {repeats} calls")
    head = f"{'model':<22}{'params':>12}{'wall p50':>9}{'wall p99':>9}{'cpu p50':>9}{'cpu p99':>9}{'cpu50/ref':>10}"
    print(head + "  goal (cnn default: p99 <= 5 ms)")
    print(f"{'reference MLP':<22}{'':>12}" + "".join(f"{v:>9.3f}" for v in ref) + f"{1.0:>10.1f}")
    for name, model in models.items():
        res = latency_ms(functools.partial(model.predict, x), repeats)
        goal = f"wall {'met' if res[1] <= 5 else 'missed'}, cpu {'met' if res[3] <= 5 else 'missed'}" if "default" in name else ""
        row = f"{name:<22}{model.parameter_count():>12,}" + "".join(f"{v:>9.3f}" for v in res)
        print(row + f"{res[2] / ref[2]:>10.1f}  {goal}")


def bench_training(models: dict[str, SupervisedModel], samples: SampleSet, batch: int, steps: int) -> None:
    rows = np.arange(min(len(samples), batch))
    data = samples.batch(rows)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        print(f"\ntraining throughput, CPU, torch threads={threads}, batch {len(rows)}, {steps} steps")
        print(f"{'model':<22}{'samples/s':>11}{'ms/step':>9}{'cpu ms/step':>13}")
        for name, model in models.items():
            model.train_step(data)
            start, cpu0 = time.perf_counter(), time.process_time()
            for _ in range(steps):
                model.train_step(data)
            per_step = (time.perf_counter() - start) / steps
            cpu_step = (time.process_time() - cpu0) / steps
            print(f"{name:<22}{len(rows) / per_step:>11.1f}{per_step * 1000:>9.1f}{cpu_step * 1000:>13.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small run: fewer calls, steps and bars")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the latency part")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    window = 300
    samples, spec = real_samples(window, bars=4000 if args.quick else 8000)
    shape = input_shape(spec, 3)
    print(f"real samples: {len(samples)} (binance BTC/USDT 1h + 4h/1d aggregated), input {shape}")
    models: dict[str, SupervisedModel] = {"cnn default (small)": CNNModel(CNNConfig(shape=shape))}
    models["cnn medium"] = CNNModel(with_shape(CNN_PRESETS["medium"], shape))
    presets = ["5m"] if args.quick else ["5m", "8m", "12m"]
    for preset in presets:
        models[f"transformer {preset}"] = TransformerModel(preset_config(preset, shape))
    bench_inference(models, samples, repeats=100 if args.quick else 500)
    train_models = {k: v for k, v in models.items() if k.startswith("cnn") or k == "transformer 5m"}
    bench_training(train_models, samples, batch=64, steps=3 if args.quick else 10)


if __name__ == "__main__":
    main()
