"""`pivotal run --mode testnet` against the local test exchange (unmodified ccxt / ccxt.pro, loopback only): orders go
to the exchange at the decision and the portfolio books the exchange's fills; then crash safety — a subprocess runs
the testnet session on a journal, is killed with SIGKILL at random moments and restarted each time, and at the end
the exchange and the journal agree: no client order id twice, every exchange trade journaled, the base balance the
journal's. The exchange runs in this process with its clock paused and stepped one bar at a time by the test."""

from __future__ import annotations

import json
import os
import random
import secrets
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
from typer.testing import CliRunner

from pivotal.cli.main import app
from pivotal.runtime.journal import Journal
from pivotal.testexchange import TestExchange
from pivotal.testexchange.tape import SymbolData, load_symbol

MIN = 60_000
START = int(pd.Timestamp("2024-03-01T00:00Z").value // 1_000_000)
KEY, SECRET = secrets.token_hex(16), secrets.token_hex(32)  # made per test session, never stored
CREDS = {"api_key": KEY, "api_secret": SECRET}  # the test exchange accepts these


@pytest.fixture(scope="module")
def btc_1m(shared_data: Path) -> dict[str, SymbolData]:
    return {"BTCUSDT": load_symbol(shared_data, "BTCUSDT", ("1m",))}


@pytest.fixture(autouse=True)
def _nothing_left_running() -> Iterator[None]:
    yield
    alive = [t.name for t in threading.enumerate() if t.name in ("pivotal-testexchange", "pivotal-live-feed")]
    assert alive == [], f"threads still running: {alive}"


def step_clock(
    ex: TestExchange, until: int, done: threading.Event, every_s: float, hold: tuple[int, threading.Event] | None = None
) -> threading.Thread:
    """Advance the paused exchange clock one bar every ``every_s`` up to ``until``; ``hold`` = (t, event): wait at t
    until the event is set (the kills land before the run can reach its end)."""

    def run() -> None:
        while not done.is_set() and ex.now_ms() < until:
            if hold is not None and ex.now_ms() >= hold[0]:
                hold[1].wait()
            ex.advance(MIN)
            done.wait(every_s)

    thread = threading.Thread(target=run, name="test-clock-stepper", daemon=True)
    thread.start()
    return thread


def run_args(ex: TestExchange, end: int, journal: Path | None) -> list[str]:
    return [
        "run", "--mode", "testnet", "--strategy", "sma_cross", "-e", "binance", "-s", "BTC/USDT", "-t", "1m",
        "--start", str(START), "--end", str(end), "--exchange-url", ex.url, "--capital", "1000", "--no-status", "--json",
        *([] if journal is None else ["--journal", str(journal)]),
    ]  # fmt: skip


def exchange_view(ex: TestExchange) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    client = ex.ccxt_client()
    return client.fetch_orders("BTC/USDT"), client.fetch_my_trades("BTC/USDT"), client.fetch_balance()["total"]


def journal_base(records: list[dict[str, Any]]) -> float:
    """BTC the journal's exchange answers leave: bought minus the fee charged in BTC, minus sold."""
    held = 0.0
    for r in records:
        if r.get("k") == "sent":
            held += r["filled"] - r["fees"].get("BTC", 0.0) if r["side"] == "buy" else -r["filled"]
    return held


def check_agreement(ex: TestExchange, records: list[dict[str, Any]]) -> int:
    orders, trades, totals = exchange_view(ex)
    cids = [o["clientOrderId"] for o in orders]
    assert not [c for c, n in Counter(cids).items() if n > 1], "a client order id was sent twice"
    sent = {r["id"]: r for r in records if r.get("k") == "sent"}
    assert set(cids) == set(sent), "the journal and the exchange disagree on the orders sent"
    by_order = {o["id"]: o["clientOrderId"] for o in orders}
    filled: Counter[str] = Counter()
    for t in trades:
        filled[by_order[t["order"]]] += t["amount"]
    for cid, r in sent.items():  # every exchange trade is in the journal (as its order's filled quantity)
        assert filled[cid] == pytest.approx(r["filled"], abs=1e-12), cid
    assert totals.get("BTC", 0.0) == pytest.approx(journal_base(records), abs=1e-9)
    return len(cids)


@pytest.mark.timeout(90)
def test_testnet_sends_orders_at_the_decision_and_books_the_exchange_fills(
    shared_data: Path, btc_1m: dict[str, SymbolData], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIVOTAL_EXCHANGE_API_KEY", KEY)
    monkeypatch.setenv("PIVOTAL_EXCHANGE_API_SECRET", SECRET)
    end, journal = START + 240 * MIN, tmp_path / "testnet.jsonl"
    with TestExchange(shared_data, ["BTC/USDT"], timeframes=("1m",), start=START + 60 * MIN, preloaded=btc_1m, **CREDS) as ex:
        ex.pause()
        done = threading.Event()
        stepper = step_clock(ex, end + MIN, done, 0.01)
        try:
            result = CliRunner().invoke(app, run_args(ex, end, journal))
        finally:
            done.set()
            stepper.join(10)
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        records = Journal(journal, readonly=True).records
        n = check_agreement(ex, records)
    assert n >= 4 and report["sent"] == n  # entries and exits, each sent once
    assert KEY not in result.output and SECRET not in result.output and SECRET not in journal.read_text()
    assert Journal(journal, readonly=True).recover().positions == {}  # the end of the window closed what was open


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_kill_9_at_random_moments_loses_no_fill_and_sends_no_order_twice(
    shared_data: Path, btc_1m: dict[str, SymbolData], tmp_path: Path
) -> None:
    kills, rng = 20, random.Random(20261206)
    end, journal = START + 600 * MIN, tmp_path / "crash.jsonl"
    env = {**os.environ, "PIVOTAL_EXCHANGE_API_KEY": KEY, "PIVOTAL_EXCHANGE_API_SECRET": SECRET}
    cmd = [sys.executable, "-c", "from pivotal.cli.main import app; app()"]
    with TestExchange(shared_data, ["BTC/USDT"], timeframes=("1m",), start=START + 60 * MIN, preloaded=btc_1m, **CREDS) as ex:
        ex.pause()
        done = threading.Event()
        kills_done = threading.Event()
        stepper = step_clock(ex, end + MIN, done, 0.1, hold=(end - 30 * MIN, kills_done))
        killed = 0
        try:
            for _ in range(kills):
                proc = subprocess.Popen([*cmd, *run_args(ex, end, journal)], env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)  # fmt: skip
                time.sleep(rng.uniform(2.2, 4.0))  # ~2 s of start-up, then a random moment of trading
                if proc.poll() is not None:
                    break
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                killed += 1
            kills_done.set()
            final = subprocess.run([*cmd, *run_args(ex, end, journal)], env=env, capture_output=True, text=True,
                                   timeout=60)  # fmt: skip
        finally:
            kills_done.set()
            done.set()
            stepper.join(10)
        assert final.returncode == 0, final.stderr[-2000:]
        records = Journal(journal, readonly=True).records
        n = check_agreement(ex, records)
    assert killed == kills
    assert n >= 4
    assert Journal(journal, readonly=True).recover().positions == {}


class Crash(Exception):
    """Stands for kill -9 at one precise point of an order's life."""


class CrashingVenue:
    """A real ``CcxtVenue`` that dies on its ``at``-th submit, before sending or after the exchange accepted it."""

    def __init__(self, inner: Any, at: int, when: str) -> None:
        self.inner, self.at, self.when, self.calls = inner, at, when, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def submit(self, request: Any) -> Any:
        self.calls += 1
        if self.calls == self.at and self.when == "before":
            raise Crash
        result = self.inner.submit(request)
        if self.calls == self.at:
            raise Crash  # the exchange holds the order; its answer never reached the journal
        return result


@pytest.mark.timeout(90)
@pytest.mark.parametrize("when", ["before", "after"])
def test_a_crash_around_a_submit_is_reconciled_by_client_id(
    shared_data: Path, btc_1m: dict[str, SymbolData], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    from pivotal.config import Settings
    from pivotal.execution.ccxt_venue import CcxtVenue
    from pivotal.runtime.runner import execute_live
    from pivotal.services.backtest import CandleSource
    from pivotal.services.run import RunRequest, prepare

    monkeypatch.setenv("PIVOTAL_EXCHANGE_API_KEY", KEY)
    monkeypatch.setenv("PIVOTAL_EXCHANGE_API_SECRET", SECRET)
    end, journal = START + 240 * MIN, tmp_path / "j.jsonl"
    with TestExchange(shared_data, ["BTC/USDT"], timeframes=("1m",), start=end + MIN, preloaded=btc_1m, **CREDS) as ex:
        ex.pause()  # every bar is closed: the feed backfills them all, the exchange fills at its clock

        def run(venue: Any) -> Any:
            request = RunRequest("testnet", "sma_cross", CandleSource(None, "binance", "BTC/USDT", "1m", START, end),
                                 capital=1000.0, journal=journal, rest_url=ex.url)  # fmt: skip
            return execute_live(prepare(request), venue=venue)

        def venue() -> CcxtVenue:
            return CcxtVenue.from_settings(Settings(), "binance", sandbox=True, rest_url=ex.url)

        crashing = CrashingVenue(venue(), 3, when)
        with pytest.raises(Crash):
            run(crashing)
        intent = [r for r in Journal(journal, readonly=True).records if r.get("k") == "order"]
        assert len(intent) == 3 and not any(
            r.get("key") == f"sent:{intent[-1]['id']}" for r in Journal(journal, readonly=True).records
        )
        outcome = run(venue())
        records = Journal(journal, readonly=True).records
        n = check_agreement(ex, records)
    sent_before = 3 if when == "after" else 2
    assert outcome.sent == n - sent_before  # the crashed order was sent once in all: found by its client id, or sent now
    assert Journal(journal, readonly=True).recover().positions == {}
