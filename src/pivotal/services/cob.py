"""Use cases of ``pivotal cob features|heatmap``: COB features of stored depth (or of shared-layout Parquet files).

Input is either the market store (``pivotal data import`` puts the Binance L2 captures there: depth snapshots and
diffs; trades) or a folder in the shared layout (``<SYMBOL>-book_snapshot|depth_updates|trades.parquet``), read with
the same importer (``read_shared``) the store is filled with. The book is rebuilt exactly from the latest snapshot at
or before the start and the features are computed by ``features.cob``; a sequence gap restarts from the next stored
snapshot (the capture's resync) and the seconds in between have no rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pivotal.core.errors import DataNotFound, UserInputError
from pivotal.data.importers.base import DepthBatch, TradeBatch
from pivotal.data.importers.shared_parquet import read_shared
from pivotal.data.orderbook.book import SequenceGap
from pivotal.data.orderbook.messages import DepthMessages, snapshot_levels
from pivotal.data.store import MarketStore
from pivotal.data.symbols import parse_shared_path
from pivotal.data.trades import Trades
from pivotal.features.cob import CobConfig, CobFeatures, Heatmap, cob_features, cob_heatmap

__all__ = ["CobInputs", "CobResult", "compute_cob", "load_cob_inputs", "render_heatmap", "write_features"]

_PRE_SNAPSHOT_NS = 10_000_000_000  # diffs received up to 10 s before a snapshot may bridge it (spot does)
_CLOSE_MS = 60_000  # read this much past ``end`` so the last second gets closed by a later event


@dataclass(frozen=True)
class CobInputs:
    """Depth snapshots (all of them, rows as stored), diff messages and trades of one market."""

    exchange: str
    symbol: str
    snapshots: pd.DataFrame
    messages: DepthMessages
    trades: Trades | None
    source: str


def load_cob_inputs(
    exchange: str,
    symbol: str,
    *,
    store: MarketStore | None = None,
    files: Path | None = None,
    start: int | None = None,
    end: int | None = None,
) -> CobInputs:
    """Read the depth and trades of (exchange, symbol) from ``files`` (a shared-layout folder) or else ``store``;
    ``start``/``end`` epoch ms bound what is read (from the snapshot before ``start``)."""
    if files is not None:
        return _from_files(exchange, symbol, files)
    if store is None:
        raise UserInputError("COB input: pass a store or a folder of shared-layout Parquet files (--files)")
    snapshots = store.depth_snapshots(exchange, symbol)
    if snapshots.empty:
        raise DataNotFound(
            f"no depth snapshot stored for {exchange} {symbol}; import the capture (pivotal data import "
            "<SYMBOL>-book_snapshot.parquet and -depth_updates.parquet) or pass --files"
        )
    first_ns = _snapshot_before(snapshots, start)
    start_ns = first_ns - _PRE_SNAPSHOT_NS
    # local (recorder) clock vs exchange clock differ by ~1 s; the margin covers it
    end_ns = None if end is None else (end + _CLOSE_MS) * 1_000_000
    updates = store.depth_updates(exchange, symbol, start_ns, end_ns)
    if updates.empty:
        raise DataNotFound(f"no depth updates stored for {exchange} {symbol} after its snapshot; import -depth_updates.parquet")
    messages = DepthMessages.from_frame(updates, f"{exchange} {symbol} depth updates")
    lo = int(messages.event_ms.min()) - _CLOSE_MS
    hi = None if end is None else end + _CLOSE_MS
    trades = store.trades(exchange, symbol, lo, hi)
    return CobInputs(exchange, symbol, snapshots, messages, trades if len(trades) else None, "store")


def _from_files(exchange: str, symbol: str, folder: Path) -> CobInputs:
    if not folder.is_dir():
        raise UserInputError(f"--files {folder}: not a folder; give the folder holding <SYMBOL>-depth_updates.parquet")
    found: dict[str, DepthBatch | TradeBatch] = {}
    for path in sorted(folder.glob("*.parquet")):
        try:
            info = parse_shared_path(path)
        except ValueError:
            continue
        if info.exchange == exchange and info.symbol == symbol and info.kind in ("book_snapshot", "depth_updates", "trades"):
            batch = read_shared(path)
            if isinstance(batch, DepthBatch | TradeBatch):
                found[info.kind] = batch
    missing = [k for k in ("book_snapshot", "depth_updates") if k not in found]
    if missing:
        raise DataNotFound(
            f"{folder}: no {' / '.join(missing)} file for {exchange} {symbol} "
            "(expected <SYMBOL>-book_snapshot.parquet and <SYMBOL>-depth_updates.parquet of that exchange folder)"
        )
    snap, upd = found["book_snapshot"], found["depth_updates"]
    assert isinstance(snap, DepthBatch) and isinstance(upd, DepthBatch)
    trades = found.get("trades")
    tr = trades.trades if isinstance(trades, TradeBatch) else None
    return CobInputs(exchange, symbol, snap.frame, DepthMessages.from_frame(upd.frame, upd.source), tr, str(folder))


def _snapshot_before(snapshots: pd.DataFrame, start: int | None) -> int:
    """local_ts_ns of the newest snapshot received at or before ``start`` (else the first one)."""
    times = np.unique(snapshots["local_ts_ns"].to_numpy(np.int64))
    if start is None:
        return int(times[0])
    i = int(np.searchsorted(times, start * 1_000_000, side="right")) - 1
    return int(times[max(i, 0)])


@dataclass(frozen=True)
class CobResult:
    """The rows, and one line per sequence gap met (each followed by a restart from the next stored snapshot, or the
    end of the rows when there is none)."""

    features: CobFeatures
    gaps: tuple[str, ...]


def compute_cob(inputs: CobInputs, config: CobConfig, start: int | None = None, end: int | None = None) -> CobResult:
    """COB rows with ``start <= ts < end`` (epoch ms; None = unbounded), restarting at the next snapshot on a gap."""
    snaps = inputs.snapshots
    start_local = _snapshot_before(snaps, start)
    firsts = snaps.groupby("last_update_id")["local_ts_ns"].min().sort_values()
    ids, times = firsts.index.to_numpy(np.int64), firsts.to_numpy(np.int64)
    candidates = [int(i) for i, t in zip(ids, times, strict=True) if t >= start_local]
    parts: list[CobFeatures] = []
    gaps: list[str] = []
    last_ts: int | None = None
    for snapshot_id in candidates:
        lid, bids, asks, _ = snapshot_levels(snaps[snaps["last_update_id"] == snapshot_id])
        try:
            part = cob_features((lid, bids, asks), inputs.messages, inputs.trades, config)
            gap = None
        except SequenceGap as exc:
            gap = exc
            part = _rows_before_gap(inputs, (lid, bids, asks), config, exc)
            gaps.append(str(exc))
        if last_ts is not None:
            part = _after(part, last_ts)
        parts.append(part)
        if len(part):
            last_ts = int(part.ts[-1])
        if gap is None:
            break
    merged = _concat(parts, config)
    lo = -(2**62) if start is None else start
    hi = 2**62 if end is None else end
    keep = (merged.ts >= lo) & (merged.ts < hi)
    rows = CobFeatures(config, merged.ts[keep], merged.known_at[keep], merged.updates[keep], merged.values[keep])
    return CobResult(rows, tuple(gaps))


def _rows_before_gap(
    inputs: CobInputs, snapshot: tuple[int, np.ndarray, np.ndarray], config: CobConfig, gap: SequenceGap
) -> CobFeatures:
    """The rows a replay emitted before the message that broke the chain (``gap.message_index``)."""
    index = len(inputs.messages) if gap.message_index is None else gap.message_index
    head = inputs.messages.head(index)
    trades = inputs.trades
    if trades is not None and index < len(inputs.messages):
        n = int(np.searchsorted(trades.ts, int(inputs.messages.event_ms[index]), side="left"))
        trades = Trades(trades.ts[:n], trades.trade_id[:n], trades.price[:n], trades.amount[:n], trades.is_buyer_maker[:n])
    return cob_features(snapshot, head, trades, config)


def _after(features: CobFeatures, ts: int) -> CobFeatures:
    keep = features.ts > ts
    return CobFeatures(features.config, features.ts[keep], features.known_at[keep], features.updates[keep], features.values[keep])


def _concat(parts: list[CobFeatures], config: CobConfig) -> CobFeatures:
    if not parts:
        return CobFeatures(
            config, np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64), np.empty((0, config.columns))
        )
    return CobFeatures(
        config,
        np.concatenate([p.ts for p in parts]),
        np.concatenate([p.known_at for p in parts]),
        np.concatenate([p.updates for p in parts]),
        np.vstack([p.values for p in parts]),
    )


def write_features(features: CobFeatures, out: Path) -> int:
    """Write the rows to ``out`` (.parquet, or .csv); the number of rows written. Nothing is left half-written."""
    suffix = out.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise UserInputError(f"--out {out}: unknown format {suffix or '(none)'}; use a .parquet or .csv file name")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    frame = features.to_frame()
    if suffix == ".parquet":
        frame.to_parquet(tmp, index=False)
    else:
        frame.to_csv(tmp, index=False)
    tmp.replace(out)
    return len(frame)


def render_heatmap(heatmap: Heatmap, out: Path, title: str) -> Path:
    """PNG of the heatmap: bucket imbalance (colour) and volume (second panel) over time, spread below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if len(heatmap.ts) == 0:
        raise DataNotFound(f"{title}: no COB rows in the interval; nothing to draw")
    out.parent.mkdir(parents=True, exist_ok=True)
    seconds = (heatmap.ts - heatmap.ts[0]) / 1000.0
    extent = (float(seconds[0]), float(seconds[-1]) + 1.0, float(heatmap.offsets[0]), float(heatmap.offsets[-1]) + 1.0)
    fig, axes = plt.subplots(3, 1, figsize=(12, 8), sharex=True, gridspec_kw={"height_ratios": [3, 3, 1]})
    im0 = axes[0].imshow(heatmap.imbalance.T, aspect="auto", origin="lower", extent=extent, cmap="RdYlGn", vmin=-1, vmax=1)
    axes[0].set_ylabel("bucket vs mid")
    axes[0].set_title(f"{title}: bid/ask imbalance per bucket")
    fig.colorbar(im0, ax=axes[0])
    im1 = axes[1].imshow(np.log1p(heatmap.volume.T), aspect="auto", origin="lower", extent=extent, cmap="viridis")
    axes[1].set_ylabel("bucket vs mid")
    axes[1].set_title("log(1 + resting volume)")
    fig.colorbar(im1, ax=axes[1])
    axes[2].plot(seconds, heatmap.spread, lw=0.8)
    axes[2].set_ylabel("spread")
    axes[2].set_xlabel(f"seconds from {pd.Timestamp(int(heatmap.ts[0]), unit='ms', tz='UTC').isoformat()}")
    fig.tight_layout()
    tmp = out.with_name(out.name + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(out)
    return out


def heatmap_of(features: CobFeatures, seconds: int, buckets: int) -> Heatmap:
    """The heatmap of the newest ``seconds`` rows (thin wrapper so the CLI needs no feature import)."""
    return cob_heatmap(features, seconds=seconds, buckets=buckets)
