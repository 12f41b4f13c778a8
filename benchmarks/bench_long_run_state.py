"""What a long live-training run reads on its hot path, after the run has grown its state files
(run: .venv/bin/python benchmarks/bench_long_run_state.py [--versions 6000] [--decisions 15000]).

A node with live learning checks the promotion log for a new serving version on every event, and reads the checkpoint
index (on a swap, a staleness report) and the trainer's metrics feed (statistics) many times a day. After 90 replayed
days the log holds about 15,000 decisions (6 MB), the index about 6,000 served versions each listing the sample keys
it trained on (about 18 MB) and the feed a line per version. Each is read here by the code the node uses, against a
reference measured in the same run: parsing the whole file, which is what each read cost before (the node's per-event
cost then grew with the run's length; the frozen-vs-live run on 2 × 129,600 bars did not finish in a session).

**Data engine, per bar.** A node rebuilds the preparation of its traded series (candles, pivots, indicators) after
every bar. Measured: ``_Series.prepared()`` after one new bar of real Binance BTC/USDT 1m (2025-05-20 on), at
5,000, 65,000 and 129,000 bars in the series, against the same rebuild from scratch (the columns copied from the
bars so far and every indicator recomputed over them, which is what each bar cost before).

The files are written here with the writers the trainer uses (``PromotionLog.decide``, ``CheckpointIndex`` through
``LockedIndex.add``), the metrics lines as the trainer writes them; their content is bookkeeping, no market data.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from pivotal.data.state.checkpoints import CheckpointIndex, LockedIndex  # noqa: E402
from pivotal.training.online import METRICS_FILE, read_metrics  # noqa: E402
from pivotal.training.promotion import ONLINE_DIR, GateResult, PromotionEvent, PromotionLog  # noqa: E402


def per_call(fn: Callable[[], object], seconds: float = 1.0) -> float:
    """Seconds per call (at least 3 calls, about ``seconds`` in all)."""
    fn()
    n, started = 0, time.perf_counter()
    while n < 3 or time.perf_counter() - started < seconds:
        fn()
        n += 1
    return (time.perf_counter() - started) / n


def build(root: Path, versions: int, decisions: int) -> None:
    log = PromotionLog(root, "cnn")
    result = GateResult(True, 64, 0.01, 2.5, 0.01, 0.05, "challenger beats champion: mean loss diff 0.01000, t 2.500")
    log.promote("v0", now_ms=0)
    log.decide("v1", result, now_ms=1)
    lines = []  # the rest in one write (the trainer's appends fsync each line: minutes for 15,000)
    for i in range(2, decisions):
        e = PromotionEvent("cnn", "promote" if i % 3 == 0 else "refuse", f"v{i}", f"v{i - 1}", i, result.reason,
                           {**result.__dict__}, "gate")  # fmt: skip
        lines.append(json.dumps(e.__dict__, sort_keys=True, default=str))
    with open(log.path, "a") as handle:
        handle.write("\n".join(lines) + "\n")
    keys = [f"pivot|BTC/USDT|1m|L2H|{1_747_713_600_000 + 60_000 * k}" for k in range(64)]
    entries = [
        {"name": "cnn", "id": f"2026{i:016d}", "path": f"cnn/{i}.pt", "metric_name": "val_loss", "metric": 1.0,
         "higher_is_better": False, "created": "2026-12-06T00:00:00", "data_span": {}, "config": {},
         "extra": {"online": True, "parent": f"2026{i - 1:016d}", "sample_keys": keys, "trained_through": i}}
        for i in range(versions)
    ]  # fmt: skip
    index = CheckpointIndex(root)
    with index.locked() as locked:
        assert isinstance(locked, LockedIndex)
        locked._write(entries)
    feed = root / ONLINE_DIR / "cnn" / METRICS_FILE
    feed.write_text("".join(json.dumps({"version": f"v{i}", "loss_after": 1.0 / (i + 1), "trained": 64}) + "\n"
                            for i in range(versions)))  # fmt: skip


def engine_per_bar(data: Path) -> None:
    import numpy as np

    from pivotal.data.candles import Candles
    from pivotal.data.loaders import load_candles_file
    from pivotal.features.indicators import compute_indicators
    from pivotal.runtime.data_engine import _Series
    from pivotal.structure.types import PivotParams

    start = 1_747_713_600_000
    bars = load_candles_file(data / "binance" / "BTCUSDT-1m-2025.parquet", timeframe="1m", start=start,
                             end=start + 129_100 * 60_000 - 1, exchange="binance", symbol="BTC/USDT")  # fmt: skip
    cols = [bars.ts.tolist(), bars.open.tolist(), bars.high.tolist(), bars.low.tolist(), bars.close.tolist(),
            bars.volume.tolist()]  # fmt: skip
    print("data engine: prepare a 1m series after a new bar (real BTC/USDT 1m)")
    for n in (5_000, 65_000, 129_000):
        series = _Series("BTC/USDT", "1m", PivotParams(), 8)
        for i in range(n):
            series.append(*(c[i] for c in cols))
        series.prepared("binance")
        ours, ref = [], []
        for i in range(n, n + 20):
            series.append(*(c[i] for c in cols))
            t0 = time.perf_counter()
            series.prepared("binance")
            ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            copy = Candles.from_columns([np.array(c[: i + 1]) for c in cols], "binance", "BTC/USDT", "1m")
            compute_indicators(copy)
            ref.append(time.perf_counter() - t0)
        a, b = float(np.median(ours)), float(np.median(ref))
        print(f"  {n:>7,} bars: ours {a * 1e3:8.3f} ms  rebuilt from scratch {b * 1e3:8.3f} ms  ratio {b / a:8.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--versions", type=int, default=6000)
    parser.add_argument("--decisions", type=int, default=15000)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    engine_per_bar(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build(root, args.versions, args.decisions)
        log, index = PromotionLog(root, "cnn"), CheckpointIndex(root)
        feed = root / ONLINE_DIR / "cnn" / METRICS_FILE

        def full_log() -> str | None:
            current = None
            for line in log.path.read_text().splitlines():
                e = PromotionEvent(**json.loads(line))
                current = e.version if e.action in ("promote", "rollback") else current
            return current

        rows = [
            ("serving version (every event)", lambda: log.serving(), full_log, log.path),
            ("checkpoint index (swap, staleness)", lambda: index.entries("cnn"),
             lambda: json.loads(index.path.read_text()), index.path),
            ("last metrics line (statistics)", lambda: read_metrics(root, "cnn", last=1),
             lambda: [json.loads(x) for x in feed.read_text().splitlines()][-1:], feed),
        ]  # fmt: skip
        assert log.serving() == full_log()
        print(f"{args.decisions:,} decisions, {args.versions:,} versions")
        for label, ours, reference, path in rows:
            a, b = per_call(ours), per_call(reference)
            print(f"{label:38s} {path.stat().st_size / 1e6:6.1f} MB  ours {a * 1e3:9.3f} ms  "
                  f"full parse {b * 1e3:9.3f} ms  ratio {b / a:8.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
