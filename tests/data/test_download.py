"""The ccxt downloader against the real ccxt binance client talking to a local server that serves real Binance candles."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pivotal.data.candles import Candles
from pivotal.data.download import DownloadError, PageEvent, RetryPolicy, download_candles
from pivotal.data.duckdb_store import DuckDBStore
from pivotal.data.importers.shared_parquet import read_shared
from pivotal.data.store import MarketStore
from tests.fakes.binance_server import FakeBinance, FaultPlan

MINUTE = 60_000
FAST = RetryPolicy(attempts=6, base_delay_s=0.01, max_delay_s=0.05)


def real_1m(shared_data: Path, name: str, start: int, stop: int) -> Candles:
    """Rows [start, stop) of a real Binance 1m file (both slices used here span a real multi-day outage gap)."""
    return read_shared(shared_data / "binance" / f"{name}-1m-2024.parquet").candles.slice(start, stop)


@pytest.fixture
def btc(shared_data: Path) -> Candles:
    return real_1m(shared_data, "BTCUSDT", 28_000, 32_601)  # gap after row 29999 (2024-01-21)


@pytest.fixture
def eth(shared_data: Path) -> Candles:
    return real_1m(shared_data, "ETHUSDT", 29_000, 31_201)


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[MarketStore]:
    store = DuckDBStore(tmp_path / "dl.duckdb")
    yield store
    store.close()


def open_bar_clock(candles: Candles) -> int:
    """Server clock 30 s into the last served bar, so that bar is still open and must not be stored."""
    return int(candles.ts[-1]) + 30_000


def assert_stored_equals(store: MarketStore, expected: Candles) -> None:
    got = store.candles(expected.exchange or "binance", expected.symbol, "1m")
    assert len(got) == len(expected)
    assert np.all(np.diff(got.ts) > 0), "duplicates or disorder"
    assert got.equals(expected)


def test_faults_are_retried_and_result_is_identical_to_source(store: MarketStore, btc: Candles, eth: Candles) -> None:
    faults = {1: "429", 2: "500", 4: "slow", 6: "drop", 7: "503", 9: "429"}
    plan = FaultPlan(faults, slow_s=1.0)
    served = {("BTCUSDT", "1m"): btc, ("ETHUSDT", "1m"): eth}
    now = max(open_bar_clock(btc), open_bar_clock(eth))  # the series ending last has an open bar at `now`
    # BTC's served bars end before the clock: listed as halted, like a market that stopped trading (a trading market
    # with nothing up to now is a fault, see test_hardening_download.py).
    with FakeBinance(served, now_ms=now, plan=plan, halted={"BTCUSDT"}) as fake:
        results = download_candles(
            store,
            "binance",
            ["BTC/USDT", "ETH/USDT"],
            ["1m"],
            int(btc.ts[0]),
            client=fake.ccxt_client(timeout_ms=400),
            retry=FAST,
        )
    assert sorted(plan.served_faults) == sorted(faults.values())
    assert sum(r.retries for r in results) == len(faults)
    assert_stored_equals(store, closed_by(with_labels(btc, "BTC/USDT"), now))
    assert_stored_equals(store, closed_by(with_labels(eth, "ETH/USDT"), now))
    assert len(store.candles("binance", "ETH/USDT", "1m")) == len(eth) - 1  # its still-open last bar was dropped
    # The only gap is the real outage in the source, not one made by the download.
    gaps = store.gaps("binance", "BTC/USDT", "1m")
    assert [(g.start, g.end) for g in gaps] == [(int(btc.ts[1999]) + MINUTE, int(btc.ts[2000]))]


def closed_by(c: Candles, now: int) -> Candles:
    return c.slice(0, int(np.searchsorted(c.ts + MINUTE, now, side="right")))


def with_labels(c: Candles, symbol: str) -> Candles:
    return Candles(c.ts, c.open, c.high, c.low, c.close, c.volume, "binance", symbol, "1m")


def test_resume_after_interrupt_continues_from_last_stored_bar(duck: MarketStore, btc: Candles) -> None:
    plan = FaultPlan()
    expected = with_labels(btc.slice(0, len(btc) - 1), "BTC/USDT")

    def kill_after_two_pages(event: PageEvent) -> None:
        if event.series_rows >= 2000:
            raise KeyboardInterrupt("simulated kill")

    with FakeBinance({("BTCUSDT", "1m"): btc}, now_ms=open_bar_clock(btc), plan=plan) as fake:
        client = fake.ccxt_client()
        with pytest.raises(KeyboardInterrupt):
            download_candles(duck, "binance", ["BTC/USDT"], ["1m"], int(btc.ts[0]), client=client, progress=kill_after_two_pages)
        partial = duck.candles("binance", "BTC/USDT", "1m")
        assert partial.equals(expected.slice(0, 2000))  # whole pages only
        requests_before = len(plan.requests)
        [result] = download_candles(duck, "binance", ["BTC/USDT"], ["1m"], int(btc.ts[0]), client=client)
    assert result.resumed_from == int(partial.ts[-1]) + MINUTE  # inside the real outage gap that follows
    first_resumed_request = next(r for r in plan.requests[requests_before:] if "klines" in r)
    assert f"startTime={int(partial.ts[-1]) + MINUTE}" in first_resumed_request
    assert_stored_equals(duck, expected)
    # A third run finds nothing new and changes nothing.
    with FakeBinance({("BTCUSDT", "1m"): btc}, now_ms=open_bar_clock(btc)) as fake:
        [again] = download_candles(duck, "binance", ["BTC/USDT"], ["1m"], int(btc.ts[0]), client=fake.ccxt_client())
    assert again.rows_written == 0
    assert_stored_equals(duck, expected)


def test_until_bounds_the_download_exclusive(duck: MarketStore, btc: Candles) -> None:
    until = int(btc.ts[1500])
    with FakeBinance({("BTCUSDT", "1m"): btc}) as fake:
        download_candles(duck, "binance", ["BTC/USDT"], ["1m"], int(btc.ts[10]) + 1, until, client=fake.ccxt_client())
    assert_stored_equals(duck, with_labels(btc.slice(11, 1500), "BTC/USDT"))  # since is rounded up to the next bar


def test_weekly_start_is_rounded_up_to_a_monday(duck: MarketStore) -> None:
    from pivotal.data.download import _resume_point

    week = 7 * 86_400_000
    monday = 1704067200000  # 2024-01-01, a Monday
    assert _resume_point(duck, "binance", "BTC/USDT", "1w", monday, week) == monday
    assert _resume_point(duck, "binance", "BTC/USDT", "1w", monday + 1, week) == monday + week


def test_retries_are_bounded_with_exponential_backoff(duck: MarketStore, btc: Candles) -> None:
    plan = FaultPlan({n: "503" for n in range(1, 20)})
    delays: list[float] = []
    policy = RetryPolicy(attempts=4, base_delay_s=0.1, max_delay_s=10.0, jitter=0.5)
    gave_up = pytest.raises(DownloadError, match="gave up after 4 attempts: ExchangeNotAvailable")
    with FakeBinance({("BTCUSDT", "1m"): btc}, plan=plan) as fake, gave_up:
        client = fake.ccxt_client()
        download_candles(duck, "binance", ["BTC/USDT"], ["1m"], int(btc.ts[0]), client=client, retry=policy, sleep=delays.append)
    assert plan.klines_requests == 4
    assert len(delays) == 3
    for n, delay in enumerate(delays):
        assert 0.1 * 2**n <= delay <= 0.1 * 2**n * 1.5
    assert duck.last_ts("binance", "BTC/USDT", "1m") is None


def test_retry_after_header_is_honoured(duck: MarketStore, btc: Candles) -> None:
    plan = FaultPlan({1: "429"}, retry_after_s=3)
    delays: list[float] = []
    with FakeBinance({("BTCUSDT", "1m"): btc.slice(0, 100)}, plan=plan) as fake:
        download_candles(duck, "binance", ["BTC/USDT"], ["1m"], int(btc.ts[0]), client=fake.ccxt_client(), sleep=delays.append)
    assert delays == [3.0]


def test_permanent_client_error_surfaces_at_once(duck: MarketStore, btc: Candles) -> None:
    plan = FaultPlan({1: "400"})
    permanent = pytest.raises(DownloadError, match=r"permanent error, not retried: BadRequest.*Illegal characters")
    with FakeBinance({("BTCUSDT", "1m"): btc}, plan=plan) as fake, permanent:
        download_candles(duck, "binance", ["BTC/USDT"], ["1m"], int(btc.ts[0]), client=fake.ccxt_client(), retry=FAST)
    assert plan.klines_requests == 1
    assert duck.last_ts("binance", "BTC/USDT", "1m") is None


def test_unknown_symbol_and_timeframe_are_rejected_before_fetching(duck: MarketStore, btc: Candles) -> None:
    plan = FaultPlan()
    with FakeBinance({("BTCUSDT", "1m"): btc}, plan=plan) as fake:
        client = fake.ccxt_client()
        with pytest.raises(ValueError, match="binance has no market DOGE/USDT"):
            download_candles(duck, "binance", ["DOGE/USDT"], ["1m"], 0, client=client)
        with pytest.raises(ValueError, match="unknown timeframe '1M'"):
            download_candles(duck, "binance", ["BTC/USDT"], ["1M"], 0, client=client)
        client.timeframes = {k: v for k, v in client.timeframes.items() if k != "1s"}  # as on exchanges without 1s
        with pytest.raises(ValueError, match="binance has no 1s candles; it offers: 1m 3m"):
            download_candles(duck, "binance", ["BTC/USDT"], ["1s"], 0, client=client)
    assert plan.klines_requests == 0


def test_unknown_exchange_id_is_rejected(duck: MarketStore) -> None:
    with pytest.raises(ValueError, match="unknown exchange 'binanse'"):
        download_candles(duck, "binanse", ["BTC/USDT"], ["1m"], 0)


def test_cli_download_shows_a_summary_and_resumes(btc: Candles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    import pivotal.data.download as download_module
    from pivotal.cli.main import app

    args = ["data", "download", "--symbols", "BTC/USDT", "--timeframes", "1m", "--since", str(int(btc.ts[0]))]
    args += ["--until", str(int(btc.ts[1200])), "--data-dir", str(tmp_path / "cli")]
    runner = CliRunner(env={"COLUMNS": "200"})
    with FakeBinance({("BTCUSDT", "1m"): btc}) as fake:
        monkeypatch.setattr(download_module, "make_client", lambda exchange_id: fake.ccxt_client())
        first = runner.invoke(app, args)
        second = runner.invoke(app, args)
        bad = runner.invoke(app, [*args[:4], "--timeframes", "1m,7m", *args[6:]])
    assert first.exit_code == 0, first.output
    assert "BTC/USDT" in first.output and "1200" in first.output
    assert second.exit_code == 0 and " 0 " in second.output  # nothing new: resumed at the end
    assert bad.exit_code == 1 and "unknown timeframe '7m'" in bad.output
    stored = DuckDBStore(tmp_path / "cli" / "pivotal.duckdb")
    try:
        assert stored.candles("binance", "BTC/USDT", "1m").equals(with_labels(btc.slice(0, 1200), "BTC/USDT"))
    finally:
        stored.close()


CHILD = """
import sys
sys.path.insert(0, {repo!r})
from pivotal.data.download import download_candles
from pivotal.data.duckdb_store import DuckDBStore
from tests.fakes.binance_server import ccxt_client_for
store = DuckDBStore({db!r})
download_candles(store, "binance", ["BTC/USDT"], ["1m"], {since}, client=ccxt_client_for({url!r}, timeout_ms=60_000))
"""


def test_resume_after_the_process_is_killed_mid_request(btc: Candles, tmp_path: Path) -> None:
    """SIGKILL a real download process while it waits for its third page, then resume in this process."""
    db = tmp_path / "killed.duckdb"
    plan = FaultPlan({3: "slow"}, slow_s=30.0)
    expected = with_labels(btc.slice(0, len(btc) - 1), "BTC/USDT")
    with FakeBinance({("BTCUSDT", "1m"): btc}, now_ms=open_bar_clock(btc), plan=plan) as fake:
        code = CHILD.format(repo=str(Path(__file__).parents[2]), db=str(db), since=int(btc.ts[0]), url=fake.url)
        child = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while plan.klines_requests < 3 and child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            detail = child.stderr.read().decode() if child.poll() is not None else "timed out"  # type: ignore[union-attr]
            assert plan.klines_requests == 3, f"child stopped after {plan.klines_requests} page requests: {detail}"
        finally:
            child.kill()
            child.wait()
        store = DuckDBStore(db)
        try:
            survived = store.candles("binance", "BTC/USDT", "1m")
            assert survived.equals(expected.slice(0, 2000)), f"{len(survived)} rows survived the kill, expected 2000"
            [result] = download_candles(store, "binance", ["BTC/USDT"], ["1m"], int(btc.ts[0]), client=fake.ccxt_client())
            assert result.resumed_from == int(expected.ts[1999]) + MINUTE
            assert_stored_equals(store, expected)
        finally:
            store.close()
