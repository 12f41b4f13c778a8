"""Recovery after kill -9 (run: .venv/bin/python benchmarks/bench_recovery.py [--quick]).

Real data: Binance BTCUSDT 1m 2024 (../shared/data), SMA cross, through the local test exchange (unmodified
ccxt.pro, loopback) in this process with its clock paused. For a journaled paper session with H bars of history:

1. the session runs up to the bar before one where SMA cross decides, and is killed with SIGKILL;
2. that bar closes on the exchange while the node is dead;
3. the node restarts on its journal (a new process): recovery time = restart -> the new decision journaled
   (python start-up, imports, journal load, REST backfill of the H bars, re-deriving them, the decision).

Reference, same run, same bars and the same decision: a cold start of a fresh session with a new journal (everything
above but the journal's records). Each figure also prints the bare process start-up (``import`` of the runtime) so
the fixed cost is visible. Lower is better; the ratio recovery / cold start says what the journal costs.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pivotal.runtime.runner import execute
from pivotal.services.backtest import CandleSource
from pivotal.services.run import RunRequest, prepare
from pivotal.testexchange import TestExchange
from pivotal.testexchange.tape import load_symbol

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FILE = DATA / "binance" / "BTCUSDT-1m-2024.parquet"
MIN = 60_000
START = 1_709_251_200_000  # 2024-03-01 00:00 UTC

# The paper session (services.run.prepare -> runner.execute_live, as `pivotal run --mode paper --journal`). It prints
# "caught" once it has processed the bar closing at ``at`` (mode "kill"), or "decided <epoch s>" and exits when this
# process journals the decision on the bar closing at ``at`` (mode "decide").
CHILD = """
import os, sys, time
from pathlib import Path
from pivotal.runtime.runner import execute_live
from pivotal.services.backtest import CandleSource
from pivotal.services.run import RunRequest, prepare

url, start, end, journal, at, mode = sys.argv[1:7]
source = CandleSource(None, "binance", "BTC/USDT", "1m", int(start), int(end))
prepared = prepare(RunRequest("paper", "sma_cross", source, journal=Path(journal), rest_url=url))
state = {}

def on_start(node):
    state["node"], state["seen"] = node, len(node.journal.records)

def observe(event):
    records = state["node"].journal.records
    new, state["seen"] = records[state["seen"]:], len(records)
    if mode == "decide" and any(r["k"] == "decision" and r["bar_ts"] + 60_000 >= int(at) for r in new):
        print("decided", time.time(), flush=True)
        os._exit(0)
    if mode == "kill" and event.known_at >= int(at):
        print("caught", flush=True)

execute_live(prepared, observer=observe, on_start=on_start)
"""


def decision_closes(bars: int) -> list[int]:
    """Close times of the bars on which SMA cross decides (a replay of the same bars, in-process)."""
    with tempfile.TemporaryDirectory() as tmp:
        source = CandleSource(FILE, "binance", "BTC/USDT", None, START, START + bars * MIN)
        journal = Path(tmp) / "j.jsonl"
        execute(prepare(RunRequest("replay", "sma_cross", source, journal=journal)))
        from pivotal.runtime.journal import Journal

        return [int(r["bar_ts"]) + MIN for r in Journal(journal, readonly=True).records if r["k"] == "decision"]


def spawn(script: Path, url: str, end: int, journal: Path, at: int, mode: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    args = [sys.executable, str(script), url, str(START), str(end), str(journal), str(at), mode]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def until_decided(proc: subprocess.Popen[bytes], t0: float) -> float:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(b"decided"):
            proc.wait(30)
            return float(line.split()[1]) - t0
    raise RuntimeError(f"no decision: {proc.communicate()[1].decode()[-2000:]}")


def startup_s() -> float:
    t0 = time.time()
    subprocess.run([sys.executable, "-c", "import pivotal.runtime.runner, ccxt.pro"], check=True)
    return time.time() - t0


def measure(history: int, market: dict, repeats: int) -> tuple[float, float, float]:
    """(recovery s, cold start s, bare start-up s), medians over ``repeats``, for a decision after ``history`` bars."""
    closes = [c for c in decision_closes(history + 3_000) if c > START + history * MIN]
    decide = closes[0]  # the first bar after the history on which the strategy decides
    end = decide + 120 * MIN
    recoveries, colds, starts = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "child.py"
        script.write_text(CHILD)
        for k in range(repeats):
            journal = Path(tmp) / f"r{k}.jsonl"
            with TestExchange(DATA, ["BTC/USDT"], ("1m",), start=decide - MIN, preloaded=market) as ex:
                ex.pause()  # every bar before the decision bar has closed; the decision bar has not
                proc = spawn(script, ex.url, end, journal, decide - MIN, "kill")
                assert proc.stdout is not None
                line = proc.stdout.readline()
                assert line.strip() == b"caught", proc.communicate()[1].decode()[-2000:]
                proc.send_signal(signal.SIGKILL)  # kill -9 with the session caught up
                proc.wait(10)
                ex.advance(MIN)  # the decision bar closes while the node is dead
                t0 = time.time()
                recoveries.append(until_decided(spawn(script, ex.url, end, journal, decide, "decide"), t0))
            with TestExchange(DATA, ["BTC/USDT"], ("1m",), start=decide, preloaded=market) as ex:
                ex.pause()
                t0 = time.time()
                colds.append(until_decided(spawn(script, ex.url, end, Path(tmp) / f"c{k}.jsonl", decide, "decide"), t0))
            starts.append(startup_s())
    return float(np.median(recoveries)), float(np.median(colds)), float(np.median(starts))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    histories, repeats = ([1_440], 2) if args.quick else ([1_440, 10_080], 3)
    market = {"BTCUSDT": load_symbol(DATA, "BTCUSDT", ("1m",))}
    for history in histories:
        rec, cold, start = measure(history, market, repeats)
        print(
            f"history {history:6,d} bars: kill -9 -> first new decision {rec * 1000:7.0f} ms; cold start of a fresh "
            f"session to the same decision {cold * 1000:7.0f} ms (ratio {rec / cold:.2f}x); bare process start-up "
            f"{start * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
