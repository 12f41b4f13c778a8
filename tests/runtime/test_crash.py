"""kill -9 at random moments: a journaled replay in a subprocess is killed with SIGKILL ten times mid-run and
restarted each time; at the end the journal holds no duplicate order, no lost fill, and the positions, fills and
trades of a run that was never killed."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pivotal.runtime.journal import Journal
from pivotal.runtime.runner import execute
from pivotal.services.backtest import CandleSource
from pivotal.services.run import RunRequest, prepare

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

START, END = 1_709_251_200_000, 1_709_424_000_000  # 2024-03-01 .. 2024-03-03 UTC: 2,880 bars of BTC/USDT 1m
KILLS = 10

CHILD = """
import sys
from pathlib import Path
from pivotal.runtime.runner import execute
from pivotal.services.backtest import CandleSource
from pivotal.services.run import RunRequest, prepare

data, start, end, journal, out = sys.argv[1:6]
request = RunRequest("replay", "sma_cross", CandleSource(Path(data), start=int(start), end=int(end)), journal=Path(journal))
prepared = prepare(request)
seen = []

def ready(event):
    if not seen:
        print("ready", flush=True)  # the parent's kill clock starts once the replay runs
    seen.append(1)

execute(prepared, observer=ready).run.result.trades.write(Path(out))
"""


def request(data: Path, journal: Path) -> RunRequest:
    return RunRequest("replay", "sma_cross", CandleSource(data, start=START, end=END), journal=journal)


def normal(records: list[dict[str, Any]], kinds: tuple[str, ...]) -> list[str]:
    """Records of ``kinds`` as text with the run id taken out of client order ids (each run draws its own)."""
    run_id = next(r["run_id"] for r in records if r["k"] == "run")
    out = []
    for r in records:
        if r["k"] in kinds:
            out.append(re.sub(re.escape(run_id) + "-", "ID-", json.dumps(r, sort_keys=True)))
    return out


def test_kill_nine_ten_times_loses_nothing_and_duplicates_nothing(shared_data: Path, tmp_path: Path) -> None:
    data = shared_data / "binance" / "BTCUSDT-1m-2024.parquet"
    clean = execute(prepare(request(data, tmp_path / "clean.jsonl")))
    want = Journal(tmp_path / "clean.jsonl", readonly=True)

    script = tmp_path / "child.py"
    script.write_text(CHILD)
    journal, out = tmp_path / "killed.jsonl", tmp_path / "trades.csv"
    args = [sys.executable, str(script), str(data), str(START), str(END), str(journal), str(out)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    rng = random.Random(20261206)
    kills = grew = 0
    deadline = time.monotonic() + 300
    sizes = [0]
    while kills < KILLS:
        assert time.monotonic() < deadline, f"only {kills} kills in 300 s"
        child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        assert child.stdout is not None
        line = child.stdout.readline()  # blocks until the replay started (or the child died)
        if line.strip() != b"ready":
            raise AssertionError(f"child failed to start: {child.communicate()[1].decode()[-2000:]}")
        time.sleep(rng.uniform(0.0, 0.6))  # the replay runs ~0.5 s: kills land anywhere in it, mid-write included
        child.send_signal(signal.SIGKILL)
        child.wait()
        if child.returncode == -signal.SIGKILL:
            kills += 1
            size = journal.stat().st_size if journal.exists() else 0
            grew += size > sizes[-1]
            sizes.append(size)
        else:
            journal.unlink()  # it finished before the kill: start over so every kill hits a run in progress
            sizes.append(0)
    done = subprocess.run(args, capture_output=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert grew >= 1, sizes  # at least one kill landed after the journal had grown

    got = Journal(journal, readonly=True)
    ids = [r["id"] for r in got.records if r["k"] == "order"]
    assert len(ids) == len(set(ids)), "duplicate client order id"
    keys = [r["key"] for r in got.records if r["key"] is not None]
    assert [k for k, n in Counter(keys).items() if n > 1] == []
    for kinds in (("fill",), ("order",), ("decision",), ("order_done",), ("end",)):
        assert sorted(normal(got.records, kinds)) == sorted(normal(want.records, kinds)), kinds
    assert got.recover().positions == want.recover().positions
    assert out.read_text() == _csv(clean, tmp_path)
    assert len(ids) > 100


def _csv(outcome: Any, folder: Path) -> str:
    path = folder / "clean.csv"
    outcome.run.result.trades.write(path)
    return path.read_text()
