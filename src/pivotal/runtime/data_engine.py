"""The data engine: a feed's events in, closed bars, pivots and model inputs out, each known no earlier than it was.

What it does per event (``DataEngine.on_event``, events in ``known_at`` order, as the node receives them):

1. **1s bars from trades** (where the exchange has no 1s candles): the trades of the current second are buffered; the
   bar is emitted as closed only once an event at or after the second's end proves it ended (a later trade, a bar
   closing then, or ``advance(now)`` from a clock). Its values come from the batch builder
   ``data.resample.candles_from_trades`` run on that second's trades, so the live bar *is* the stored one (tested on
   the real Binance trades). A trade older than the last event (or than the open second) is late: it is counted
   (``late_trades``) and dropped; an emitted bar never changes.
2. **Higher timeframes, causally** (``derive``: source timeframe -> targets, chains allowed): a bucket is emitted the
   moment its last constituent bar closes, through ``data.resample.resample`` on the bucket's bars; a bucket with a
   missing constituent is never emitted (equal to ``resample`` on complete buckets, tested on Binance 1m -> 1h).
3. **Pivots**, one ``structure.incremental.WilliamsMarketStructure`` per series, fed every closed bar (fed, built or
   derived); each confirmed pivot comes out as a ``SeriesPivot`` with its confirmation time (``pivot.confirmed_ts``,
   the confirming bar's close) and ``known_at`` (the event that made it known). Emitted pivots never change and
   equal ``wms_batch`` on the whole series (prefix-replay test).
4. **Model inputs**: ``input_at(symbol, t)`` cuts ``BaseDataInput`` from the in-memory series with
   ``features.assemble.build_input_from_series`` — the function training uses — over ``PreparedSeries`` made of the
   engine's candles, its incremental pivots and indicators computed on the whole in-memory series. Live inputs equal
   training inputs when the engine's series start where the stored series start (seed history with ``warm_up``).
5. **Persistence** through an optional ``DataSink`` (``StoreSink``: candles to the market store by upsert, pivots and
   detector state to ``data.state.pivots.PivotRepository`` in the rows ``structure.tracker.PivotTracker`` reads).

Bars fed by the feed for a timeframe the engine builds (trade bars, derived targets) are refused: one series, one
source. Order-book updates are counted and not used (the order-book features are another component).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import NamedTuple, Protocol

import numpy as np

from pivotal.core.errors import UserInputError
from pivotal.core.events import BarClosed, MarketEvent, TradeTick
from pivotal.core.orders import Bar
from pivotal.core.timeframes import timeframe_ms
from pivotal.data.alignment import timeframe_origin
from pivotal.data.candles import Candles
from pivotal.data.resample import candles_from_trades, resample
from pivotal.data.state.pivots import PivotRepository, PivotRow, StoredState
from pivotal.data.store import SeriesKey
from pivotal.data.trades import Trades
from pivotal.features.assemble import PredictionHistory, PreparedSeries, build_input_from_series
from pivotal.features.indicator_stream import IndicatorStream
from pivotal.features.input_spec import InputSpec
from pivotal.features.model_io import BaseDataInput, WindowKey
from pivotal.structure.incremental import WilliamsMarketStructure
from pivotal.structure.tracker import params_hash
from pivotal.structure.types import PivotArray, PivotEvent, PivotParams, PivotSet


class SeriesPivot(NamedTuple):
    """A pivot of series ``key`` ((symbol, timeframe)); ``known_at``: the event time that confirmed it."""

    key: WindowKey
    pivot: PivotEvent
    known_at: int


class Emitted(NamedTuple):
    """What one event produced: bars the engine built or derived (fed bars are the feed's own) and new pivots."""

    bars: Sequence[BarClosed]
    pivots: Sequence[SeriesPivot]


NOTHING = Emitted((), ())


class DataSink(Protocol):
    """Where closed candles and pivots persist as they happen (``StoreSink``); calls come in event order."""

    def bar_closed(
        self, key: WindowKey, bar: Bar, pivots: Sequence[PivotEvent], detector: WilliamsMarketStructure, *, new: bool
    ) -> None:
        """``bar`` closed on series ``key`` and confirmed ``pivots``; ``detector`` has seen it. ``new`` False: a
        warm-up bar (already stored: persist its pivots, not the candle). Buffers only; never writes."""
        ...

    def tick(self, now: int) -> None:
        """The engine finished the event at ``now``: write the buffer if it is due (a failed write raises)."""
        ...

    def flush(self) -> None:
        """Write what is buffered; raise (keeping it buffered) when the write fails."""
        ...


# -- per-series state ---------------------------------------------------------------------------------------------------
class _Column:
    """A growable 1-D array: amortised O(1) appends; ``view()`` is the filled prefix, read-only. A view handed out
    stays valid and unchanged (growth copies into a new buffer; filled elements are never written again)."""

    __slots__ = ("buf", "n")

    def __init__(self, dtype: type, capacity: int = 1024) -> None:
        self.buf: np.ndarray = np.empty(capacity, dtype)
        self.n = 0

    def append(self, value: float) -> None:
        if self.n == len(self.buf):
            grown = np.empty(2 * len(self.buf), self.buf.dtype)
            grown[: self.n] = self.buf[: self.n]
            self.buf = grown
        self.buf[self.n] = value
        self.n += 1

    def view(self) -> np.ndarray:
        out = self.buf[: self.n]
        out.flags.writeable = False
        return out


class _Series:
    """One in-memory (symbol, timeframe) series: columns, pivot detector, pivots so far, a cached preparation.

    Columns and pivots are growable arrays, handed out as read-only views, and the indicators are extended by the
    new bars (``IndicatorStream``): a node serving a model rebuilds its preparation after every bar, and copying
    every bar and pivot so far and recomputing every indicator made each bar cost in proportion to the run's length
    (410 ms per bar at 129,000 1m bars)."""

    def __init__(self, symbol: str, timeframe: str, params: PivotParams, history: int) -> None:
        self.symbol, self.timeframe = symbol, timeframe
        self.tf_ms = timeframe_ms(timeframe)
        self.columns = tuple(_Column(np.int64 if i == 0 else np.float64) for i in range(6))
        self.detector = WilliamsMarketStructure(params, history)
        self.params = params
        self.found: dict[tuple[int, str], tuple[_Column, _Column, _Column]] = {
            (lvl, kind): (_Column(np.int64, 64), _Column(np.float64, 64), _Column(np.int64, 64))
            for lvl in range(1, params.levels + 1)
            for kind in ("H", "L")
        }
        self._prepared: PreparedSeries | None = None
        self._indicators = IndicatorStream()

    def __len__(self) -> int:
        return self.columns[0].n

    def last_ts(self) -> int | None:
        ts = self.columns[0]
        return int(ts.buf[ts.n - 1]) if ts.n else None

    def append(self, ts: int, o: float, h: float, lo: float, c: float, v: float) -> tuple[Bar, list[PivotEvent]]:
        index = self.columns[0].n
        last = self.last_ts()
        if last is not None and ts <= last:
            raise UserInputError(
                f"{self.symbol} {self.timeframe}: bar at {ts} arrived after the bar at {last}; feed bars in time order"
            )
        for column, value in zip(self.columns, (ts, o, h, lo, c, v), strict=True):
            column.append(value)
        close_ts = ts + self.tf_ms
        pivots = self.detector.on_bar(index, o, h, lo, c, ts, close_ts)
        for p in pivots:
            idx, price, confirmed = self.found[(p.level, p.kind)]
            idx.append(p.index)
            price.append(p.price)
            confirmed.append(p.confirmed_at)
        self._prepared = None
        return Bar(index, ts, o, h, lo, c, v, self.symbol, self.timeframe, close_ts), pivots

    def candles(self, exchange: str) -> Candles:
        ts, o, h, lo, c, v = (col.view() for col in self.columns)
        return Candles(ts, o, h, lo, c, v, exchange, self.symbol, self.timeframe)

    def pivot_set(self) -> PivotSet:
        def arr(cols: tuple[_Column, _Column, _Column]) -> PivotArray:
            if not cols[0].n:
                return PivotArray.empty()
            return PivotArray(cols[0].view(), cols[1].view(), cols[2].view())

        levels = range(1, self.params.levels + 1)
        return PivotSet(self.params, [arr(self.found[(lv, "H")]) for lv in levels], [arr(self.found[(lv, "L")]) for lv in levels])

    def prepared(self, exchange: str) -> PreparedSeries:
        """``PreparedSeries`` of the whole in-memory series (rebuilt only after a new bar)."""
        if self._prepared is None:
            candles = self.candles(exchange)
            indicators = self._indicators.update(candles.high, candles.low, candles.close)  # the new bars only
            self._prepared = PreparedSeries(candles, self.pivot_set(), indicators, candles.ts + self.tf_ms)
        return self._prepared


class _Bucket:
    """The bars (or trades) of one still-open bucket of a built or derived series."""

    __slots__ = ("rows", "start")

    def __init__(self, start: int) -> None:
        self.start = start
        self.rows: list[tuple[int, float, float, float, float, float]] = []


class _TradeBuffer:
    """The trades of the last order-flow window, columnar (growable numpy arrays with a moving start): the input
    reads them as views, no per-decision conversion."""

    __slots__ = ("amt", "ids", "m", "n", "px", "start", "ts")

    def __init__(self, capacity: int = 1024) -> None:
        self.ts = np.empty(capacity, np.int64)
        self.ids = np.empty(capacity, np.int64)
        self.px = np.empty(capacity, np.float64)
        self.amt = np.empty(capacity, np.float64)
        self.m = np.empty(capacity, bool)
        self.start = self.n = 0

    def append(self, row: tuple[int, int, float, float, bool], horizon: int) -> None:
        """Add one trade; trades before ``horizon`` (epoch ms) are dropped."""
        if self.n == len(self.ts):
            self.start += int(np.searchsorted(self.ts[self.start : self.n], horizon, side="left"))
            keep = self.n - self.start
            size = len(self.ts) * 2 if keep > len(self.ts) // 2 else len(self.ts)
            for name in ("ts", "ids", "px", "amt", "m"):
                old = getattr(self, name)
                new = np.empty(size, old.dtype)
                new[:keep] = old[self.start : self.n]
                setattr(self, name, new)
            self.start, self.n = 0, keep
        i = self.n
        self.ts[i], self.ids[i], self.px[i], self.amt[i], self.m[i] = row
        self.n = i + 1

    def columns(self, copy: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        cols = tuple(a[self.start : self.n] for a in (self.ts, self.ids, self.px, self.amt, self.m))
        return tuple(c.copy() for c in cols) if copy else cols  # type: ignore[return-value]


def _tf_ms(timeframe: str, where: str) -> int:
    try:
        return timeframe_ms(timeframe)
    except ValueError as exc:
        raise UserInputError(f"data engine {where}: {exc}") from None


def _bucket_of(ts: int, step: int, origin: int) -> int:
    return (ts - origin) // step * step + origin


# -- the engine ---------------------------------------------------------------------------------------------------------
@dataclass
class DataEngine:
    """See the module docstring. ``spec``: the model input (its pivot parameters are the detector's unless
    ``pivot_params`` is given); ``trade_timeframe``: bars built from trades (None: off); ``derive``: source timeframe ->
    coarser timeframes aggregated from it; ``sink``: persistence (None: off); ``history``: pivots kept per level in
    the detector's own ring (the engine keeps every pivot for the inputs)."""

    exchange: str = ""
    spec: InputSpec | None = None
    trade_timeframe: str | None = "1s"
    derive: Mapping[str, Sequence[str]] = field(default_factory=dict)
    pivot_params: PivotParams | None = None
    sink: DataSink | None = None
    history: int = 8
    late_trades: int = 0
    book_updates: int = 0
    now: int | None = None

    def __post_init__(self) -> None:
        if self.pivot_params is None:
            self.pivot_params = self.spec.pivot_params if self.spec is not None else PivotParams()
        self._series: dict[WindowKey, _Series] = {}
        self._buckets: dict[tuple[str, str], _Bucket] = {}  # (symbol, target timeframe) -> open derived bucket
        self._trade_bucket: dict[str, _Bucket] = {}  # symbol -> the open second (or trade timeframe bucket)
        self._trade_rows: dict[str, list[tuple[int, int, float, float, bool]]] = {}
        self._closed_until: dict[str, int] = {}  # symbol -> end of the last closed trade bucket
        self._next_end: int | None = None  # earliest end of an open trade bucket
        self._recent: dict[str, _TradeBuffer] = {}  # symbol -> trades for order flow
        windows = self.spec.order_flow_windows_ms if self.spec is not None else ()
        self._flow_ms = max(windows) if windows else 0
        derived: set[str] = set()
        for source, targets in self.derive.items():
            src_ms = _tf_ms(source, "derive")
            for target in targets:
                tgt_ms = _tf_ms(target, "derive")
                if tgt_ms <= src_ms or tgt_ms % src_ms:
                    raise UserInputError(
                        f"derive {source} -> {target}: the target must be a whole multiple of the source; fix 'derive'"
                    )
                derived.add(target)
        if self.trade_timeframe is not None:
            _tf_ms(self.trade_timeframe, "trade_timeframe")
            if self.trade_timeframe in derived:
                raise UserInputError(f"derive: {self.trade_timeframe} is built from trades; it cannot also be derived")
        self._built = derived | ({self.trade_timeframe} if self.trade_timeframe else set())
        self._listeners: list[Callable[[MarketEvent | None, Emitted], None]] = []

    def subscribe(self, listener: Callable[[MarketEvent | None, Emitted], None]) -> None:
        """Call ``listener(event, emitted)`` after each event is processed (``advance``: event None), with what it
        produced; before the node pushes the event's bar to the strategy (``runtime.learning`` reads pivots here)."""
        self._listeners.append(listener)

    # -- events -----------------------------------------------------------------------------------------------------
    def on_event(self, event: MarketEvent) -> Emitted:
        """Take one event (``known_at`` order); returns the bars built or derived and the pivots confirmed by it."""
        t = event.known_at
        if self.now is not None and t < self.now:
            if isinstance(event, TradeTick):  # a delayed print: its second may be emitted already
                self.late_trades += 1
                return NOTHING
            raise UserInputError(f"event at {t} arrived after {self.now}: the data engine takes events in time order")
        self.now = t
        bars: list[BarClosed] = []
        pivots: list[SeriesPivot] = []
        if self._next_end is not None and t >= self._next_end:
            self._close_trade_buckets(t, bars, pivots)
        if isinstance(event, BarClosed):
            b = event.bar
            if b.timeframe in self._built:
                raise UserInputError(
                    f"{b.symbol} {b.timeframe}: the feed delivers bars the data engine builds itself "
                    "(trade_timeframe / derive); drop that timeframe from the feed or from the data engine"
                )
            self._close(b.symbol, b.timeframe, (b.ts, b.open, b.high, b.low, b.close, b.volume), t, bars, pivots, report=False)
        elif isinstance(event, TradeTick):
            self._trade(event, bars, pivots)
        else:
            self.book_updates += 1
        if self.sink is not None:
            self.sink.tick(t)  # after the event is fully processed: a failed write leaves the engine consistent
        emitted = Emitted(bars, pivots) if bars or pivots else NOTHING
        for listener in self._listeners:
            listener(event, emitted)
        return emitted

    def advance(self, now: int) -> Emitted:
        """A clock tick: every trade bucket that ended by ``now`` is closed (no later trade can belong to it)."""
        if self.now is not None and now < self.now:
            return NOTHING
        self.now = now
        bars: list[BarClosed] = []
        pivots: list[SeriesPivot] = []
        if self._next_end is not None and now >= self._next_end:
            self._close_trade_buckets(now, bars, pivots)
        if self.sink is not None:
            self.sink.tick(now)
        emitted = Emitted(bars, pivots) if bars or pivots else NOTHING
        for listener in self._listeners:
            listener(None, emitted)
        return emitted

    def warm_up(self, candles: Candles) -> None:
        """Seed the series of ``candles`` (their timeframe) with history, before the first event: pivots and derived
        series follow as if the bars had streamed in; the sink persists their pivots, not the (stored) candles."""
        if candles.timeframe in self._built:
            raise UserInputError(f"{candles.symbol} {candles.timeframe}: warm up the source timeframe, not a built one")
        pivots: list[SeriesPivot] = []
        rows = zip(*(getattr(candles, f).tolist() for f in ("ts", "open", "high", "low", "close", "volume")), strict=True)
        tf_ms = timeframe_ms(candles.timeframe)
        for row in rows:
            self._close(candles.symbol, candles.timeframe, row, int(row[0]) + tf_ms, None, pivots, new=False)

    def warm_up_series(self, series: Mapping[WindowKey, Candles]) -> None:
        """Seed several series at once with the history a model was trained on (``features.assemble``'s load: a
        coarser window is the store's, filled from the base where the store has none), before the first event. Unlike
        ``warm_up`` a derived timeframe may be seeded too: its history is taken as given, and deriving continues with
        the first bucket after its last bar (the base's history is not re-aggregated into buckets it already has).
        Coarser series are seeded first, so each keeps exactly the bars given."""
        order = sorted(series.items(), key=lambda kv: (kv[0][0], -timeframe_ms(kv[1].timeframe)))
        for (_, timeframe), candles in order:
            if timeframe == self.trade_timeframe:
                raise UserInputError(f"{candles.symbol} {timeframe}: built from trades; seed the bars it comes from")
            tf_ms = timeframe_ms(candles.timeframe)
            pivots: list[SeriesPivot] = []
            rows = zip(*(getattr(candles, f).tolist() for f in ("ts", "open", "high", "low", "close", "volume")), strict=True)
            for row in rows:
                self._close(candles.symbol, candles.timeframe, row, int(row[0]) + tf_ms, None, pivots, new=False)

    def flush(self) -> None:
        """Persist what the sink buffers (end of a run, or a caller's checkpoint)."""
        if self.sink is not None:
            self.sink.flush()

    # -- reading ----------------------------------------------------------------------------------------------------
    def keys(self) -> list[WindowKey]:
        return list(self._series)

    def candles(self, symbol: str, timeframe: str) -> Candles:
        """Every closed bar of the series so far (empty when none)."""
        series = self._series.get((symbol, timeframe))
        return series.candles(self.exchange) if series is not None else Candles.empty(self.exchange, symbol, timeframe)

    def pivots(self, symbol: str, timeframe: str) -> PivotSet:
        """Every pivot of the series confirmed so far, as ``wms_batch`` lays them out."""
        series = self._series.get((symbol, timeframe)) or _Series(symbol, timeframe, self._params, 1)
        return series.pivot_set()

    def detector(self, symbol: str, timeframe: str) -> WilliamsMarketStructure | None:
        series = self._series.get((symbol, timeframe))
        return None if series is None else series.detector

    def recent_trades(self, symbol: str) -> Trades:
        """The trades kept for the order-flow fields (the longest window of the spec before the last event)."""
        return self._recent_view(symbol, copy=True)

    def _recent_view(self, symbol: str, *, copy: bool) -> Trades:
        buffer = self._recent.get(symbol) or _TradeBuffer()
        return Trades(*buffer.columns(copy), self.exchange, symbol)

    def input_at(
        self, symbol: str, t: int, history: PredictionHistory | None = None, spec: InputSpec | None = None
    ) -> BaseDataInput:
        """``BaseDataInput`` of ``symbol`` as of t from the in-memory series, by training's own cut
        (``features.assemble.build_input_from_series``); a window with no bars yet is left out (completeness
        reports it). ``spec``: another model's input over the same series (default: the engine's); its pivot
        parameters must be the engine's, since the pivots are the engine's detectors'."""
        if spec is not None and spec.pivot_params != self._params:
            raise UserInputError(
                f"input spec pivots {spec.pivot_params} differ from the data engine's {self._params}; one engine per "
                "pivot parameters"
            )
        spec = spec or self.spec
        if spec is None:
            raise UserInputError("the data engine has no InputSpec; pass spec= to build model inputs")
        series = {key: self._series[key].prepared(self.exchange) for key in spec.keys(symbol) if key in self._series}
        trades = self._recent_view(symbol, copy=False) if self._flow_ms else None
        return build_input_from_series(series, symbol, t, spec, history, trades)

    # -- internals --------------------------------------------------------------------------------------------------
    @property
    def _params(self) -> PivotParams:
        assert self.pivot_params is not None
        return self.pivot_params

    def _close(
        self,
        symbol: str,
        timeframe: str,
        row: tuple[int, float, float, float, float, float],
        t: int,
        bars: list[BarClosed] | None,
        pivots: list[SeriesPivot],
        *,
        new: bool = True,
        report: bool = True,
    ) -> None:
        """A bar of (symbol, timeframe) closed, known at t: append, detect pivots, persist, feed derived series.
        ``report`` False: a fed bar (the caller has it); bars derived from it are reported to ``bars``."""
        key = (symbol, timeframe)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(symbol, timeframe, self._params, self.history)
        bar, found = series.append(*row)
        if bars is not None and report:
            bars.append(BarClosed(t, bar, self.exchange))
        for p in found:
            pivots.append(SeriesPivot(key, p, t))
        if self.sink is not None:
            self.sink.bar_closed(key, bar, found, series.detector, new=new)
        for target in self.derive.get(timeframe, ()):
            self._derive(symbol, timeframe, target, row, t, bars, pivots, new)

    def _derive(
        self,
        symbol: str,
        source: str,
        target: str,
        row: tuple[int, float, float, float, float, float],
        t: int,
        bars: list[BarClosed] | None,
        pivots: list[SeriesPivot],
        new: bool,
    ) -> None:
        step, src_ms = timeframe_ms(target), timeframe_ms(source)
        start = _bucket_of(int(row[0]), step, timeframe_origin(target))
        seeded = self._series.get((symbol, target))
        last = seeded.last_ts() if seeded is not None else None
        if last is not None and last >= start:
            return  # the target's seeded history (warm_up_series) has this bucket already
        bucket = self._buckets.get((symbol, target))
        if bucket is None or bucket.start != start:  # a new bucket; an unfinished older one had a hole: dropped
            bucket = self._buckets[(symbol, target)] = _Bucket(start)
        bucket.rows.append(row)
        if len(bucket.rows) < step // src_ms:
            return
        del self._buckets[(symbol, target)]
        ts, o, h, lo, c, v = (np.array(col) for col in zip(*bucket.rows, strict=True))
        src = Candles(ts.astype(np.int64), o, h, lo, c, v, self.exchange, symbol, source)
        out, _ = resample(src, target)
        if len(out) != 1:  # pragma: no cover - a full bucket of unique, sorted bars is one complete bar
            raise AssertionError(f"{symbol} {target}: bucket {start} did not aggregate to one bar")
        self._close(symbol, target, _row(out, 0), t, bars, pivots, new=new)

    def _trade(self, tick: TradeTick, bars: list[BarClosed], pivots: list[SeriesPivot]) -> None:
        symbol, tf = tick.symbol, self.trade_timeframe
        bucket = self._trade_bucket.get(symbol)
        start = 0
        if tf is not None:
            step = timeframe_ms(tf)
            start = _bucket_of(tick.ts, step, timeframe_origin(tf))
            if tick.ts < self._closed_until.get(symbol, tick.ts) or (bucket is not None and start < bucket.start):
                self.late_trades += 1  # its bucket was emitted already; an emitted bar never changes
                return
        row = (tick.ts, tick.trade_id, tick.price, tick.amount, tick.is_buyer_maker)
        if self._flow_ms:
            recent = self._recent.get(symbol)
            if recent is None:
                recent = self._recent[symbol] = _TradeBuffer()
            recent.append(row, tick.ts - self._flow_ms)
        if tf is None:
            return
        if bucket is not None and bucket.start != start:
            self._close_trade_bucket(symbol, tick.ts, bars, pivots)
            bucket = None
        if bucket is None:
            bucket = self._trade_bucket[symbol] = _Bucket(start)
            self._trade_rows[symbol] = []
            end = start + step
            self._next_end = end if self._next_end is None else min(self._next_end, end)
        self._trade_rows[symbol].append(row)

    def _close_trade_buckets(self, t: int, bars: list[BarClosed], pivots: list[SeriesPivot]) -> None:
        assert self.trade_timeframe is not None
        step = timeframe_ms(self.trade_timeframe)
        for symbol, bucket in list(self._trade_bucket.items()):
            if bucket.start + step <= t:
                self._close_trade_bucket(symbol, t, bars, pivots)
        ends = [b.start + step for b in self._trade_bucket.values()]
        self._next_end = min(ends) if ends else None

    def _close_trade_bucket(self, symbol: str, t: int, bars: list[BarClosed], pivots: list[SeriesPivot]) -> None:
        """The open trade bucket of ``symbol`` ended (known at t): its bar by the batch builder's own rules."""
        tf = self.trade_timeframe
        assert tf is not None
        bucket = self._trade_bucket.pop(symbol)
        rows = self._trade_rows.pop(symbol)
        self._closed_until[symbol] = bucket.start + timeframe_ms(tf)
        ts, ids, px, amt, m = zip(*rows, strict=True)
        trades = Trades(
            np.array(ts, np.int64), np.array(ids, np.int64), np.array(px, np.float64), np.array(amt, np.float64),
            np.array(m, bool), self.exchange, symbol,
        )  # fmt: skip
        out, _ = candles_from_trades(trades, tf, until=bucket.start + timeframe_ms(tf))
        self._close(symbol, tf, _row(out, 0), t, bars, pivots)


def _row(c: Candles, i: int) -> tuple[int, float, float, float, float, float]:
    return (int(c.ts[i]), float(c.open[i]), float(c.high[i]), float(c.low[i]), float(c.close[i]), float(c.volume[i]))


# -- persistence --------------------------------------------------------------------------------------------------------
class CandleWriter(Protocol):
    """The part of ``data.store.MarketStore`` the sink writes with (an upsert of one series batch)."""

    def write_candles(self, candles: Candles, source: str = "") -> int: ...


class StoreSink:
    """``DataSink`` onto a market store: candles by ``write_candles`` (an upsert, so a retried batch is harmless),
    then pivots and the detector state by ``PivotRepository.save`` (pivots insert-or-ignore, then the state), in
    the rows ``structure.tracker.PivotTracker`` reads and resumes from. Buffers until ``batch`` bars or ``every_ms``
    of event time have passed; a failed write raises and keeps the buffer for the next flush."""

    def __init__(
        self,
        store: CandleWriter,
        exchange: str,
        params: PivotParams,
        *,
        pivots: PivotRepository | None = None,
        batch: int = 500,
        every_ms: int = 5_000,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.store, self.exchange, self.params = store, exchange, params
        self.repo = pivots
        self.batch, self.every_ms = max(1, batch), every_ms
        self.clock = clock
        self.params_hash = params_hash(params)
        self._params_json = json.dumps(asdict(params), sort_keys=True)
        self._bars: dict[WindowKey, list[Bar]] = {}
        self._pivots: dict[WindowKey, list[PivotEvent]] = {}
        self._state: dict[WindowKey, tuple[WilliamsMarketStructure, int, int]] = {}  # detector, bars, last ts
        self._has_state: set[WindowKey] = set()
        self._buffered = 0
        self._since: int | None = None
        self.written_bars = 0
        self.written_pivots = 0

    def bar_closed(
        self, key: WindowKey, bar: Bar, pivots: Sequence[PivotEvent], detector: WilliamsMarketStructure, *, new: bool
    ) -> None:
        if new:
            self._bars.setdefault(key, []).append(bar)
            self._buffered += 1
        if pivots:
            self._pivots.setdefault(key, []).extend(pivots)
        self._state[key] = (detector, bar.index + 1, bar.ts)
        if self._since is None:
            self._since = bar.close_ts

    def tick(self, now: int) -> None:
        if self._since is not None and (self._buffered >= self.batch or now - self._since >= self.every_ms):
            self.flush()

    def flush(self) -> None:
        for key, bars in list(self._bars.items()):
            if bars:
                self.store.write_candles(_candles(self.exchange, key, bars), source="data engine")
                self.written_bars += len(bars)
            del self._bars[key]
        if self.repo is not None:
            for key, (detector, count, last_ts) in list(self._state.items()):
                skey: SeriesKey = (self.exchange, *key)
                if key not in self._has_state and self.repo.load_state(skey, self.params_hash) is not None:
                    self._has_state.add(key)
                rows = [PivotRow(p.level, p.kind, p.index, p.price, p.confirmed_at, p.ts or 0, p.confirmed_ts or 0)
                        for p in self._pivots.get(key, ())]  # fmt: skip
                state = StoredState(last_ts, count, json.dumps(detector.state(), separators=(",", ":")))
                now = self.clock() if self.clock is not None else last_ts
                self.repo.save(skey, self.params_hash, self._params_json, rows, state, now, key in self._has_state)
                self._has_state.add(key)
                self.written_pivots += len(rows)
                self._pivots.pop(key, None)
                del self._state[key]
        else:
            self._pivots.clear()
            self._state.clear()
        self._buffered = 0
        self._since = None


def _candles(exchange: str, key: WindowKey, bars: Iterable[Bar]) -> Candles:
    rows = list(bars)
    return Candles(
        np.array([b.ts for b in rows], np.int64), np.array([b.open for b in rows], np.float64),
        np.array([b.high for b in rows], np.float64), np.array([b.low for b in rows], np.float64),
        np.array([b.close for b in rows], np.float64), np.array([b.volume for b in rows], np.float64),
        exchange, key[0], key[1],
    )  # fmt: skip


__all__ = ["NOTHING", "CandleWriter", "DataEngine", "DataSink", "Emitted", "SeriesPivot", "StoreSink"]
