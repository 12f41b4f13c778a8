"""The capture's parts without a network, on hand-written messages: the sequence keeper, the bounded spool, the
writer during a store outage (fault injection on a real DuckDB store) and the rebuild from stored rows."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pivotal.core.errors import StoreUnavailable
from pivotal.data.duckdb_store import DuckDBStore
from pivotal.services.capture import (
    CaptureBatch,
    CaptureError,
    DepthDiff,
    DepthSnapshot,
    DepthSync,
    Spool,
    StoreWriter,
    diff_rows,
    rebuild_from_store,
    snapshot_rows,
)


def diff(first: int, final: int, bids: list[tuple[float, float]] = (), asks: list[tuple[float, float]] = ()) -> DepthDiff:  # type: ignore[assignment]
    return DepthDiff(final * 1000, first, final, None, final, None, list(bids), list(asks))


SNAP = DepthSnapshot(1, 10, [(100.0, 1.0), (99.0, 2.0)], [(101.0, 1.5), (102.0, 3.0)], None, None)


def test_raw_binance_payload_is_read_exactly() -> None:
    d = DepthDiff.from_binance({"e": "depthUpdate", "E": 7, "U": 11, "u": 12, "b": [["100.5", "0.00100000"]], "a": []}, 5)
    assert d == DepthDiff(5, 11, 12, None, 7, None, [(100.5, 0.001)], [])
    f = DepthDiff.from_binance({"E": 7, "T": 6, "U": 11, "u": 12, "pu": 9, "b": [], "a": [["1", "0"]]}, 5)
    assert (f.prev_final_update_id, f.transaction_ts_ms, f.asks) == (9, 6, [(1.0, 0.0)])


def test_sync_asks_for_a_snapshot_then_bridges_and_detects_a_gap() -> None:
    sync = DepthSync("X/Y")
    assert sync.on_diff(diff(9, 10)) is True  # no book yet: a snapshot is needed
    assert sync.on_diff(diff(11, 12, bids=[(100.0, 0.0)])) is False  # buffered, already asked
    assert sync.on_snapshot(SNAP) is False  # u=10 stale, 11..12 bridges lastUpdateId+1
    assert sync.book.best_bid() == (99.0, 2.0) and sync.book.last_update_id == 12
    assert sync.is_new(diff(13, 13)) and not sync.is_new(diff(13, 13))  # a duplicate is dropped and counted
    assert sync.counters.duplicates == 1
    assert sync.is_new(diff(14, 14)) and sync.is_new(diff(13, 13)) is False and sync.is_new(diff(7, 8))
    assert (sync.counters.duplicates, sync.counters.late) == (2, 1)  # 13 seen before; 7..8 late but new
    assert sync.on_diff(diff(13, 13, asks=[(101.0, 0.5)])) is False
    assert sync.on_diff(diff(15, 16)) is True  # 14 is missing
    assert (sync.counters.gaps, sync.counters.gap_at, sync.waiting) == (1, [16], True)
    assert sync.on_diff(diff(17, 17)) is False
    newer = DepthSnapshot(2, 16, [(98.0, 1.0)], [(103.0, 1.0)])
    assert sync.on_snapshot(newer) is False
    assert sync.book.last_update_id == 17 and sync.book.best_ask() == (103.0, 1.0)
    assert sync.on_snapshot(DepthSnapshot(3, 5, [], [])) is False  # nothing buffered: nothing to bridge
    assert sync.on_diff(diff(20, 21)) is True  # ... until the next message, which does not bridge 5


def test_a_snapshot_older_than_the_buffer_asks_for_a_newer_one() -> None:
    sync = DepthSync("X/Y")
    sync.on_diff(diff(20, 21))
    assert sync.on_snapshot(SNAP) is True  # lastUpdateId 10, first buffered U=20: cannot bridge
    assert sync.waiting


def test_spool_round_trip_in_order_and_bounded(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "q", max_bytes=200_000)
    rows = diff_rows([diff(11, 12, bids=[(100.0, 1.0)], asks=[(101.0, 0.0)]), diff(13, 13, bids=[(99.5, 2.0)])])
    spool.append(CaptureBatch("depth_updates", "binance", "BTC/USDT", rows))
    spool.append(CaptureBatch("depth_snapshot", "binance", "BTC/USDT", snapshot_rows(SNAP)))
    seen: list[CaptureBatch] = []
    again = Spool(tmp_path / "q", max_bytes=200_000)  # a restarted capture finds the spooled batches
    assert len(again) == 2
    assert again.drain(seen.append) == 2 and len(again) == 0 and again.bytes == 0
    assert [b.kind for b in seen] == ["depth_updates", "depth_snapshot"]
    pd.testing.assert_frame_equal(seen[0].rows, rows)
    assert seen[0].symbol == "BTC/USDT" and list(seen[1].rows.level) == [0, 1, 0, 1]
    tiny = Spool(tmp_path / "tiny", max_bytes=100)
    with pytest.raises(CaptureError, match=r"spool .* is full .* raise --spool-mb"):
        tiny.append(CaptureBatch("depth_updates", "binance", "BTC/USDT", rows))
    assert len(tiny) == 0 and not list((tmp_path / "tiny").iterdir())


class DownStore:
    """A real store that refuses writes while ``down`` is set (fault injection)."""

    def __init__(self, store: DuckDBStore) -> None:
        self.store, self.down = store, True
        self.calls: list[int] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.store, name)
        if not name.startswith("write_"):
            return attr

        def write(exchange: Any, symbol: Any = None, rows: Any = None, **kw: Any) -> Any:
            if self.down:
                raise StoreUnavailable("injected outage")
            self.calls.append(int(rows.final_update_id.iloc[0]))
            return attr(exchange, symbol, rows, **kw)

        return write


def test_writer_spools_during_an_outage_and_drains_in_capture_order(tmp_path: Path) -> None:
    duck = DuckDBStore(tmp_path / "s.duckdb")
    store = DownStore(duck)
    writer = StoreWriter(store, Spool(tmp_path / "spool"), retry_s=0.02)
    for u in range(11, 16):
        writer.put(CaptureBatch("depth_updates", "binance", "BTC/USDT", diff_rows([diff(u, u, bids=[(100.0 + u, 1.0)])])))
    deadline = time.monotonic() + 10
    while writer.counters.spooled < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writer.counters.spooled == 5 and duck.depth_updates("binance", "BTC/USDT").empty
    store.down = False
    writer.put(CaptureBatch("depth_updates", "binance", "BTC/USDT", diff_rows([diff(16, 16, bids=[(116.0, 1.0)])])))
    writer.close()
    assert store.calls == [11, 12, 13, 14, 15, 16]  # the spool first, oldest first, then the new batch
    assert writer.counters.drained == 5 and len(writer.spool) == 0
    assert sorted(duck.depth_updates("binance", "BTC/USDT").final_update_id) == [11, 12, 13, 14, 15, 16]
    duck.close()


def test_rebuild_from_store_resyncs_at_a_stored_snapshot(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "s.duckdb")
    store.write_depth_snapshot("binance", "X/Y", snapshot_rows(SNAP))
    diffs = [diff(9, 10, bids=[(97.0, 1.0)]), diff(11, 12, bids=[(100.0, 0.0)]), diff(13, 13, asks=[(101.0, 0.5)])]
    diffs += [diff(15, 16, bids=[(50.0, 1.0)]), diff(17, 18, asks=[(103.0, 0.0)])]  # 14 lost; snapshot 16 stored
    store.write_depth_updates("binance", "X/Y", diff_rows(diffs))
    store.write_depth_snapshot("binance", "X/Y", snapshot_rows(DepthSnapshot(2, 16, [(98.0, 1.0)], [(103.0, 1.0), (104.0, 2.0)])))
    r = rebuild_from_store(store, "binance", "X/Y")
    assert list(r.update_id) == [12, 13, 18]
    assert list(r.bid_px) == [99.0, 99.0, 98.0] and list(r.ask_px) == [101.0, 101.0, 104.0]
    assert list(r.ask_qty) == [1.5, 0.5, 2.0]
    assert (r.snapshots_used, r.gaps, r.before_snapshot, r.covered, r.unbridged) == (2, 1, 1, 1, 0)
    store.close()


def test_rebuild_counts_a_hole_no_snapshot_explains(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "s.duckdb")
    store.write_depth_snapshot("binance", "X/Y", snapshot_rows(SNAP))
    store.write_depth_updates("binance", "X/Y", diff_rows([diff(11, 12, bids=[(1.0, 1.0)]), diff(15, 16, bids=[(2.0, 1.0)])]))
    r = rebuild_from_store(store, "binance", "X/Y")
    assert list(r.update_id) == [12] and (r.gaps, r.unbridged) == (1, 1)
    store.close()
