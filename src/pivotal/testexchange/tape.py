"""The recorded market: candles, trades and the order book of each symbol read from ``../shared/data``, and the
time-ordered event tape the replay walks through. Nothing here is invented: every price and quantity served comes
from a recorded file (klines of the timeframes present as files, trades and depth where they were captured)."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pivotal.core.errors import DataNotFound
from pivotal.core.timeframes import TIMEFRAMES
from pivotal.data.candles import Candles
from pivotal.data.loaders import load_candles_file

# Trades further apart than this belong to different recorded segments (the files hold a few ~10-minute captures).
SEGMENT_GAP_MS = 60_000


@dataclass
class Trades:
    ts: np.ndarray
    event_ts: np.ndarray
    trade_id: np.ndarray
    price: np.ndarray
    qty: np.ndarray
    buyer_maker: np.ndarray
    segments: list[tuple[int, int]] = field(default_factory=list)

    def covers(self, t_ms: int) -> bool:
        """Is ``t_ms`` inside a recorded trade segment (so fills come from trades, not bars)?"""
        return any(lo <= t_ms <= hi for lo, hi in self.segments)

    def next_index(self, t_ms: int) -> int:
        return int(np.searchsorted(self.ts, t_ms, side="left"))


@dataclass
class Depth:
    """The REST snapshot and the diff messages after it (update ids continue from ``last_update_id``)."""

    snapshot_ms: int
    last_update_id: int
    bids: dict[float, float]
    asks: dict[float, float]
    msg_ts: np.ndarray  # event time E of each message
    msg_first: np.ndarray
    msg_final: np.ndarray
    msg_rows: list[tuple[int, int]]  # row range of each message in the arrays below
    side_is_bid: np.ndarray
    price: np.ndarray
    qty: np.ndarray
    msg_prev: np.ndarray | None = None  # pu of each message (USD-M only)
    msg_tx: np.ndarray | None = None  # transaction time T of each message (USD-M only)
    snapshot_event_ms: int | None = None  # the snapshot's E / T (USD-M only)
    snapshot_tx_ms: int | None = None


@dataclass
class SymbolData:
    symbol: str
    klines: dict[str, Candles]
    trades: Trades | None
    depth: Depth | None

    @property
    def finest(self) -> str:
        return min(self.klines, key=lambda tf: TIMEFRAMES[tf])


def _kline_files(folder: Path, symbol: str, timeframe: str) -> list[Path]:
    yearly = sorted(folder.glob(f"{symbol}-{timeframe}-*.parquet"))
    single = folder / f"{symbol}-{timeframe}.parquet"
    return yearly or ([single] if single.exists() else [])


def load_klines(folder: Path, symbol: str, timeframe: str) -> Candles | None:
    files = _kline_files(folder, symbol, timeframe)
    if not files:
        return None
    parts = [load_candles_file(f, timeframe=timeframe, exchange="binance", symbol=symbol) for f in files]
    ts = np.concatenate([p.ts for p in parts])
    order = np.argsort(ts, kind="stable")
    keep = np.concatenate([[True], np.diff(ts[order]) > 0])  # yearly files do not overlap; be safe anyway
    idx = order[keep]
    cols = [np.concatenate([getattr(p, c) for p in parts])[idx] for c in ("ts", "open", "high", "low", "close", "volume")]
    return Candles.from_columns(cols, exchange="binance", symbol=symbol, timeframe=timeframe)


def load_trades(folder: Path, symbol: str) -> Trades | None:
    path = folder / f"{symbol}-trades.parquet"
    if not path.exists():
        return None
    df = pd.read_parquet(path).sort_values(["timestamp", "trade_id"], kind="stable")
    ts = df["timestamp"].to_numpy(np.int64)
    event = df["event_ts_ms"].fillna(df["timestamp"]).to_numpy(np.int64)
    breaks = np.flatnonzero(np.diff(ts) > SEGMENT_GAP_MS)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [len(ts) - 1]])
    segments = [(int(ts[a]), int(ts[b])) for a, b in zip(starts, ends, strict=True)]
    return Trades(
        ts,
        event,
        df["trade_id"].to_numpy(np.int64),
        df["price"].to_numpy(np.float64),
        df["qty"].to_numpy(np.float64),
        df["is_buyer_maker"].to_numpy(bool),
        segments,
    )


def load_depth(folder: Path, symbol: str) -> Depth | None:
    snap_path, diff_path = folder / f"{symbol}-book_snapshot.parquet", folder / f"{symbol}-depth_updates.parquet"
    if not (snap_path.exists() and diff_path.exists()):
        return None
    snap = pd.read_parquet(snap_path)
    last_update_id = int(snap["last_update_id"].iloc[0])
    snapshot_ms = int(snap["local_ts_ns"].iloc[0]) // 1_000_000
    bids = {
        float(p): float(q)
        for p, q in zip(snap.loc[snap.side == "bid", "price"], snap.loc[snap.side == "bid", "qty"], strict=True)
    }
    asks = {
        float(p): float(q)
        for p, q in zip(snap.loc[snap.side == "ask", "price"], snap.loc[snap.side == "ask", "qty"], strict=True)
    }
    diff = pd.read_parquet(diff_path)
    diff = diff[diff["final_update_id"] > last_update_id].reset_index(drop=True)  # the documented rebuild rule
    key = diff["final_update_id"].to_numpy(np.int64)  # spot update ids are unique per message
    starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
    ends = np.concatenate([starts[1:], [len(diff)]])
    usdm = "prev_final_update_id" in diff.columns and diff["prev_final_update_id"].notna().any()

    def snap_ms(name: str) -> int | None:
        return int(snap[name].iloc[0]) if usdm and name in snap.columns and pd.notna(snap[name].iloc[0]) else None

    return Depth(
        snapshot_ms,
        last_update_id,
        bids,
        asks,
        diff["event_ts_ms"].to_numpy(np.int64)[starts],
        diff["first_update_id"].to_numpy(np.int64)[starts],
        diff["final_update_id"].to_numpy(np.int64)[starts],
        [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)],
        (diff["side"] == "bid").to_numpy(bool),
        diff["price"].to_numpy(np.float64),
        diff["qty"].to_numpy(np.float64),
        diff["prev_final_update_id"].to_numpy(np.int64)[starts] if usdm else None,
        diff["transaction_ts_ms"].to_numpy(np.int64)[starts] if usdm else None,
        snap_ms("event_ts_ms"),
        snap_ms("transaction_ts_ms"),
    )


def load_symbol(data_dir: Path, symbol: str, timeframes: tuple[str, ...], venue: str = "binance") -> SymbolData:
    """``venue``: the folder under ``data_dir`` — ``binance`` (spot) or ``binance-usdm`` (USD-M perpetuals: depth and
    trades only, no klines recorded, so that venue serves market data without bars or order matching)."""
    folder = Path(data_dir) / venue
    if venue != "binance":
        depth, trades = load_depth(folder, symbol), load_trades(folder, symbol)
        if depth is None:
            raise DataNotFound(f"test exchange: no recorded {symbol} order book under {folder}")
        return SymbolData(symbol, {}, trades, depth)
    klines = {tf: c for tf in timeframes if (c := load_klines(folder, symbol, tf)) is not None and len(c.ts)}
    if not klines:
        wanted = ", ".join(timeframes)
        raise DataNotFound(
            f"test exchange: no recorded {symbol} klines ({wanted}) under {folder}; pass --data pointing at shared/data"
        )
    return SymbolData(symbol, klines, load_trades(folder, symbol), load_depth(folder, symbol))


def default_start(markets: dict[str, SymbolData]) -> int:
    """Where the replay starts unless told: the newest recorded trade capture (so trades, depth and klines all play),
    else 1000 bars into the finest klines (so there is history to fetch)."""
    starts = [d.depth.snapshot_ms for d in markets.values() if d.depth is not None]
    if not starts:
        starts = [d.trades.segments[-1][0] for d in markets.values() if d.trades is not None]
    if starts:
        return max(starts)
    c = next(iter(markets.values())).klines
    fine = c[min(c, key=lambda tf: TIMEFRAMES[tf])]
    return int(fine.ts[min(1000, len(fine.ts) - 1)])


# --- the tape -----------------------------------------------------------------------------------------------------
# Event kinds, in the order they are processed when they share a time.
TRADE, DEPTH, BAR_OPEN, BAR_CLOSE = 0, 1, 2, 3


@dataclass(frozen=True)
class Event:
    time: int
    kind: int
    symbol: str
    index: int  # row (trade, depth message, bar) in the symbol's arrays
    timeframe: str = ""


def _source(data: SymbolData, kind: int, start_ms: int, timeframe: str = "") -> Iterator[Event]:
    s = data.symbol
    if kind == TRADE and data.trades is not None:
        tr = data.trades
        for i in range(int(np.searchsorted(tr.ts, start_ms, side="right")), len(tr.ts)):
            yield Event(int(tr.ts[i]), TRADE, s, i)
    elif kind == DEPTH and data.depth is not None:
        d = data.depth
        for i in range(int(np.searchsorted(d.msg_ts, start_ms, side="right")), len(d.msg_ts)):
            yield Event(int(d.msg_ts[i]), DEPTH, s, i)
    elif kind == BAR_OPEN:
        c = data.klines[timeframe]
        for i in range(int(np.searchsorted(c.ts, start_ms, side="right")), len(c.ts)):
            yield Event(int(c.ts[i]), BAR_OPEN, s, i, timeframe)
    elif kind == BAR_CLOSE:
        c = data.klines[timeframe]
        step = TIMEFRAMES[timeframe]
        for i in range(int(np.searchsorted(c.ts + step, start_ms, side="right")), len(c.ts)):
            yield Event(int(c.ts[i]) + step, BAR_CLOSE, s, i, timeframe)


class Tape:
    """All symbols' events after ``start_ms``, merged in time order (lazily: the files hold millions of rows)."""

    def __init__(self, markets: dict[str, SymbolData], start_ms: int) -> None:
        sources: list[Iterator[Event]] = []
        for data in markets.values():
            sources += [_source(data, TRADE, start_ms), _source(data, DEPTH, start_ms)]
            if not data.klines:  # a venue recorded without bars (USD-M): trades and depth only
                continue
            sources.append(_source(data, BAR_OPEN, start_ms, data.finest))
            sources += [_source(data, BAR_CLOSE, start_ms, tf) for tf in data.klines]
        self._merged = heapq.merge(*sources, key=lambda e: (e.time, e.kind))
        self._next: Event | None = next(self._merged, None)

    def peek(self) -> Event | None:
        return self._next

    def pop(self) -> Event:
        event = self._next
        if event is None:
            raise IndexError("the recorded tape has ended")
        self._next = next(self._merged, None)
        return event
