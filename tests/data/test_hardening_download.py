"""Issue #9, downloader: an empty or unparsable page is a fault, not the end of the data; a bad bar is quarantined.

The real ccxt binance client talks to tests/fakes/binance_server.py, which serves real recorded Binance candles and
injects the faults named below.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pivotal.data.candles import Candles
from pivotal.data.download import DownloadError, download_candles, make_client, quarantined, unfilled_spans
from pivotal.data.duckdb_store import DuckDBStore
from pivotal.data.store import MarketStore
from tests.data.test_download import FAST, MINUTE, open_bar_clock, real_1m, with_labels
from tests.fakes.binance_server import FakeBinance, FaultPlan

pytestmark = pytest.mark.realdata
NO_SLEEP = FAST


@pytest.fixture(scope="module")
def bars(shared_data: Path) -> Candles:
    """3000 real BTC/USDT 1m bars; with the clock inside the last one, 2,999 are closed (the issue's case)."""
    return real_1m(shared_data, "BTCUSDT", 100_000, 103_000)


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[MarketStore]:
    store = DuckDBStore(tmp_path / "hardening-dl.duckdb")
    yield store
    store.close()


def closed(bars: Candles) -> Candles:
    return with_labels(bars.slice(0, len(bars) - 1), "BTC/USDT")


def download(store: MarketStore, fake: FakeBinance, bars: Candles, **kwargs: object) -> list:
    client = kwargs.pop("client", None) or fake.ccxt_client()
    return download_candles(store, "binance", ["BTC/USDT"], ["1m"], int(bars.ts[0]), client=client, retry=FAST, **kwargs)  # type: ignore[arg-type]


def stored(store: MarketStore) -> Candles:
    return store.candles("binance", "BTC/USDT", "1m")


@pytest.mark.parametrize("fault", ["empty", "html200"])
def test_a_transient_empty_or_unparsable_page_mid_range_is_retried(duck: MarketStore, bars: Candles, fault: str) -> None:
    plan = FaultPlan({2: fault})
    with FakeBinance({("BTCUSDT", "1m"): bars}, now_ms=open_bar_clock(bars), plan=plan) as fake:
        [result] = download(duck, fake, bars)
    assert plan.served_faults == [fault]
    assert result.rows_written == 2999 and result.retries == 1
    assert stored(duck).equals(closed(bars))
    assert unfilled_spans(duck) == []


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("empty", "empty page"), ("html200", "unparsable answer (not JSON): '<!DOCTYPE html><html><body>Scheduled maintenance")],
)
def test_a_persistent_empty_page_is_an_error_and_the_gap_is_recorded(
    duck: MarketStore, bars: Candles, fault: str, reason: str
) -> None:
    plan = FaultPlan({n: fault for n in range(2, 200)})
    now = open_bar_clock(bars)
    with FakeBinance({("BTCUSDT", "1m"): bars}, now_ms=now, plan=plan) as fake:
        with pytest.raises(DownloadError) as info:
            download(duck, fake, bars)
        gap_start = int(bars.ts[999]) + MINUTE
        assert str(info.value).startswith(
            f"binance BTC/USDT 1m: no bars from 2024-08-10 05:20 UTC to 2024-08-11 14:39 UTC after 6 attempts ({reason}"
        )
        assert "1000 rows were stored, the missing span is recorded in the download ledger" in str(info.value)
        assert stored(duck).equals(closed(bars).slice(0, 1000))
        [span] = unfilled_spans(duck, "binance", "BTC/USDT")
        assert (span.start, span.end, span.timeframe) == (gap_start, now, "1m") and span.reason.startswith(reason)
        plan.klines_faults.clear()  # the exchange recovers: the same command resumes at the gap and fills it
        [result] = download(duck, fake, bars)
    assert result.resumed_from == gap_start
    assert stored(duck).equals(closed(bars))
    assert unfilled_spans(duck) == []


def test_cli_download_exits_1_on_a_persistent_empty_page(bars: Candles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pivotal.data.download as download_module
    from pivotal.cli.main import app

    plan = FaultPlan({n: "empty" for n in range(2, 200)})
    monkeypatch.setattr(download_module, "RetryPolicy", lambda: FAST)
    args = ["data", "download", "--symbols", "BTC/USDT", "--since", str(int(bars.ts[0])), "--data-dir", str(tmp_path / "d")]
    with FakeBinance({("BTCUSDT", "1m"): bars}, now_ms=open_bar_clock(bars), plan=plan) as fake:
        monkeypatch.setattr(download_module, "make_client", lambda exchange_id: fake.ccxt_client())
        result = CliRunner(env={"COLUMNS": "300"}).invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "no bars from 2024-08-10 05:20 UTC" in result.output and "recorded in the download ledger" in result.output


def test_a_bad_bar_is_quarantined_and_the_rest_of_its_page_is_stored(duck: MarketStore, bars: Candles) -> None:
    plan = FaultPlan({1: "badrow"})
    with FakeBinance({("BTCUSDT", "1m"): bars}, now_ms=open_bar_clock(bars), plan=plan) as fake:
        [result] = download(duck, fake, bars)
        [again] = download(duck, fake, bars)  # a rerun neither stops at that page nor stores the bad bar
    expected = closed(bars)
    assert result.quarantined == 1 and result.rows_written == 2998 and again.rows_written == 0
    got = stored(duck)
    assert int(bars.ts[1]) not in got.ts.tolist()
    assert got.equals(Candles.from_frame(expected.to_frame().drop(index=1), "binance", "BTC/USDT", "1m"))
    [bad] = quarantined(duck, "binance", "BTC/USDT")
    real_high, real_low = float(bars.high[1]), float(bars.low[1])
    assert bad.ts == int(bars.ts[1]) and bad.timeframe == "1m"
    served = [int(bars.ts[1]), float(bars.open[1]), real_low, real_high, float(bars.close[1]), float(bars.volume[1])]
    assert bad.raw == json.dumps(served)  # kept as served: high and low swapped
    assert bad.reason.startswith("field 'low': value ") and "is above open or close" in bad.reason
    assert [(g.start, g.end) for g in duck.gaps("binance", "BTC/USDT", "1m")] == [(int(bars.ts[1]), int(bars.ts[2]))]


def test_an_exact_duplicate_bar_is_dropped_not_rejected(duck: MarketStore, bars: Candles) -> None:
    plan = FaultPlan({1: "duprow", 3: "duprow"})
    with FakeBinance({("BTCUSDT", "1m"): bars}, now_ms=open_bar_clock(bars), plan=plan) as fake:
        [result] = download(duck, fake, bars)
    assert result.quarantined == 0 and result.retries == 0
    assert stored(duck).equals(closed(bars))


def test_418_and_an_html_502_are_retried_honouring_retry_after(duck: MarketStore, bars: Candles) -> None:
    plan = FaultPlan({1: "418", 3: "html502"}, retry_after_s=2)
    delays: list[float] = []
    with FakeBinance({("BTCUSDT", "1m"): bars}, now_ms=open_bar_clock(bars), plan=plan) as fake:
        [result] = download(duck, fake, bars, sleep=delays.append)
    assert plan.served_faults == ["418", "html502"] and result.retries == 2
    assert delays[0] == 2.0 and delays[1] < 2.0
    assert stored(duck).equals(closed(bars))


def test_faults_on_time_and_exchange_info_are_retried(duck: MarketStore, bars: Candles) -> None:
    plan = FaultPlan(exchange_info_faults={1: "html200", 2: "html502"}, time_faults={1: "html200", 2: "500", 3: "503"})
    with FakeBinance({("BTCUSDT", "1m"): bars}, now_ms=open_bar_clock(bars), plan=plan) as fake:
        [result] = download(duck, fake, bars)
    assert plan.served_faults == ["exchange_info:html200", "exchange_info:html502", "time:html200", "time:500", "time:503"]
    assert result.rows_written == 2999
    assert stored(duck).equals(closed(bars))


def test_a_persistent_html_time_answer_is_an_error_not_a_crash(duck: MarketStore, bars: Candles) -> None:
    plan = FaultPlan(time_faults={n: "html200" for n in range(1, 20)})
    with (
        FakeBinance({("BTCUSDT", "1m"): bars}, plan=plan) as fake,
        pytest.raises(DownloadError, match="unusable server time None"),
    ):
        download(duck, fake, bars)


def test_the_rate_limiter_is_really_on(duck: MarketStore, bars: Candles, tmp_path: Path) -> None:
    assert make_client("binance").enableRateLimit is True
    plan = FaultPlan(min_interval_s=0.03)
    with FakeBinance({("BTCUSDT", "1m"): bars}, now_ms=open_bar_clock(bars), plan=plan) as fake:
        [result] = download(duck, fake, bars)
        assert plan.rate_limited == 0 and result.retries == 0  # ccxt's limiter keeps under the server's limit
        impolite = fake.ccxt_client()
        impolite.enableRateLimit = False
        other = DuckDBStore(tmp_path / "impolite.duckdb")
        try:
            [hammered] = download(other, fake, bars, client=impolite)
            assert stored(other).equals(closed(bars))
        finally:
            other.close()
    assert plan.rate_limited > 0  # the server really limits a client without a limiter; its 429s were retried
    assert hammered.rows_written == 2999
    assert stored(duck).equals(closed(bars))
