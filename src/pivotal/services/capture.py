"""Live depth and trade capture, the parts without a network: the update-id sequence keeper, the batched store
writer with its bounded on-disk spool, and the book rebuilt from what was stored.

Why each piece (docs/orderbook.md, "Capture"):

- **Every raw diff is stored, checked or not.** The diff-depth stream is the record; the live book is only the check.
  ``DepthSync`` keeps one exact book per symbol (``data.orderbook.OrderBook``) on the raw messages: a message that
  breaks Binance's ``U``/``u``/``pu`` chain raises ``SequenceGap``; the sync counts it, buffers what follows and asks
  for a REST snapshot; the snapshot is stored too, so the stored chain is bridged exactly where the live one was.
  Duplicates (``u`` already seen) are dropped before storage and counted.
- **Nothing lost while the store is down.** ``StoreWriter`` writes batches from its own thread; a batch the store
  refuses (``StoreUnavailable``, ``OSError``) goes to ``Spool``, append-only files under the data directory, bounded
  in bytes; the spool is drained in order before any newer batch is written, so the store sees the batches in the
  order they were captured. A full spool stops the capture loudly (``CaptureError``) instead of dropping data.
- **The rebuild is the proof.** ``rebuild_from_store`` replays stored snapshots and diffs through the same book and
  yields the best bid/ask after every applied message; a gap with no stored snapshot to bridge it is counted, never
  papered over.
"""

from __future__ import annotations

import bisect
import logging
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pivotal.core.errors import PivotalError, StoreUnavailable
from pivotal.data.orderbook.book import OrderBook, SequenceGap
from pivotal.data.sql import SNAPSHOT_ROW, UPDATE_ROW
from pivotal.data.store import MarketStore
from pivotal.data.trades import Trades

log = logging.getLogger(__name__)

DIFF_COLUMNS = UPDATE_ROW  # the market store's depth-update row (data.sql)
SNAPSHOT_COLUMNS = SNAPSHOT_ROW
KINDS = ("depth_updates", "depth_snapshot", "trades")
TRANSIENT_STORE_ERRORS: tuple[type[BaseException], ...] = (StoreUnavailable, OSError)


class CaptureError(PivotalError):
    """The capture cannot continue without losing data (spool full, store rejecting rows)."""


# --- messages ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DepthDiff:
    """One raw diff-depth message as received: Binance ``U``, ``u``, ``pu`` (USD-M), ``E``, ``T`` (USD-M), levels."""

    local_ts_ns: int
    first_update_id: int
    final_update_id: int
    prev_final_update_id: int | None
    event_ts_ms: int | None
    transaction_ts_ms: int | None
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]

    @classmethod
    def from_binance(cls, message: dict[str, Any], local_ts_ns: int) -> DepthDiff:
        """From the raw ``depthUpdate`` payload (prices and quantities as strings, as Binance sends them)."""

        def levels(key: str) -> list[tuple[float, float]]:
            return [(float(p), float(q)) for p, q in message.get(key) or []]

        pu, e, t = message.get("pu"), message.get("E"), message.get("T")
        return cls(
            local_ts_ns,
            int(message["U"]),
            int(message["u"]),
            None if pu is None else int(pu),
            None if e is None else int(e),
            None if t is None else int(t),
            levels("b"),
            levels("a"),
        )


@dataclass(frozen=True)
class DepthSnapshot:
    """A REST depth snapshot: ``lastUpdateId`` and the levels, best first."""

    local_ts_ns: int
    last_update_id: int
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]
    event_ts_ms: int | None = None
    transaction_ts_ms: int | None = None


def diff_rows(diffs: Sequence[DepthDiff]) -> pd.DataFrame:
    """The store's ``depth_updates`` rows of ``diffs`` (one per message, side and level)."""
    cols: dict[str, list[Any]] = {c: [] for c in DIFF_COLUMNS}
    for d in diffs:
        for side, levels in (("bid", d.bids), ("ask", d.asks)):
            for price, qty in levels:
                cols["local_ts_ns"].append(d.local_ts_ns)
                cols["event_ts_ms"].append(d.event_ts_ms)
                cols["transaction_ts_ms"].append(d.transaction_ts_ms)
                cols["first_update_id"].append(d.first_update_id)
                cols["final_update_id"].append(d.final_update_id)
                cols["prev_final_update_id"].append(d.prev_final_update_id)
                cols["side"].append(side)
                cols["price"].append(price)
                cols["qty"].append(qty)
    frame = pd.DataFrame(cols)
    for name in ("local_ts_ns", "first_update_id", "final_update_id"):
        frame[name] = frame[name].astype("int64")
    for name in ("event_ts_ms", "transaction_ts_ms", "prev_final_update_id"):
        frame[name] = frame[name].astype("Int64")
    frame["price"] = frame["price"].astype("float64")
    frame["qty"] = frame["qty"].astype("float64")
    return frame


def snapshot_rows(snap: DepthSnapshot) -> pd.DataFrame:
    """The store's ``depth_snapshots`` rows of one snapshot (``level`` 0 = best)."""
    n_b, n_a = len(snap.bids), len(snap.asks)
    levels = list(snap.bids) + list(snap.asks)
    frame = pd.DataFrame(
        {
            "local_ts_ns": np.full(n_b + n_a, snap.local_ts_ns, dtype=np.int64),
            "event_ts_ms": pd.array([snap.event_ts_ms] * (n_b + n_a), dtype="Int64"),
            "transaction_ts_ms": pd.array([snap.transaction_ts_ms] * (n_b + n_a), dtype="Int64"),
            "last_update_id": np.full(n_b + n_a, snap.last_update_id, dtype=np.int64),
            "side": ["bid"] * n_b + ["ask"] * n_a,
            "level": np.concatenate([np.arange(n_b), np.arange(n_a)]).astype(np.int64),
            "price": np.array([p for p, _ in levels], dtype=np.float64),
            "qty": np.array([q for _, q in levels], dtype=np.float64),
        }
    )
    return frame


# --- the sequence keeper ----------------------------------------------------------------------------------------------
@dataclass
class SymbolCounters:
    """What happened to one symbol's depth stream (reported by the capture)."""

    messages: int = 0  # distinct diff messages received (and stored)
    duplicates: int = 0  # messages whose u was already received: dropped
    late: int = 0  # messages older than one already received (out of order): kept
    applied: int = 0  # applied to the live book
    stale: int = 0  # older than the snapshot they were checked against
    gaps: int = 0  # sequence breaks detected (each leads to a resync)
    resyncs: int = 0  # REST snapshots requested after a gap (or at start: see snapshots)
    snapshots: int = 0  # REST snapshots taken
    gap_at: list[int] = field(default_factory=list)  # u of each message that broke the chain


class DepthSync:
    """One symbol's live book on the raw stream, Binance's "manage a local order book" recipe with a gap check.

    ``on_diff`` returns True when a snapshot is needed (none yet, or a gap was found and none is pending): the caller
    fetches one and hands it to ``on_snapshot``. Diffs are buffered while a snapshot is awaited."""

    def __init__(self, symbol: str, max_buffer: int = 100_000) -> None:
        self.symbol = symbol
        self.book = OrderBook()
        self.counters = SymbolCounters()
        self.max_buffer = max_buffer
        self._buffer: list[DepthDiff] = []
        self._seen: set[int] = set()  # u of the messages received lately (a duplicate repeats one of them)
        self._order: deque[int] = deque()
        self._newest = -1
        self._pending = False  # a snapshot was asked for and has not arrived

    def is_new(self, diff: DepthDiff, remember: int = 100_000) -> bool:
        """False for a message already received (its ``u`` among the last ``remember``): a duplicate, counted and
        dropped. A message older than the newest but not seen before is late, not a duplicate: it is kept (stored;
        the book treats it as stale, the gap it left was already resynced)."""
        u = diff.final_update_id
        if u in self._seen or (len(self._order) >= remember and u < self._order[0]):
            self.counters.duplicates += 1
            return False
        if u < self._newest:
            self.counters.late += 1
        self._newest = max(self._newest, u)
        self._seen.add(u)
        self._order.append(u)
        if len(self._order) > remember:
            self._seen.discard(self._order.popleft())
        self.counters.messages += 1
        return True

    def on_diff(self, diff: DepthDiff) -> bool:
        if not self.book.synced:
            return self._hold(diff)
        try:
            self._apply(diff)
            return False
        except SequenceGap as gap:
            self.counters.gaps += 1
            self.counters.gap_at.append(diff.final_update_id)
            log.warning("%s: %s", self.symbol, gap)
            self.counters.resyncs += 1
            return self._hold(diff)

    def _apply(self, diff: DepthDiff) -> None:
        d = diff
        if self.book.apply_diff(d.first_update_id, d.final_update_id, d.prev_final_update_id, d.bids, d.asks):
            self.counters.applied += 1
        else:
            self.counters.stale += 1

    def _hold(self, diff: DepthDiff) -> bool:
        if len(self._buffer) >= self.max_buffer:
            self._buffer = self._buffer[len(self._buffer) // 2 :]  # the snapshot will be newer than these anyway
        self._buffer.append(diff)
        if self._pending:
            return False
        self._pending = True
        return True

    def on_snapshot(self, snap: DepthSnapshot) -> bool:
        """Apply a snapshot and the buffered diffs after it; True when a newer snapshot is still needed (the first
        buffered diff after the snapshot does not bridge it)."""
        self._pending = False
        self.counters.snapshots += 1
        self.book.apply_snapshot(snap.last_update_id, snap.bids, snap.asks)
        held, self._buffer = self._buffer, []
        for i, diff in enumerate(held):
            try:
                self._apply(diff)
            except SequenceGap:
                self._buffer = held[i:]
                self._pending = True
                return True
        return False

    @property
    def waiting(self) -> bool:
        return self._pending


# --- the bounded on-disk spool ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CaptureBatch:
    """Rows of one kind for one market, written to the store in one call."""

    kind: str  # one of KINDS
    exchange: str
    symbol: str
    rows: pd.DataFrame

    def __len__(self) -> int:
        return len(self.rows)


class Spool:
    """Append-only Parquet files ``<seq>.<kind>.parquet`` in ``folder``, at most ``max_bytes`` together; read back
    oldest first. A file is written to a temporary name and renamed, so a crash never leaves half a batch."""

    def __init__(self, folder: Path, max_bytes: int = 1 << 30) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        for tmp in self.folder.glob("*.tmp"):  # a write interrupted by a crash: never renamed, never counted
            tmp.unlink()
        files = self.files()
        self._seq = int(files[-1].name.split(".")[0]) if files else 0
        self.bytes = sum(f.stat().st_size for f in files)

    def files(self) -> list[Path]:
        return sorted(self.folder.glob("*.parquet"))

    def __len__(self) -> int:
        return len(self.files())

    def append(self, batch: CaptureBatch) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(batch.rows, preserve_index=False)
        meta = {b"exchange": batch.exchange.encode(), b"symbol": batch.symbol.encode(), b"kind": batch.kind.encode()}
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
        self._seq += 1
        final = self.folder / f"{self._seq:012d}.{batch.kind}.parquet"
        tmp = final.with_suffix(".tmp")
        pq.write_table(table, tmp)
        size = tmp.stat().st_size
        if self.bytes + size > self.max_bytes:
            tmp.unlink()
            self._seq -= 1
            raise CaptureError(
                f"capture spool {self.folder} is full ({self.bytes:,} of {self.max_bytes:,} bytes) and the store is "
                "still unavailable; bring the store back (the spool drains in order) or raise --spool-mb"
            )
        os.replace(tmp, final)
        self.bytes += size

    @staticmethod
    def read(path: Path) -> CaptureBatch:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        meta = table.schema.metadata or {}
        rows = table.to_pandas()
        return CaptureBatch(meta[b"kind"].decode(), meta[b"exchange"].decode(), meta[b"symbol"].decode(), rows)

    def drain(self, write: Callable[[CaptureBatch], None]) -> int:
        """Write every spooled batch, oldest first, deleting each once written; stops (raising) at the first failure,
        which leaves it and everything newer in place. Returns how many were written."""
        done = 0
        for path in self.files():
            size = path.stat().st_size
            write(self.read(path))
            path.unlink()
            self.bytes -= size
            done += 1
        return done


def write_batch(store: MarketStore, batch: CaptureBatch) -> int:
    """One batch into the store through its upsert API (re-writing the same rows changes nothing)."""
    if batch.kind == "depth_updates":
        return store.write_depth_updates(batch.exchange, batch.symbol, batch.rows, source="capture")
    if batch.kind == "depth_snapshot":
        return store.write_depth_snapshot(batch.exchange, batch.symbol, batch.rows, source="capture")
    if batch.kind == "trades":
        return store.write_trades(Trades.from_frame(batch.rows, batch.exchange, batch.symbol), source="capture")
    raise ValueError(f"unknown capture batch kind {batch.kind!r}")


@dataclass
class WriterCounters:
    batches: int = 0  # written to the store (directly or from the spool)
    rows: int = 0
    spooled: int = 0  # batches that went to the spool
    drained: int = 0  # spooled batches later written
    store_errors: int = 0
    last_error: str | None = None


class StoreWriter:
    """Writes batches on its own thread (the stream loop never waits on the store); see the module doc."""

    def __init__(self, store: MarketStore, spool: Spool, retry_s: float = 1.0) -> None:
        self.store, self.spool, self.retry_s = store, spool, retry_s
        self.counters = WriterCounters()
        self._queue: queue.Queue[CaptureBatch | None] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="pivotal-capture-writer", daemon=True)
        self._thread.start()

    def put(self, batch: CaptureBatch) -> None:
        """Hand a batch to the writer (never blocks); raises the writer's fatal error, if any."""
        self.raise_error()
        if len(batch):
            self._queue.put(batch)

    def raise_error(self) -> None:
        if self._error is not None:
            raise CaptureError(str(self._error)) from self._error

    def close(self, drain_timeout_s: float = 30.0) -> None:
        """Write what is queued, try once more to drain the spool, stop the thread (idempotent). Batches the store
        still refuses stay in the spool for the next capture."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(drain_timeout_s)

    def _write(self, batch: CaptureBatch) -> None:
        n = write_batch(self.store, batch)
        self.counters.batches += 1
        self.counters.rows += n

    def _drain(self) -> bool:
        """True when the spool is empty afterwards."""
        if not len(self.spool):
            return True
        try:
            self.counters.drained += self.spool.drain(self._write)
            return True
        except TRANSIENT_STORE_ERRORS as exc:
            self._note(exc)
            return False

    def _note(self, exc: BaseException) -> None:
        self.counters.store_errors += 1
        self.counters.last_error = f"{type(exc).__name__}: {exc}"

    def _deliver(self, batch: CaptureBatch) -> None:
        if self._drain():
            try:
                self._write(batch)
                return
            except TRANSIENT_STORE_ERRORS as exc:
                self._note(exc)
        self.spool.append(batch)
        self.counters.spooled += 1

    def _run(self) -> None:
        try:
            while True:
                try:
                    batch = self._queue.get(timeout=self.retry_s)
                except queue.Empty:
                    self._drain()  # the store may be back
                    continue
                if batch is None:
                    self._drain()
                    return
                self._deliver(batch)
        except BaseException as exc:  # a full spool, rows the store rejects: the capture must stop, loudly
            self._error = exc


# --- the book rebuilt from the store ------------------------------------------------------------------------------------
@dataclass
class RebuildResult:
    """``u`` of each applied message with the best bid/ask after it (NaN for an empty side)."""

    update_id: np.ndarray
    bid_px: np.ndarray
    bid_qty: np.ndarray
    ask_px: np.ndarray
    ask_qty: np.ndarray
    snapshots_used: int
    gaps: int  # chain breaks in the stored diffs
    before_snapshot: int  # messages before the first stored snapshot (nothing to apply them to)
    covered: int  # messages skipped after a break because a later stored snapshot already includes them
    unbridged: int  # messages no stored snapshot accounts for: a real hole in the stored record


def _messages(updates: pd.DataFrame) -> Iterator[tuple[int, int, int | None, np.ndarray, np.ndarray]]:
    """(U, u, pu, bids, asks) per stored message, by ``u``."""
    if updates.empty:
        return
    frame = updates.sort_values(["final_update_id", "side", "price"], kind="stable")
    u = frame["final_update_id"].to_numpy(np.int64)
    first = frame["first_update_id"].to_numpy(np.int64)
    pu_col = frame["prev_final_update_id"]
    pu = pu_col.to_numpy(dtype=np.float64, na_value=np.nan)
    is_bid = (frame["side"] == "bid").to_numpy()
    levels = np.column_stack([frame["price"].to_numpy(np.float64), frame["qty"].to_numpy(np.float64)])
    starts = np.flatnonzero(np.concatenate([[True], u[1:] != u[:-1]]))
    ends = np.concatenate([starts[1:], [len(u)]])
    for a, b in zip(starts, ends, strict=True):
        bid = is_bid[a:b]
        prev = None if np.isnan(pu[a]) else int(pu[a])
        yield int(first[a]), int(u[a]), prev, levels[a:b][bid], levels[a:b][~bid]


def rebuild_from_store(store: MarketStore, exchange: str, symbol: str) -> RebuildResult:
    """Replay the stored snapshots and diffs of one market through ``OrderBook`` in update-id order (see the module
    doc); a chain break resyncs from the newest stored snapshot taken before the breaking message's ``u``."""
    snaps = store.depth_snapshots(exchange, symbol)
    books: list[tuple[int, np.ndarray, np.ndarray]] = []
    for lid, part in snaps.groupby("last_update_id", sort=True):
        part = part.sort_values("level")
        bids = part.loc[part.side == "bid", ["price", "qty"]].to_numpy(np.float64)
        asks = part.loc[part.side == "ask", ["price", "qty"]].to_numpy(np.float64)
        books.append((int(str(lid)), bids, asks))
    lids = [b[0] for b in books]
    book = OrderBook()
    used: set[int] = set()
    out: list[tuple[int, float, float, float, float]] = []
    gaps = before = covered = unbridged = 0

    def skip(u: int) -> None:
        nonlocal before, covered, unbridged
        if not used:
            before += 1
        elif bisect.bisect_left(lids, u) < len(lids):
            covered += 1
        else:
            unbridged += 1

    def resync(u: int) -> bool:
        j = bisect.bisect_left(lids, u) - 1  # the newest snapshot this message is not stale against
        if j < 0 or (book.synced and lids[j] <= book.last_update_id) or lids[j] in used:
            return False
        used.add(lids[j])
        book.apply_snapshot(*books[j])
        return True

    for first, final, prev, bids, asks in _messages(store.depth_updates(exchange, symbol)):
        if not book.synced and not resync(final):
            skip(final)
            continue
        try:
            applied = book.apply_diff(first, final, prev, bids, asks)
        except SequenceGap:
            gaps += 1
            if not resync(final):
                skip(final)
                continue
            try:
                applied = book.apply_diff(first, final, prev, bids, asks)
            except SequenceGap:
                skip(final)
                continue
        if applied:
            bb, ba = book.best_bid(), book.best_ask()
            nan = float("nan")
            out.append((final, *(bb or (nan, nan)), *(ba or (nan, nan))))
    arr = np.array(out, dtype=np.float64).reshape(-1, 5)
    return RebuildResult(
        arr[:, 0].astype(np.int64), arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4], len(used), gaps, before, covered, unbridged
    )
