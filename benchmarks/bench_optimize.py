"""Optimisation benchmark (run: .venv/bin/python benchmarks/bench_optimize.py [--quick]).

What the optimiser layer costs on top of the LS3 sweep, on real data (Binance BTCUSDT 1h 2018-2026, 73k bars), each
figure with a reference measured in the same run:

1. random search, 1,000 points, through ``RandomSearch`` with its SQLite study records — reference: the same 1,000
   points in one raw ``evaluate_many`` call (the optimiser's overhead ratio); goal <= 3 s (source: 50 s per market);
2. Bayesian search (TPE), 200 trials with SQLite storage — reference: random search with the same storage and
   budget (the price of the model) and the source's estimate (10 s per market);
3. a walk-forward random study (90/7/30 days, 1,000 points per train window) — reference: the same number of
   evaluations as one flat random search;
4. local process pool (2 workers) vs in-process, random search 4,000 points on a fresh market (episode caches cold);
5. the full 201,600-point grid through ``GridSearch`` with chunk records (``--quick``: skipped, see bench_backtest).

Run it when the machine is quiet: it shares 2 cores with other engineers, and figures under load are pessimistic.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import optuna
import pyarrow.parquet as pq

from pivotal.config import Settings
from pivotal.data.candles import Candles
from pivotal.optimize.bayesian import BayesianSearch
from pivotal.optimize.grid import GridSearch
from pivotal.optimize.ls3 import LS3Objective
from pivotal.optimize.objective import Scorer, Window
from pivotal.optimize.optimizer import Optimizer, RunContext
from pivotal.optimize.parallel import LocalRunner, Runner
from pivotal.optimize.random_search import RandomSearch, sample_indices
from pivotal.optimize.study import TrialLog, open_storage
from pivotal.optimize.walkforward import walk_forward
from pivotal.strategies.ls3.sweep import evaluate_many
from pivotal.validation.walkforward import WalkForwardSpec, holding_end, split

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance" / "BTCUSDT-1h-2018-2026.parquet"
SOURCE_RANDOM_S, SOURCE_BAYES_S = 50.0, 10.0
ROWS: list[tuple[str, str, str]] = []


T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def row(name: str, value: str, reference: str) -> None:
    ROWS.append((name, value, reference))
    print(f"  {name}: {value} | {reference}", flush=True)


def fresh_objective(candles: Candles) -> LS3Objective:
    return LS3Objective.from_candles(candles)


def search(objective: LS3Objective, optimizer: Optimizer, storage: optuna.storages.BaseStorage, name: str, runner: Runner):
    context = RunContext(TrialLog(storage, name), runner)
    return optimizer.optimize(objective, Window(0, len(objective.timestamps)), Scorer(min_trades=30), context)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-optimize-") as tmp:
        run(Path(tmp))


def run(tmp: Path) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller budgets; skips the full grid")
    quick = parser.parse_args().quick
    candles = Candles.from_arrow(pq.read_table(DATA), "binance", "BTC/USDT", "1h")
    print(f"data: {DATA.name}, {len(candles):,} bars; quick={quick}")
    storage = open_storage(Settings(data_dir=tmp))
    local = LocalRunner(1)
    warm = fresh_objective(candles)
    evaluate_many(warm.market, np.arange(10), 0, len(candles))  # JIT / numba cache load outside the timings

    # 1. random search vs raw evaluate_many (fresh markets: no episode cache shared between the two)
    n = 1000
    raw_s, _ = timed(lambda: evaluate_many(fresh_objective(candles).market, sample_indices(201_600, n, 1), 0, len(candles)))
    opt_s, _ = timed(lambda: search(fresh_objective(candles), RandomSearch(n, seed=1), storage, "random", local))
    row("random search 1,000 (optimiser + SQLite)", f"{opt_s:.2f} s", f"raw evaluate_many {raw_s:.2f} s (x{opt_s / raw_s:.2f}); "
        f"source 50 s (x{SOURCE_RANDOM_S / opt_s:.0f} faster); goal <= 3 s: {'met' if opt_s <= 3 else 'NOT met'}")  # fmt: skip

    # 2. Bayesian (TPE) with the same budget and storage as a random search
    trials = 50 if quick else 200
    objective = fresh_objective(candles)
    rnd_s, _ = timed(lambda: search(objective, RandomSearch(trials, seed=2, chunk_size=8), storage, "rnd-b", local))
    tpe_s, tpe = timed(lambda: search(objective, BayesianSearch(trials, seed=2, batch_size=8), storage, "tpe", local))
    row(f"bayesian TPE {trials} trials (SQLite)", f"{tpe_s:.2f} s (best {tpe.best_score:.1f} %)",
        f"random {trials} in chunks of 8: {rnd_s:.2f} s (x{tpe_s / rnd_s:.1f}); source ~10 s per market for 200")  # fmt: skip

    # 3. walk-forward random study vs one flat search with the same number of evaluations
    per_fold = 200 if quick else 1000
    objective = fresh_objective(candles)
    folds = split(objective.timestamps, WalkForwardSpec(), holding_end(objective.timestamps, objective.max_hold_bars))
    wf_s, _ = timed(lambda: walk_forward(objective, RandomSearch(per_fold, seed=3), folds, Scorer(min_trades=30),
                                         lambda f: RunContext(TrialLog(storage, f"wf/w{f.number}"), local)))  # fmt: skip
    flat_s, _ = timed(
        lambda: search(fresh_objective(candles), RandomSearch(per_fold * len(folds), seed=3), storage, "flat", local)
    )
    row(f"walk-forward 90/7/30, {len(folds)} folds x {per_fold}", f"{wf_s:.2f} s",
        f"flat random {per_fold * len(folds):,} points {flat_s:.2f} s (x{wf_s / flat_s:.2f})")  # fmt: skip

    # 4. process pool vs in-process on a cold market
    n4 = 1000 if quick else 4000
    one_s, _ = timed(lambda: search(fresh_objective(candles), RandomSearch(n4, seed=4), storage, "p1", local))
    pool = LocalRunner(2)
    try:
        two_s, _ = timed(lambda: search(fresh_objective(candles), RandomSearch(n4, seed=4), storage, "p2", pool))
    finally:
        pool.close()
    row(f"random {n4:,} with 2 worker processes", f"{two_s:.2f} s", f"in-process {one_s:.2f} s (speed-up x{one_s / two_s:.2f})")

    # 5. full grid through the optimiser
    if not quick:
        grid_s, grid = timed(lambda: search(fresh_objective(candles), GridSearch(chunk_size=8192), storage, "grid", local))
        verdict = "met" if grid_s <= 300 else "NOT met"
        row("full grid 201,600 (GridSearch + SQLite)", f"{grid_s:.1f} s", f"goal <= 300 s: {verdict}; "
            f"source 2.8 h per market (x{2.8 * 3600 / grid_s:.0f} faster); best {grid.best_score:.1f} %")  # fmt: skip

    print("\n| figure | value | reference |\n|---|---|---|")
    for name, value, reference in ROWS:
        print(f"| {name} | {value} | {reference} |")


if __name__ == "__main__":
    main()
