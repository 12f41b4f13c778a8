"""COB (consolidated order book) features per second from an exact L2 book and trade prints; causal and incremental.

Why: the multi-modal design feeds the models 1 s order-book aggregates (±20 price buckets around the mid, $10 for
BTC and $1 for ETH, imbalance moving averages over 1/5/15/60 s on the ±5 nearest buckets, aggressor flow). They are
only worth training on if the live values equal the training values, so there is one step function
(``_close_second``) used by both the batch kernel (``cob_features``, one numba pass over stored depth) and the live
engine (``CobEngine``, one call per message): batch ≡ incremental by construction, and tested.

Time and causality. Events are taken in stream order (depth messages by exchange event time ``E``, trades by trade
time; a depth message goes first on a tie). The row of second ``s`` (``ts`` = s, epoch ms, exchange clock) is the
book as of the last message with ``E < s + 1000`` plus the trades of that second; it is emitted when the first event
of a later second arrives, and ``known_at`` is that event's time: nothing after ``known_at`` went into it and it is
never revised (a trade that arrives late counts in the still-open second). Seconds without any event are emitted
with the unchanged book. Rows start at the second of the first applied depth message after the snapshot; a sequence
gap raises ``SequenceGap`` (resync from a new snapshot; the missing interval has no rows).

Buckets. With ``c = floor(mid / bucket_size)``, bucket ``k`` (``-n .. n-1``) covers prices
``[(c + k) * size, (c + k + 1) * size)``; bucket 0 holds the mid. Per bucket: bid and ask volume (base units),
imbalance ``(bid - ask) / (bid + ask)`` (0 when empty) and the VWAP of its levels (NaN when empty). The ``±ma_buckets``
nearest (``k = -m .. m-1``) get moving averages of their imbalance over each window (mean of the rows whose second
lies in the window; a window still filling uses the rows it has), and so does ``agg_imbalance``, the imbalance of
their summed volumes. ``buy_ratio`` = aggressor-buy volume / total in the second (0.5 without trades, as in
``features.order_flow``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numba import njit

from pivotal.core.errors import UserInputError
from pivotal.data.orderbook.book import APPLY, GAP_BRIDGE, GAP_RULES, NO_PU, STALE, OrderBook, SequenceGap, sequence_status
from pivotal.data.orderbook.messages import DepthMessages
from pivotal.data.orderbook.replay import snapshot_sides
from pivotal.data.orderbook.side import side_best, side_set
from pivotal.data.trades import Trades

__all__ = [
    "DEFAULT_BUCKET_SIZES",
    "ORDER_BOOK_SIZE",
    "CobConfig",
    "CobEngine",
    "CobFeatures",
    "Heatmap",
    "cob_features",
    "cob_heatmap",
    "order_book_at",
    "order_book_vector",
]

# Length of the default ``order_book_vector`` (``CobConfig.vector_size`` of the default buckets and windows).
ORDER_BOOK_SIZE = 4 * 40 + 4 * 10 + 1 + 4 + 2

# The references' bucket sizes (quote currency per bucket) by base asset.
DEFAULT_BUCKET_SIZES: dict[str, float] = {"BTC": 10.0, "ETH": 1.0}

# fixed float columns before the per-bucket blocks
_BEST_BID, _BEST_ASK, _MID, _SPREAD, _BUY, _SELL, _BUY_RATIO, _AGG = range(8)
_FIXED = 8


@dataclass(frozen=True)
class CobConfig:
    """Bucket size (quote units), ``buckets`` per side of the mid, ``ma_buckets`` per side for the imbalance moving
    averages, and their ``ma_windows`` in seconds."""

    bucket_size: float
    buckets: int = 20
    ma_buckets: int = 5
    ma_windows: tuple[int, ...] = (1, 5, 15, 60)

    def __post_init__(self) -> None:
        if not (self.bucket_size > 0 and np.isfinite(self.bucket_size)):
            raise UserInputError(f"COB bucket_size must be a positive number (got {self.bucket_size})")
        if self.buckets < 1 or not 1 <= self.ma_buckets <= self.buckets:
            raise UserInputError(f"COB buckets must be >= 1 and ma_buckets in 1..buckets (got {self.buckets}, {self.ma_buckets})")
        if not self.ma_windows or min(self.ma_windows) < 1:
            raise UserInputError(f"COB ma_windows must be whole seconds >= 1 (got {self.ma_windows})")

    @classmethod
    def for_symbol(cls, symbol: str, bucket_size: float | None = None) -> CobConfig:
        """The configured ``bucket_size`` or the reference default of the symbol's base asset (BTC $10, ETH $1)."""
        if bucket_size is not None:
            return cls(bucket_size)
        base = symbol.upper().replace("-", "/").split("/")[0]
        for asset, size in DEFAULT_BUCKET_SIZES.items():
            if base == asset or (base.startswith(asset) and "/" not in symbol):
                return cls(size)
        raise UserInputError(f"no default COB bucket size for {symbol!r} (defaults: {DEFAULT_BUCKET_SIZES}); pass --bucket-size")

    @property
    def width(self) -> int:
        """Number of buckets (2 × buckets)."""
        return 2 * self.buckets

    @property
    def columns(self) -> int:
        return _FIXED + len(self.ma_windows) + 4 * self.width + len(self.ma_windows) * 2 * self.ma_buckets

    @property
    def vector_size(self) -> int:
        """Length of ``order_book_vector`` rows: 4 blocks of buckets, the imbalance MAs, the aggregate imbalance and
        its MAs, buy ratio and spread (207 with the defaults; ``InputSpec.order_book`` names it)."""
        nw = len(self.ma_windows)
        return 4 * self.width + nw * 2 * self.ma_buckets + 1 + nw + 2

    def offsets(self) -> np.ndarray:
        """Bucket offsets ``k`` = -buckets .. buckets-1 (0 holds the mid)."""
        return np.arange(-self.buckets, self.buckets)


@dataclass(frozen=True)
class CobFeatures:
    """Rows of per-second COB features (see module doc). ``ts``/``known_at`` epoch ms; ``updates`` = depth messages
    applied in the second. Bucket blocks are (rows, 2·buckets), bucket ``k`` at column ``k + buckets``;
    ``imbalance_ma`` is (rows, windows, 2·ma_buckets); ``agg_imbalance_ma`` (rows, windows)."""

    config: CobConfig
    ts: np.ndarray
    known_at: np.ndarray
    updates: np.ndarray
    values: np.ndarray = field(repr=False)  # (rows, config.columns) float64, sliced by the properties below

    def __len__(self) -> int:
        return len(self.ts)

    def _block(self, index: int) -> np.ndarray:
        c, w = self.config, self.config.width
        start = _FIXED + len(c.ma_windows) + index * w
        return self.values[:, start : start + w]

    best_bid = property(lambda self: self.values[:, _BEST_BID])
    best_ask = property(lambda self: self.values[:, _BEST_ASK])
    mid = property(lambda self: self.values[:, _MID])
    spread = property(lambda self: self.values[:, _SPREAD])
    buy_volume = property(lambda self: self.values[:, _BUY])
    sell_volume = property(lambda self: self.values[:, _SELL])
    buy_ratio = property(lambda self: self.values[:, _BUY_RATIO])
    agg_imbalance = property(lambda self: self.values[:, _AGG])
    agg_imbalance_ma = property(lambda self: self.values[:, _FIXED : _FIXED + len(self.config.ma_windows)])
    bid_volume = property(lambda self: self._block(0))
    ask_volume = property(lambda self: self._block(1))
    imbalance = property(lambda self: self._block(2))
    vwap = property(lambda self: self._block(3))

    @property
    def imbalance_ma(self) -> np.ndarray:
        c = self.config
        start = _FIXED + len(c.ma_windows) + 4 * c.width
        return self.values[:, start:].reshape(len(self), len(c.ma_windows), 2 * c.ma_buckets)

    def head(self, n: int) -> CobFeatures:
        return CobFeatures(self.config, self.ts[:n], self.known_at[:n], self.updates[:n], self.values[:n])

    def column_names(self) -> list[str]:
        c = self.config
        names = ["best_bid", "best_ask", "mid", "spread", "buy_volume", "sell_volume", "buy_ratio", "agg_imbalance"]
        names += [f"agg_imbalance_ma_{w}s" for w in c.ma_windows]
        for block in ("bid_volume", "ask_volume", "imbalance", "vwap"):
            names += [f"{block}_{k}" for k in c.offsets()]
        for w in c.ma_windows:
            names += [f"imbalance_ma_{w}s_{k}" for k in range(-c.ma_buckets, c.ma_buckets)]
        return names

    def to_frame(self) -> pd.DataFrame:
        """Flat table: ts, known_at, updates, then every value column (``column_names``)."""
        frame = pd.DataFrame(self.values, columns=self.column_names())
        frame.insert(0, "updates", self.updates)
        frame.insert(0, "known_at", self.known_at)
        frame.insert(0, "ts", self.ts)
        return frame


# ----------------------------------------------------------------------------------------------- kernels


@njit(cache=True)
def _bucket_start(f: float, size: float) -> tuple[float, bool]:
    """The smallest price ``x`` with ``floor(x / size) >= f``: rounded division is monotonic, so ``lo <= price <
    hi`` (``lo``, ``hi`` of ``f``, ``f + 1``) holds exactly when ``floor(price / size) == f``. ``f · size`` lies a few
    ulps from it, except near 0 (bucket 0: ``x / size`` underflows over a wide range of tiny ``x``); after 64 steps
    it gives up (False) and the caller divides per level instead."""
    x = f * size
    for _ in range(64):
        if np.floor(x / size) < f:
            break
        x = np.nextafter(x, -np.inf)
    else:
        return x, False
    for _ in range(64):
        if np.floor(x / size) >= f:
            return x, True
        x = np.nextafter(x, np.inf)
    return x, False


@njit(cache=True)
def _bucket_side(
    keys: np.ndarray, qtys: np.ndarray, cnt: np.ndarray, order: np.ndarray, meta: np.ndarray,
    sign: float, size: float, center: float, n: int, vol: np.ndarray, pv: np.ndarray,
) -> None:  # fmt: skip
    """Add the levels of one side from its best level outwards into bucket volume / price×volume sums, stopping at
    the first level beyond the ±n buckets (bids: below; asks: above).

    Why this shape: levels come sorted, so each bucket is one run of levels. The run is summed in registers (same
    additions in the same order as ``vol[j] += q`` per level, so bit-identical) and the bucket of a level is found
    by comparing its price with the run's exact bounds (``_bucket_start``); the division only runs when the bucket
    changes (docs/orderbook.md, benchmark: ~5 % faster COB pass than a division and ``vol[j] +=`` per level)."""
    width = 2 * n
    bids = sign > 0.0
    lo = np.inf  # empty range: the first level opens a run
    hi = -np.inf
    j = -1
    inside = False
    acc_v = 0.0
    acc_p = 0.0
    for p in range(meta[0] - 1, -1, -1):
        b = order[p]
        for i in range(cnt[b] - 1, -1, -1):
            price = sign * keys[b, i]
            # prices move away from the run's first level (bids down, asks up): one bound can be crossed
            if (price < lo) if bids else (price >= hi):
                if inside:
                    vol[j] = acc_v
                    pv[j] = acc_p
                f = np.floor(price / size)
                j = int(f - center) + n
                if bids:
                    if j < 0:
                        return
                elif j >= width:
                    return
                lo, exact_lo = _bucket_start(f, size)
                hi, exact_hi = _bucket_start(f + 1.0, size)
                if not (exact_lo and exact_hi):  # no exact bounds: an empty range, so every level divides
                    lo = np.inf
                    hi = -np.inf
                inside = 0 <= j < width
                if inside:
                    acc_v = vol[j]
                    acc_p = pv[j]
            if inside:
                acc_v += qtys[b, i]
                acc_p += price * qtys[b, i]
    if inside:
        vol[j] = acc_v
        pv[j] = acc_p


@njit(cache=True)
def _close_second(
    b0: np.ndarray, b1: np.ndarray, b2: np.ndarray, b3: np.ndarray, b5: np.ndarray,
    a0: np.ndarray, a1: np.ndarray, a2: np.ndarray, a3: np.ndarray, a5: np.ndarray,
    sec: int, buy: float, sell: float, size: float, n: int, m: int, windows: np.ndarray,
    ring_ts: np.ndarray, ring_imb: np.ndarray, ring_agg: np.ndarray, ring_state: np.ndarray, row: np.ndarray,
) -> None:  # fmt: skip
    """Fill ``row`` for second ``sec`` from the two book sides (``data.orderbook.side`` arrays) and the second's
    trade volumes; push the ±m imbalances into the ring used by the moving averages."""
    width = 2 * n
    nw = windows.shape[0]
    base = _FIXED + nw
    bid_vol = row[base : base + width]
    ask_vol = row[base + width : base + 2 * width]
    imb = row[base + 2 * width : base + 3 * width]
    vwap = row[base + 3 * width : base + 4 * width]
    ma = row[base + 4 * width :]
    bid_vol[:] = 0.0
    ask_vol[:] = 0.0
    vwap[:] = 0.0  # price × qty sums until divided below
    row[_BUY] = buy
    row[_SELL] = sell
    row[_BUY_RATIO] = buy / (buy + sell) if buy + sell > 0.0 else 0.5
    best_bid, _ = side_best(b0, b1, b2, b3, b5)
    best_ask, _ = side_best(a0, a1, a2, a3, a5)
    best_ask = -best_ask
    row[_BEST_BID] = best_bid
    row[_BEST_ASK] = best_ask
    if b5[0] == 0 or a5[0] == 0:
        row[_MID] = np.nan
        row[_SPREAD] = np.nan
        imb[:] = 0.0
        vwap[:] = np.nan
    else:
        mid = (best_bid + best_ask) / 2.0
        row[_MID] = mid
        row[_SPREAD] = best_ask - best_bid
        center = np.floor(mid / size)
        _bucket_side(b0, b1, b2, b3, b5, 1.0, size, center, n, bid_vol, vwap)
        _bucket_side(a0, a1, a2, a3, a5, -1.0, size, center, n, ask_vol, vwap)
        for j in range(width):
            total = bid_vol[j] + ask_vol[j]
            if total > 0.0:
                imb[j] = (bid_vol[j] - ask_vol[j]) / total
                vwap[j] = vwap[j] / total
            else:
                imb[j] = 0.0
                vwap[j] = np.nan
    sb = 0.0
    sa = 0.0
    for j in range(n - m, n + m):
        sb += bid_vol[j]
        sa += ask_vol[j]
    row[_AGG] = (sb - sa) / (sb + sa) if sb + sa > 0.0 else 0.0
    # ring of the last len(ring_ts) seconds: state = (count, next slot)
    cap = ring_ts.shape[0]
    slot = ring_state[1]
    ring_ts[slot] = sec
    for k in range(2 * m):
        ring_imb[slot, k] = imb[n - m + k]
    ring_agg[slot] = row[_AGG]
    ring_state[1] = (slot + 1) % cap
    if ring_state[0] < cap:
        ring_state[0] += 1
    count = ring_state[0]
    oldest = (ring_state[1] - count) % cap
    for w in range(nw):
        lo = sec - (windows[w] - 1) * 1000
        used = 0
        acc_agg = 0.0
        for k in range(2 * m):
            ma[w * 2 * m + k] = 0.0
        # ring seconds strictly increase, so only the newest windows[w] entries can lie in the window
        for q in range(max(0, count - windows[w]), count):
            s = (oldest + q) % cap
            if ring_ts[s] >= lo:
                used += 1
                acc_agg += ring_agg[s]
                for k in range(2 * m):
                    ma[w * 2 * m + k] += ring_imb[s, k]
        row[_FIXED + w] = acc_agg / used
        for k in range(2 * m):
            ma[w * 2 * m + k] /= used


@njit(cache=True)
def _run(
    b0: np.ndarray, b1: np.ndarray, b2: np.ndarray, b3: np.ndarray, b4: np.ndarray, b5: np.ndarray, b6: np.ndarray,
    a0: np.ndarray, a1: np.ndarray, a2: np.ndarray, a3: np.ndarray, a4: np.ndarray, a5: np.ndarray, a6: np.ndarray,
    last: int,
    m_start: np.ndarray, m_first: np.ndarray, m_final: np.ndarray, m_prev: np.ndarray, m_event: np.ndarray,
    is_bid: np.ndarray, price: np.ndarray, qty: np.ndarray, t_ts: np.ndarray, t_qty: np.ndarray, t_sell: np.ndarray,
    size: float, n: int, m: int, windows: np.ndarray,
    out: np.ndarray, out_ts: np.ndarray, out_known: np.ndarray, out_updates: np.ndarray, top: np.ndarray,
) -> tuple[int, int, int, int, int]:  # fmt: skip
    """Batch replay (module doc): returns (rows, status, message index, expected, received); status is a
    ``sequence_status`` gap code or 0. ``top`` (messages × 4, or 0 rows for none) receives the best bid / ask
    (price, qty) after every message, as ``replay_top_of_book``."""
    cap = int(windows.max())
    ring_ts = np.zeros(cap, dtype=np.int64)
    ring_imb = np.zeros((cap, 2 * m), dtype=np.float64)
    ring_agg = np.zeros(cap, dtype=np.float64)
    ring_state = np.zeros(2, dtype=np.int64)
    n_msg = m_first.shape[0]
    n_tr = t_ts.shape[0]
    i = 0
    j = 0
    r = 0
    bridged = False
    open_sec = -1
    buy = 0.0
    sell = 0.0
    updates = 0
    with_top = top.shape[0] > 0
    while i < n_msg or j < n_tr:
        depth = i < n_msg and (j >= n_tr or m_event[i] <= t_ts[j])
        if depth:
            code, expected, received = sequence_status(last, bridged, m_first[i], m_final[i], m_prev[i])
            if code == STALE:
                if with_top:
                    top[i, 0], top[i, 1] = side_best(b0, b1, b2, b3, b5)
                    ask, top[i, 3] = side_best(a0, a1, a2, a3, a5)
                    top[i, 2] = -ask
                i += 1
                continue
            if code != APPLY:
                return r, code, i, expected, received
            t = m_event[i]
        else:
            if open_sec < 0:
                j += 1
                continue
            t = t_ts[j]
        sec = (t // 1000) * 1000
        if open_sec < 0:
            open_sec = sec
        while open_sec < sec:
            _close_second(
                b0, b1, b2, b3, b5, a0, a1, a2, a3, a5, open_sec, buy, sell, size, n, m, windows,
                ring_ts, ring_imb, ring_agg, ring_state, out[r],
            )  # fmt: skip
            out_ts[r] = open_sec
            out_known[r] = t
            out_updates[r] = updates
            r += 1
            buy = 0.0
            sell = 0.0
            updates = 0
            open_sec += 1000
        if depth:
            for k in range(m_start[i], m_start[i + 1]):
                if is_bid[k]:
                    side_set(b0, b1, b2, b3, b4, b5, b6, price[k], qty[k])
                else:
                    side_set(a0, a1, a2, a3, a4, a5, a6, -price[k], qty[k])
            last = m_final[i]
            bridged = True
            updates += 1
            if with_top:
                top[i, 0], top[i, 1] = side_best(b0, b1, b2, b3, b5)
                ask, top[i, 3] = side_best(a0, a1, a2, a3, a5)
                top[i, 2] = -ask
            i += 1
        else:
            if t_sell[j]:
                sell += t_qty[j]
            else:
                buy += t_qty[j]
            j += 1
    return r, 0, -1, 0, 0


# ------------------------------------------------------------------------------------------------- batch


def _trade_arrays(trades: Trades | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if trades is None or len(trades) == 0:
        return np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.bool_)
    return (
        np.ascontiguousarray(trades.ts, dtype=np.int64),
        np.ascontiguousarray(trades.amount, dtype=np.float64),
        np.ascontiguousarray(trades.is_buyer_maker, dtype=np.bool_),
    )


def cob_features(
    snapshot: tuple[int, np.ndarray, np.ndarray],
    messages: DepthMessages,
    trades: Trades | None,
    config: CobConfig,
    top: np.ndarray | None = None,
) -> CobFeatures:
    """All closed seconds of a capture in one numba pass: ``snapshot`` = (lastUpdateId, bids, asks) as from
    ``data.orderbook.messages.snapshot_levels``; ``trades`` of the same symbol (or None). Raises ``SequenceGap``.

    ``top``, if given (float64, ``len(messages)`` × 4), receives the best bid price / qty and best ask price / qty
    after every message in the same pass (equal to ``replay_top_of_book``): a per-message top-of-book signal next to
    the per-second rows without a second replay."""
    last_id = snapshot[0]
    bid_side, ask_side = snapshot_sides(snapshot, messages.rows)
    t_ts, t_qty, t_sell = _trade_arrays(trades)
    times = messages.event_ms
    span = int(max(times.max(), t_ts.max() if len(t_ts) else times.max()) - times.min()) if len(times) else 0
    rows = span // 1000 + 2
    out = np.empty((rows, config.columns), np.float64)
    out_ts, out_known, out_updates = (np.empty(rows, np.int64) for _ in range(3))
    windows = np.asarray(config.ma_windows, dtype=np.int64)
    if top is None:
        top = np.empty((0, 4), np.float64)
    elif top.shape != (len(messages), 4) or top.dtype != np.float64:
        raise UserInputError(
            f"cob_features top must be a float64 array of shape ({len(messages)}, 4) (got {top.dtype} {top.shape})"
        )
    r, code, index, expected, received = _run(
        *bid_side, *ask_side, int(last_id),
        messages.start, messages.first_id, messages.final_id, messages.prev_id, messages.event_ms,
        messages.is_bid, messages.price, messages.qty, t_ts, t_qty, t_sell,
        float(config.bucket_size), config.buckets, config.ma_buckets, windows, out, out_ts, out_known, out_updates,
        top,
    )  # fmt: skip
    if code:
        gap = SequenceGap(
            GAP_RULES[code], int(expected), int(received), int(messages.first_id[index]), int(messages.final_id[index])
        )
        gap.message_index = int(index)
        raise gap
    return CobFeatures(config, out_ts[:r].copy(), out_known[:r].copy(), out_updates[:r].copy(), out[:r].copy())


# ------------------------------------------------------------------------------------------- incremental


class CobEngine:
    """Live COB features: feed a snapshot, then depth messages and trades in stream order; every call returns how
    many seconds it closed (their rows are appended to ``features()``). Same step function as ``cob_features``."""

    def __init__(self, config: CobConfig, book: OrderBook | None = None) -> None:
        self.config = config
        self.book = book or OrderBook()
        self._windows = np.asarray(config.ma_windows, dtype=np.int64)
        cap = int(self._windows.max())
        self._ring_ts = np.zeros(cap, dtype=np.int64)
        self._ring_imb = np.zeros((cap, 2 * config.ma_buckets), dtype=np.float64)
        self._ring_agg = np.zeros(cap, dtype=np.float64)
        self._ring_state = np.zeros(2, dtype=np.int64)
        self._open = -1
        self._buy = 0.0
        self._sell = 0.0
        self._updates = 0
        self._rows: list[np.ndarray] = []
        self._ts: list[int] = []
        self._known: list[int] = []
        self._counts: list[int] = []

    def on_snapshot(
        self, last_update_id: int, bids: Sequence[Sequence[float]] | np.ndarray, asks: Sequence[Sequence[float]] | np.ndarray
    ) -> None:
        """Apply a REST snapshot (also the resync after a ``SequenceGap``: the open second is dropped and the moving
        averages restart, as a batch replay from that snapshot does)."""
        if not self.book.synced:
            self._open = -1
            self._buy = self._sell = 0.0
            self._updates = 0
            self._ring_state[:] = 0
        self.book.apply_snapshot(last_update_id, bids, asks)

    def on_depth(
        self,
        first_update_id: int,
        final_update_id: int,
        prev_final_update_id: int | None,
        bids: Sequence[Sequence[float]] | np.ndarray,
        asks: Sequence[Sequence[float]] | np.ndarray,
        event_ms: int,
    ) -> int:
        """One diff message with its exchange event time; raises ``SequenceGap`` (then resync with ``on_snapshot``)."""
        book = self.book
        if not book.synced:
            raise SequenceGap("snapshot", -1, -1, first_update_id, final_update_id)
        pu = NO_PU if prev_final_update_id is None else prev_final_update_id
        code, _, _ = sequence_status(book.last_update_id, book.bridged, first_update_id, final_update_id, pu)
        if code == STALE:
            return 0
        if code >= GAP_BRIDGE:
            book.check_sequence(first_update_id, final_update_id, prev_final_update_id)  # raises, marks unsynced
        closed = self._advance(event_ms)
        book.apply_diff(first_update_id, final_update_id, prev_final_update_id, bids, asks)
        self._updates += 1
        return closed

    def on_trade(self, ts_ms: int, amount: float, is_buyer_maker: bool) -> int:
        """One trade print (trade time ms, base amount, Binance ``m``); ignored before the first applied message."""
        if self._open < 0:
            return 0
        closed = self._advance(ts_ms)
        if is_buyer_maker:
            self._sell += amount
        else:
            self._buy += amount
        return closed

    def _advance(self, t: int) -> int:
        sec = (t // 1000) * 1000
        if self._open < 0:
            self._open = sec
            return 0
        closed = 0
        c = self.config
        while self._open < sec:
            row = np.empty(c.columns, np.float64)
            (b0, b1, b2, b3, _, b5, _), (a0, a1, a2, a3, _, a5, _) = self.book.sides()
            _close_second(
                b0, b1, b2, b3, b5, a0, a1, a2, a3, a5, self._open, self._buy, self._sell, float(c.bucket_size),
                c.buckets, c.ma_buckets, self._windows, self._ring_ts, self._ring_imb, self._ring_agg, self._ring_state,
                row,
            )  # fmt: skip
            self._rows.append(row)
            self._ts.append(self._open)
            self._known.append(int(t))
            self._counts.append(self._updates)
            self._buy = self._sell = 0.0
            self._updates = 0
            self._open += 1000
            closed += 1
        return closed

    def features(self) -> CobFeatures:
        """Every row emitted so far (closed seconds only)."""
        c = self.config
        values = np.vstack(self._rows) if self._rows else np.empty((0, c.columns), np.float64)
        as_int = np.asarray
        return CobFeatures(c, as_int(self._ts, np.int64), as_int(self._known, np.int64), as_int(self._counts, np.int64), values)

    def last_row(self) -> np.ndarray | None:
        return self._rows[-1] if self._rows else None


def replay_incremental(
    snapshot: tuple[int, np.ndarray, np.ndarray],
    messages: DepthMessages,
    trades: Trades | None,
    config: CobConfig,
) -> CobFeatures:
    """``CobEngine`` fed message by message in the batch kernel's stream order (the live path over stored data)."""
    engine = CobEngine(config)
    engine.on_snapshot(*snapshot)
    t_ts, t_qty, t_sell = _trade_arrays(trades)
    i = j = 0
    n_msg, n_tr = len(messages), len(t_ts)
    while i < n_msg or j < n_tr:
        if i < n_msg and (j >= n_tr or messages.event_ms[i] <= t_ts[j]):
            bids, asks = messages.levels(i)
            engine.on_depth(
                int(messages.first_id[i]), int(messages.final_id[i]), messages.pu(i), bids, asks, int(messages.event_ms[i])
            )
            i += 1
        else:
            engine.on_trade(int(t_ts[j]), float(t_qty[j]), bool(t_sell[j]))
            j += 1
    return engine.features()


# --------------------------------------------------------------------------------------------- consumers


def order_book_vector(features: CobFeatures, i: int) -> np.ndarray:
    """Row ``i`` as the float32 ``BaseDataInput.order_book`` vector, scale-free and NaN-free: bucket imbalance,
    log1p bid / ask volume, VWAP offset from the mid in buckets (0 when empty), the imbalance MAs, the aggregate
    imbalance and its MAs, buy ratio and the spread in basis points of the mid."""
    c = features.config
    mid = features.mid[i]
    vwap = (features.vwap[i] - mid) / c.bucket_size
    parts = [
        features.imbalance[i],
        np.log1p(features.bid_volume[i]),
        np.log1p(features.ask_volume[i]),
        np.nan_to_num(vwap, nan=0.0),
        features.imbalance_ma[i].ravel(),
        [features.agg_imbalance[i]],
        features.agg_imbalance_ma[i],
        [features.buy_ratio[i], features.spread[i] / mid * 1e4 if mid > 0 else 0.0],
    ]
    return np.nan_to_num(np.concatenate(parts).astype(np.float32), nan=0.0)


def order_book_at(features: CobFeatures | None, t: int, max_age_ms: int = 5_000) -> np.ndarray | None:
    """The order-book vector known at ``t`` (the newest row with ``known_at <= t``), or None where no depth covers
    t: no row known yet, or the newest one describes a second that ended more than ``max_age_ms`` before t (a
    capture gap, or the end of the stored depth)."""
    if features is None or len(features) == 0:
        return None
    i = int(np.searchsorted(features.known_at, t, side="right")) - 1
    if i < 0 or t - (int(features.ts[i]) + 1000) > max_age_ms:
        return None
    return order_book_vector(features, i)


@dataclass(frozen=True)
class Heatmap:
    """Time × bucket matrices of the last ``seconds`` rows over the ``±buckets`` nearest the mid: ``prices`` holds
    each cell's bucket start, ``imbalance`` and ``volume`` (bid + ask) per cell, ``spread`` per row."""

    ts: np.ndarray
    offsets: np.ndarray
    prices: np.ndarray
    imbalance: np.ndarray
    volume: np.ndarray
    spread: np.ndarray


def cob_heatmap(features: CobFeatures, seconds: int = 300, buckets: int = 10, end: int | None = None) -> Heatmap:
    """The heatmap matrix of rows ``[end - seconds, end)`` (default: the newest ``seconds`` rows)."""
    c = features.config
    if not 1 <= buckets <= c.buckets:
        raise UserInputError(f"heatmap buckets must be in 1..{c.buckets} (got {buckets})")
    stop = len(features) if end is None else end
    start = max(0, stop - seconds)
    cols = slice(c.buckets - buckets, c.buckets + buckets)
    offsets = np.arange(-buckets, buckets)
    mid = features.mid[start:stop]
    prices = (np.floor(mid / c.bucket_size)[:, None] + offsets[None, :]) * c.bucket_size
    volume = features.bid_volume[start:stop, cols] + features.ask_volume[start:stop, cols]
    return Heatmap(
        features.ts[start:stop], offsets, prices, features.imbalance[start:stop, cols], volume, features.spread[start:stop]
    )
