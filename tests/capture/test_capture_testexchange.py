"""``runtime.capture`` against the local test exchange streaming the recorded Binance BTCUSDT spot capture through the
unmodified ccxt.pro client, with injected faults: a dropped diff (a sequence gap), a duplicated diff, a disconnect,
and a store that is down for a while. What is stored is compared with the recorded files row for row, and the book
rebuilt from the store with the recorded ``bookTicker`` stream at every applied message."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pivotal.core.errors import StoreUnavailable
from pivotal.data.duckdb_store import DuckDBStore
from pivotal.data.store import MarketStore
from pivotal.runtime.capture import Capture, CaptureReport
from pivotal.services.capture import RebuildResult, Spool, StoreWriter, rebuild_from_store
from pivotal.testexchange import Faults, TestExchange
from pivotal.testexchange.tape import SymbolData
from tests.orderbook.captures import UNEXPLAINED_BY_DIFFS

pytestmark = [pytest.mark.realdata, pytest.mark.timeout(120)]

DEPTH = "btcusdt@depth@100ms"
MESSAGES = 900  # depth messages per capture (about 90 s of the recording)


class FlakyStore:
    """A real DuckDB store whose writes raise ``StoreUnavailable`` for the first ``failures`` calls (fault injection)."""

    def __init__(self, store: MarketStore, failures: int) -> None:
        self.store, self.failures, self.refused = store, failures, 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.store, name)
        if not name.startswith("write_"):
            return attr

        def write(*args: Any, **kwargs: Any) -> Any:
            if self.refused < self.failures:
                self.refused += 1
                raise StoreUnavailable("injected: store down")
            return attr(*args, **kwargs)

        return write


def _enough(r: CaptureReport) -> bool:
    """Enough received, and enough applied to the live book since the last resync caught up."""
    return r.messages >= MESSAGES and all(c.applied >= 600 for c in r.depth.values())


def _capture(
    shared: Path,
    market: dict[str, SymbolData],
    tmp: Path,
    faults: Faults | None = None,
    store: Any = None,
    speed: float = 0.0,
    venue: str = "spot",
    until: Any = None,
    **options: Any,
) -> tuple[CaptureReport, DuckDBStore, StoreWriter, list[int]]:
    duck = DuckDBStore(tmp / "capture.duckdb")
    writer = StoreWriter(store(duck) if store else duck, Spool(tmp / "spool"), retry_s=0.05)
    symbol = "BTC/USDT:USDT" if venue == "usdm" else "BTC/USDT"
    tfs = () if venue == "usdm" else ("1m",)
    with TestExchange(shared, ["BTC/USDT"], tfs, faults=faults, preloaded=market, speed=speed, venue=venue) as ex:
        capture = Capture(ex.ccxt_pro_client, [symbol], writer, backoff_base_s=0.01, flush_s=0.2, **options)
        report = asyncio.run(capture.run(duration_s=60, until=until or _enough))
        dropped = [int(p["u"]) for s, p in ex.call(lambda st: list(st.hub.dropped)) if s == DEPTH]
    writer.close()
    return report, duck, writer, dropped


def _messages(rows: pd.DataFrame) -> dict[int, list[tuple[int, str, float, float]]]:
    """u -> the message's (U, side, price, qty) rows, sorted."""
    out: dict[int, list[tuple[int, str, float, float]]] = {}
    cols = zip(rows.final_update_id, rows.first_update_id, rows.side, rows.price, rows.qty, strict=True)
    for u, first, side, price, qty in cols:
        out.setdefault(int(u), []).append((int(first), str(side), float(price), float(qty)))
    return {u: sorted(v) for u, v in out.items()}


def _recorded_between(recorded: pd.DataFrame, lo: int, hi: int) -> dict[int, list[tuple[int, str, float, float]]]:
    part = recorded[(recorded.final_update_id >= lo) & (recorded.final_update_id <= hi)]
    return _messages(part)


def _assert_matches_ticker(rebuilt: RebuildResult, ticker: pd.DataFrame) -> None:
    ids = ticker.update_id.to_numpy()
    j = np.searchsorted(ids, rebuilt.update_id, side="right") - 1  # the latest ticker at or before each message
    assert len(rebuilt.update_id) > 300 and (j >= 0).all()
    for name in ("bid_px", "bid_qty", "ask_px", "ask_qty"):
        expected = ticker[name].to_numpy()[j]
        got = getattr(rebuilt, name)
        bad = np.flatnonzero((expected != got) & ~np.isin(rebuilt.update_id, UNEXPLAINED_BY_DIFFS[("binance", "BTCUSDT")]))
        assert len(bad) == 0, f"{name} differs at u={rebuilt.update_id[bad[0]]}: {got[bad[0]]} != {expected[bad[0]]}"


def test_dropped_and_duplicated_diffs(
    shared_data: Path, btc_spot: dict[str, SymbolData], recorded_diffs: pd.DataFrame, book_ticker: pd.DataFrame, tmp_path: Path
) -> None:
    faults = Faults(streams={DEPTH: {250: "drop", 450: "duplicate", 700: "drop"}})
    report, store, writer, dropped = _capture(shared_data, btc_spot, tmp_path, faults)
    counters = report.depth["BTC/USDT"]
    assert len(dropped) == 2
    # each dropped message was seen as a gap at the message right after it and resynced from a REST snapshot, unless
    # the book was still waiting for its first message after a snapshot that already included it (the exchange runs
    # ahead of the client, so a snapshot can be hundreds of messages newer than the stream being read)
    ids = np.unique(recorded_diffs.final_update_id.to_numpy())
    lids = store.depth_snapshots("binance", "BTC/USDT").last_update_id.unique()
    for u in dropped:
        after = int(ids[np.searchsorted(ids, u) + 1])
        assert (after in counters.gap_at) != bool((lids >= u).any() and after not in counters.gap_at)
    assert counters.gaps >= 1 and counters.gaps == counters.resyncs == len(counters.gap_at)
    assert counters.duplicates == 1
    # the store holds exactly the recorded messages of the captured range, less the two that never arrived
    stored = _messages(store.depth_updates("binance", "BTC/USDT"))
    assert len(stored) == counters.messages >= MESSAGES
    expected = _recorded_between(recorded_diffs, min(stored), max(stored))
    assert set(expected) - set(stored) == set(dropped)
    assert stored == {u: rows for u, rows in expected.items() if u not in dropped}
    snaps = store.depth_snapshots("binance", "BTC/USDT")
    assert snaps.last_update_id.nunique() == counters.snapshots >= 1 + counters.gaps  # the first, one per gap
    rebuilt = rebuild_from_store(store, "binance", "BTC/USDT")
    assert rebuilt.gaps == counters.gaps and rebuilt.unbridged == 0
    _assert_matches_ticker(rebuilt, book_ticker)
    assert writer.counters.spooled == 0 and report.error is None
    store.close()


def test_disconnect_reconnects_and_the_gap_is_resynced(
    shared_data: Path, btc_spot: dict[str, SymbolData], recorded_diffs: pd.DataFrame, book_ticker: pd.DataFrame, tmp_path: Path
) -> None:
    faults = Faults(streams={DEPTH: {300: "disconnect"}})
    report, store, _, _ = _capture(shared_data, btc_spot, tmp_path, faults)
    assert "stream:btcusdt@depth@100ms#300:disconnect" in faults.served
    assert report.reconnects >= 1
    stored = _messages(store.depth_updates("binance", "BTC/USDT"))
    expected = _recorded_between(recorded_diffs, min(stored), max(stored))
    assert all(expected[u] == rows for u, rows in stored.items())  # nothing invented, nothing altered
    rebuilt = rebuild_from_store(store, "binance", "BTC/USDT")
    # what the disconnect lost is accounted for by a stored snapshot: no hole in the stored record
    assert rebuilt.unbridged == 0
    lost = sorted(set(expected) - set(stored))
    lids = np.sort(store.depth_snapshots("binance", "BTC/USDT").last_update_id.unique())
    assert all(lids[-1] >= u for u in lost)
    assert report.depth["BTC/USDT"].gaps == (1 if lost else 0)
    _assert_matches_ticker(rebuilt, book_ticker)
    store.close()


def test_store_outage_spools_to_disk_and_drains_in_order(
    shared_data: Path, btc_spot: dict[str, SymbolData], recorded_diffs: pd.DataFrame, book_ticker: pd.DataFrame, tmp_path: Path
) -> None:
    report, store, writer, _ = _capture(shared_data, btc_spot, tmp_path, store=lambda s: FlakyStore(s, failures=6))
    assert writer.counters.store_errors >= 6
    assert writer.counters.spooled >= 1 and writer.counters.drained == writer.counters.spooled
    assert len(writer.spool) == 0 and not list((tmp_path / "spool").iterdir())
    stored = _messages(store.depth_updates("binance", "BTC/USDT"))
    assert len(stored) == report.depth["BTC/USDT"].messages
    assert stored == _recorded_between(recorded_diffs, min(stored), max(stored))  # nothing lost, nothing doubled
    trades = store.trades("binance", "BTC/USDT")
    assert len(trades) == report.trades["BTC/USDT"] > 0
    assert (np.diff(trades.trade_id) == 1).all()  # no fault on the trade stream: every id once
    _assert_matches_ticker(rebuild_from_store(store, "binance", "BTC/USDT"), book_ticker)
    store.close()


def test_usdm_capture_checks_pu_and_resyncs_a_dropped_diff(
    shared_data: Path, btc_usdm: dict[str, SymbolData], recorded_usdm: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    """USD-M through ccxt.pro's ``binanceusdm``: diffs carry ``pu``; a dropped one breaks the ``pu`` chain."""
    recorded, ticker = recorded_usdm
    faults = Faults(streams={DEPTH: {300: "drop", 500: "duplicate"}})
    report, store, _, dropped = _capture(shared_data, btc_usdm, tmp_path, faults, venue="usdm")
    assert report.exchange == "binanceusdm" and len(dropped) == 1
    counters = report.depth["BTC/USDT:USDT"]
    assert counters.duplicates == 1
    stored_rows = store.depth_updates("binanceusdm", "BTC/USDT:USDT")
    stored = _messages(stored_rows)
    expected = _recorded_between(recorded, min(stored), max(stored))
    assert stored == {u: rows for u, rows in expected.items() if u not in dropped}
    assert stored_rows.prev_final_update_id.notna().all() and stored_rows.transaction_ts_ms.notna().all()
    ids = np.unique(recorded.final_update_id.to_numpy())
    after = int(ids[np.searchsorted(ids, dropped[0]) + 1])
    lids = store.depth_snapshots("binanceusdm", "BTC/USDT:USDT").last_update_id.unique()
    assert (after in counters.gap_at) or bool((lids >= dropped[0]).any())
    rebuilt = rebuild_from_store(store, "binanceusdm", "BTC/USDT:USDT")
    assert rebuilt.unbridged == 0 and rebuilt.gaps == counters.gaps
    _assert_matches_ticker(rebuilt, ticker)
    store.close()


def test_connection_rollover_reconnects_without_a_hole(
    shared_data: Path, btc_spot: dict[str, SymbolData], recorded_diffs: pd.DataFrame, book_ticker: pd.DataFrame, tmp_path: Path
) -> None:
    """The 24-hour limit, shortened to 0.3 s: the capture closes its sockets itself and carries on."""

    def rolled(r: CaptureReport) -> bool:
        return _enough(r) and r.rollovers >= 1 and r.depth["BTC/USDT"].applied >= 1000

    report, store, _, _ = _capture(shared_data, btc_spot, tmp_path, until=rolled, max_connection_ms=300, rollover_check_s=0.05)
    assert report.rollovers >= 1 and report.reconnects >= report.rollovers
    stored = _messages(store.depth_updates("binance", "BTC/USDT"))
    expected = _recorded_between(recorded_diffs, min(stored), max(stored))
    assert all(expected[u] == rows for u, rows in stored.items())
    rebuilt = rebuild_from_store(store, "binance", "BTC/USDT")
    assert rebuilt.unbridged == 0 and rebuilt.gaps == report.depth["BTC/USDT"].gaps
    _assert_matches_ticker(rebuilt, book_ticker)
    store.close()


def test_failing_rest_snapshots_are_retried_with_backoff(
    shared_data: Path, btc_spot: dict[str, SymbolData], recorded_diffs: pd.DataFrame, book_ticker: pd.DataFrame, tmp_path: Path
) -> None:
    """The depth snapshot endpoint answers 500, 503 and 429 to its first three requests (ccxt's own and the
    capture's): the capture backs off, retries and then works as usual."""
    faults = Faults(rest={"/api/v3/depth": {1: "500", 2: "503", 3: "429"}}, retry_after_s=0)
    report, store, _, _ = _capture(shared_data, btc_spot, tmp_path, faults)
    assert [f for f in faults.served if f.startswith("/api/v3/depth")] == [
        "/api/v3/depth#1:500",
        "/api/v3/depth#2:503",
        "/api/v3/depth#3:429",
    ]
    assert report.error is None and report.depth["BTC/USDT"].snapshots >= 1
    stored = _messages(store.depth_updates("binance", "BTC/USDT"))
    assert stored == _recorded_between(recorded_diffs, min(stored), max(stored))
    rebuilt = rebuild_from_store(store, "binance", "BTC/USDT")
    assert rebuilt.unbridged == 0
    _assert_matches_ticker(rebuilt, book_ticker)
    store.close()
