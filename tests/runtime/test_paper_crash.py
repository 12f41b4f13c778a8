"""kill -9 during a journaled paper session: the local test exchange (in this process, clock paused and stepped one
bar at a time) streams recorded Binance BTC/USDT 1m to a paper node in a subprocess (unmodified ccxt.pro, loopback
only), which is killed with SIGKILL at random moments and restarted each time on the same journal. At the end: no
client order id twice, no record twice, the orders, decisions and fills of a replay of the same bars that was never
killed, its positions, and a trade list byte-identical to ``pivotal backtest``'s on the same bars."""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pivotal.runtime.journal import Journal
from pivotal.runtime.runner import execute
from pivotal.services.backtest import CandleSource, run_backtest
from pivotal.services.run import RunRequest, prepare
from pivotal.testexchange import TestExchange
from pivotal.testexchange.tape import SymbolData, load_symbol

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

MIN = 60_000
START = int(pd.Timestamp("2024-03-01T00:00Z").value // 1_000_000)
END = START + 600 * MIN  # exclusive: 600 one-minute bars
KILLS = 20

# The paper session as `pivotal run --mode paper --journal` runs it (services.run.prepare -> runner.execute_live),
# printing "ready" at its first live event so the parent's kill clock starts once the node trades.
CHILD = """
import sys
from pathlib import Path
from pivotal.runtime.runner import execute_live
from pivotal.services.backtest import CandleSource
from pivotal.services.run import RunRequest, prepare

url, start, end, journal, out = sys.argv[1:6]
source = CandleSource(None, "binance", "BTC/USDT", "1m", int(start), int(end))
prepared = prepare(RunRequest("paper", "sma_cross", source, journal=Path(journal), rest_url=url))
seen = []

def ready(event):
    if not seen:
        print("ready", flush=True)
    seen.append(1)

execute_live(prepared, observer=ready).run.result.trades.write(Path(out))
"""


@pytest.fixture(scope="module")
def btc_1m(shared_data: Path) -> dict[str, SymbolData]:
    return {"BTCUSDT": load_symbol(shared_data, "BTCUSDT", ("1m",))}


@pytest.fixture(autouse=True)
def _nothing_left_running() -> Iterator[None]:
    yield
    alive = [t.name for t in threading.enumerate() if t.name in ("pivotal-testexchange", "pivotal-live-feed")]
    assert alive == [], f"threads still running: {alive}"


def step_clock(ex: TestExchange, done: threading.Event, hold: threading.Event) -> threading.Thread:
    """One bar every 80 ms up to END (the kills spread over the session); 30 bars before END it waits for ``hold``
    (every kill lands before the session's end)."""

    def run() -> None:
        while not done.is_set() and ex.now_ms() < END + MIN:
            if ex.now_ms() >= END - 30 * MIN:
                hold.wait()
            ex.advance(MIN)
            done.wait(0.08)

    thread = threading.Thread(target=run, name="test-clock-stepper", daemon=True)
    thread.start()
    return thread


def normal(records: list[dict[str, Any]], kinds: tuple[str, ...]) -> list[str]:
    """Records of ``kinds`` as text with the run id taken out of client order ids (each run draws its own)."""
    run_id = next(r["run_id"] for r in records if r["k"] == "run")
    return [re.sub(re.escape(run_id) + "-", "ID-", json.dumps(r, sort_keys=True)) for r in records if r["k"] in kinds]


def test_kill_9_twenty_times_during_paper_loses_no_fill_and_duplicates_no_order(
    shared_data: Path, btc_1m: dict[str, SymbolData], tmp_path: Path
) -> None:
    script, journal, out = tmp_path / "child.py", tmp_path / "paper.jsonl", tmp_path / "paper.csv"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    rng = random.Random(20261206)
    kills, sizes, moments = 0, [0], []
    with TestExchange(shared_data, ["BTC/USDT"], timeframes=("1m",), start=START + 60 * MIN, preloaded=btc_1m) as ex:
        ex.pause()
        done, hold = threading.Event(), threading.Event()
        stepper = step_clock(ex, done, hold)
        args = [sys.executable, str(script), ex.url, str(START), str(END), str(journal), str(out)]
        try:
            while kills < KILLS:
                child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
                assert child.stdout is not None
                line = child.stdout.readline()  # the node is trading (it re-derived the journal, the feed backfilled)
                if line.strip() != b"ready":
                    raise AssertionError(f"child failed to start: {child.communicate()[1].decode()[-2000:]}")
                time.sleep(rng.uniform(0.0, 1.0))
                child.send_signal(signal.SIGKILL)
                child.wait(10)
                assert child.returncode == -signal.SIGKILL, child.communicate()[1].decode()[-2000:]
                kills += 1
                sizes.append(journal.stat().st_size if journal.exists() else 0)
                moments.append(ex.now_ms())
            reached = ex.now_ms()
            hold.set()
            final = subprocess.run(args, capture_output=True, timeout=120, env=env)
        finally:
            hold.set()
            done.set()
            stepper.join(10)
    assert final.returncode == 0, final.stderr.decode()[-2000:]
    assert kills == KILLS and reached < END  # every kill landed before the session's end
    assert moments[-1] - moments[0] >= 200 * MIN, moments  # spread over the session, not bunched at its start
    assert sum(b > a for a, b in itertools.pairwise(sizes)) >= 3, sizes  # kills between decisions too

    got = Journal(journal, readonly=True)
    ids = [r["id"] for r in got.records if r["k"] == "order"]
    assert len(ids) == len(set(ids)) > 10, "duplicate client order id"
    keys = [r["key"] for r in got.records if r["key"] is not None]
    assert [k for k, n in Counter(keys).items() if n > 1] == []  # no order, fill or decision recorded twice

    # the same bars replayed by a node that was never killed: same decisions, orders and fills, same positions
    data = shared_data / "binance" / "BTCUSDT-1m-2024.parquet"
    source = CandleSource(data, "binance", "BTC/USDT", None, START, END)  # the file, labelled with its market
    clean = execute(prepare(RunRequest("replay", "sma_cross", source, journal=tmp_path / "clean.jsonl")))
    want = Journal(tmp_path / "clean.jsonl", readonly=True)
    for kinds in (("fill",), ("order",), ("decision",), ("order_done",), ("end",)):
        assert normal(got.records, kinds) == normal(want.records, kinds), kinds
    assert got.recover().positions == want.recover().positions
    bt = tmp_path / "backtest.csv"
    bars = prepare(RunRequest("backtest", "sma_cross", source)).bars
    assert len(bars) == 600
    run_backtest(bars, "sma_cross", {}).result.trades.write(bt)
    assert out.read_bytes() == bt.read_bytes()
    clean.run.result.trades.write(tmp_path / "clean.csv")
    assert (tmp_path / "clean.csv").read_bytes() == bt.read_bytes()
