"""Per-series incremental pivot tracking with persistence in the market store (spec A.5, A.7 items 6-7).

One ``WilliamsMarketStructure`` per (exchange, symbol, timeframe). ``update`` feeds the closed candles stored since the
last processed bar, writes the confirmed pivots (table ``pivots``: append-only, a pivot once written never changes)
and then the detector state (table ``pivot_state``). The writes are ordered so that a crash between them is harmless:
the next run restarts from the older state, replays the same bars and re-inserts the same pivots, which the
``ON CONFLICT DO NOTHING`` turns into no-ops.

Bar positions (``bar_index``, ``confirmed_at``) count the bars of the series from the first one the tracker saw.
The tracker assumes an append-only series: bars inserted later *before* the last processed one are not seen.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, Protocol

from pivotal.data.candles import Candles
from pivotal.core.timeframes import timeframe_ms
from pivotal.structure.incremental import WilliamsMarketStructure
from pivotal.structure.types import PivotEvent, PivotParams

DDL = (
    """CREATE TABLE IF NOT EXISTS pivots (
        exchange TEXT NOT NULL, symbol TEXT NOT NULL, timeframe TEXT NOT NULL, params_hash TEXT NOT NULL,
        level INTEGER NOT NULL, kind TEXT NOT NULL, bar_index BIGINT NOT NULL, ts BIGINT NOT NULL,
        price DOUBLE PRECISION NOT NULL, confirmed_at BIGINT NOT NULL, confirmed_ts BIGINT NOT NULL,
        PRIMARY KEY (exchange, symbol, timeframe, params_hash, level, kind, ts))""",
    """CREATE TABLE IF NOT EXISTS pivot_state (
        exchange TEXT NOT NULL, symbol TEXT NOT NULL, timeframe TEXT NOT NULL, params_hash TEXT NOT NULL,
        params TEXT NOT NULL, last_ts BIGINT NOT NULL, bars BIGINT NOT NULL, state TEXT NOT NULL, updated_ms BIGINT NOT NULL,
        PRIMARY KEY (exchange, symbol, timeframe, params_hash))""",
)
_PIVOT_COLUMNS = "exchange, symbol, timeframe, params_hash, level, kind, bar_index, ts, price, confirmed_at, confirmed_ts"
# One statement per update, columns passed as arrays: binding thousands of scalar placeholders is ~10x slower.
_PIVOTS_INSERT = (
    f"INSERT INTO pivots ({_PIVOT_COLUMNS}) SELECT ?, ?, ?, ?, UNNEST(CAST(? AS INTEGER[])), UNNEST(CAST(? AS TEXT[])), "
    "UNNEST(CAST(? AS BIGINT[])), UNNEST(CAST(? AS BIGINT[])), UNNEST(CAST(? AS DOUBLE PRECISION[])), "
    "UNNEST(CAST(? AS BIGINT[])), UNNEST(CAST(? AS BIGINT[])) ON CONFLICT DO NOTHING"
)
_STATE_UPSERT = (
    "INSERT INTO pivot_state (exchange, symbol, timeframe, params_hash, params, last_ts, bars, state, updated_ms) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (exchange, symbol, timeframe, params_hash) DO UPDATE SET "
    "params = excluded.params, last_ts = excluded.last_ts, bars = excluded.bars, state = excluded.state, "
    "updated_ms = excluded.updated_ms"
)
# DuckDB's ON CONFLICT DO UPDATE costs ~3x a plain UPDATE: once a series has a state row, update it in place.
_STATE_UPDATE = (
    "UPDATE pivot_state SET params = ?, last_ts = ?, bars = ?, state = ?, updated_ms = ? "
    "WHERE exchange = ? AND symbol = ? AND timeframe = ? AND params_hash = ?"
)

SeriesKey = tuple[str, str, str]


class SqlCandleStore(Protocol):
    """The part of ``MarketStore`` the tracker uses."""

    def candles(
        self, exchange: str, symbol: str, timeframe: str, start: int | None = None, end: int | None = None
    ) -> Candles: ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


def params_hash(params: PivotParams) -> str:
    """Stable short id of the detector parameters: pivots of different parameter sets never mix."""
    return hashlib.sha256(json.dumps(asdict(params), sort_keys=True).encode()).hexdigest()[:16]


class _Series:
    """Detector plus bookkeeping of one series."""

    def __init__(self, detector: WilliamsMarketStructure, next_index: int, last_ts: int | None) -> None:
        self.detector = detector
        self.next_index = next_index
        self.last_ts = last_ts


class PivotTracker:
    """Keeps one detector per series in memory and in the store; see the module docstring."""

    def __init__(self, params: PivotParams = PivotParams(), history: int = 8) -> None:
        self.params = params
        self.params_hash = params_hash(params)
        self._history = history
        self._series: dict[SeriesKey, _Series] = {}
        self._stores_ready: list[SqlCandleStore] = []  # held, so identity checks stay valid

    def _ensure_tables(self, store: SqlCandleStore) -> None:
        if any(ready is store for ready in self._stores_ready):
            return
        for statement in DDL:
            store.execute(statement)
        self._stores_ready.append(store)

    def _load(self, store: SqlCandleStore, key: SeriesKey) -> _Series:
        rows = store.query(
            "SELECT last_ts, bars, state FROM pivot_state "
            "WHERE exchange = ? AND symbol = ? AND timeframe = ? AND params_hash = ?",
            [*key, self.params_hash],
        )
        if not rows:
            return _Series(WilliamsMarketStructure(self.params, self._history), 0, None)
        last_ts, bars, state = rows[0]
        return _Series(WilliamsMarketStructure.from_state(json.loads(state)), int(bars), int(last_ts))

    def update(
        self, store: SqlCandleStore, exchange: str, symbol: str, timeframe: str, now_ms: int | None = None
    ) -> list[PivotEvent]:
        """Feed the stored candles closed by ``now_ms`` (default: now) that follow the last processed bar.

        Returns the pivots confirmed by them, in emission order, after they and the new state are persisted.
        """
        tf_ms = timeframe_ms(timeframe)
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        self._ensure_tables(store)
        key = (exchange, symbol, timeframe)
        series = self._series.get(key) or self._load(store, key)
        start = None if series.last_ts is None else series.last_ts + 1
        bars = store.candles(exchange, symbol, timeframe, start, now_ms - tf_ms + 1)  # closed: ts + tf_ms <= now
        if len(bars) == 0:
            self._series[key] = series
            return []
        has_state_row = series.last_ts is not None
        try:
            events = self._feed(series, bars, tf_ms)
            self._persist(store, key, series, events, has_state_row)
        except BaseException:
            self._series.pop(key, None)  # memory ran ahead of the store: reload the persisted state next time
            raise
        self._series[key] = series
        return events

    @staticmethod
    def _feed(series: _Series, bars: Candles, tf_ms: int) -> list[PivotEvent]:
        events: list[PivotEvent] = []
        on_bar = series.detector.on_bar
        index = series.next_index
        rows = zip(bars.ts.tolist(), bars.open.tolist(), bars.high.tolist(), bars.low.tolist(), bars.close.tolist(), strict=True)
        for ts, o, h, lo, c in rows:
            events.extend(on_bar(index, o, h, lo, c, ts, ts + tf_ms))
            index += 1
        series.next_index = index
        series.last_ts = int(bars.ts[-1])
        return events

    def _persist(
        self, store: SqlCandleStore, key: SeriesKey, series: _Series, events: list[PivotEvent], has_state_row: bool
    ) -> None:
        if events:
            columns = [
                [e.level for e in events],
                [e.kind for e in events],
                [e.index for e in events],
                [e.ts for e in events],
                [e.price for e in events],
                [e.confirmed_at for e in events],
                [e.confirmed_ts for e in events],
            ]
            store.execute(_PIVOTS_INSERT, [*key, self.params_hash, *columns])
        state = json.dumps(series.detector.state(), separators=(",", ":"))
        params_json = json.dumps(asdict(self.params), sort_keys=True)
        values = [params_json, series.last_ts, series.next_index, state, int(time.time() * 1000)]
        if has_state_row:
            store.execute(_STATE_UPDATE, [*values, *key, self.params_hash])
        else:
            store.execute(_STATE_UPSERT, [*key, self.params_hash, *values])

    def stored_pivots(self, store: SqlCandleStore, exchange: str, symbol: str, timeframe: str) -> list[PivotEvent]:
        """Every persisted pivot of the series for these parameters, ordered by (confirmed_at, level, bar_index, kind)."""
        self._ensure_tables(store)
        rows = store.query(
            "SELECT level, kind, bar_index, price, confirmed_at, ts, confirmed_ts FROM pivots "
            "WHERE exchange = ? AND symbol = ? AND timeframe = ? AND params_hash = ? "
            "ORDER BY confirmed_at, level, bar_index, kind",
            [exchange, symbol, timeframe, self.params_hash],
        )
        return [PivotEvent(int(lv), kd, int(i), float(p), int(c), int(t), int(ct)) for lv, kd, i, p, c, t, ct in rows]
