"""The data engine: 1s bars from trades only once their second has provably ended, causal higher timeframes, pivots
that never change, model inputs equal to training's, persistence, and the node wiring. Hand-written bars and trades
for exact values; the real Binance trades and 1m/1h bars for equality with the batch builders."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pivotal.core.errors import UserInputError
from pivotal.core.events import BarClosed, BookUpdate, TradeTick
from pivotal.core.orders import Bar, Fill, Order
from pivotal.data.candles import Candles
from pivotal.data.duckdb_store import DuckDBStore
from pivotal.data.resample import candles_from_trades, resample
from pivotal.data.state.pivots import PivotRepository
from pivotal.data.trades import Trades
from pivotal.execution.engine import BacktestConfig
from pivotal.features.assemble import build_input
from pivotal.features.indicators import INDICATORS
from pivotal.features.input_spec import InputSpec, WindowSpec
from pivotal.features.model_io import BaseDataInput
from pivotal.runtime.data_engine import DataEngine, SeriesPivot, StoreSink
from pivotal.runtime.feeds.historical import HistoricalFeed
from pivotal.runtime.node import TradingNode, trade_fingerprint
from pivotal.strategies.base import BarContext
from pivotal.structure.incremental import WilliamsMarketStructure
from pivotal.structure.pivots import wms_batch
from pivotal.structure.tracker import PivotTracker
from pivotal.structure.types import PivotEvent, PivotParams, PivotSet

SYM = "BTC/USDT"
MIN = 60_000
HOUR = 3_600_000


def tick(ts: int, price: float, amount: float = 1.0, tid: int = 0, symbol: str = SYM) -> TradeTick:
    return TradeTick(ts, "binance", symbol, ts, tid or ts, price, amount, False)


def bar_event(ts: int, o: float, h: float, lo: float, c: float, tf: str = "1m", tf_ms: int = MIN, index: int = 0) -> BarClosed:
    return BarClosed(ts + tf_ms, Bar(index, ts, o, h, lo, c, 1.0, SYM, tf, ts + tf_ms), "binance")


def rows(c: Candles) -> list[tuple[float, ...]]:
    return [tuple(float(getattr(c, f)[i]) for f in ("ts", "open", "high", "low", "close", "volume")) for i in range(len(c))]


# -- 1s bars from trades --------------------------------------------------------------------------------------------
def test_a_second_is_emitted_only_once_a_later_event_proves_it_ended() -> None:
    eng = DataEngine("binance")
    for ts, px in ((1_000, 10.0), (1_500, 12.0), (1_999, 9.0)):
        assert eng.on_event(tick(ts, px, 0.5)).bars == ()  # the second 1000..1999 may still get trades
    assert eng.advance(1_999).bars == ()
    out = eng.on_event(tick(2_000, 11.0, 0.25))  # a trade at 2000 belongs to the next second and proves 1000's end
    assert [(b.known_at, b.bar[1:]) for b in out.bars] == [(2_000, (1_000, 10.0, 12.0, 9.0, 9.0, 1.5, SYM, "1s", 2_000))]
    assert eng.on_event(tick(2_400, 13.0)).bars == ()
    assert eng.advance(2_999).bars == ()
    done = eng.advance(3_000)  # a clock tick at the end of the second closes it without a trade
    assert [b.bar[1:7] for b in done.bars] == [(2_000, 11.0, 13.0, 11.0, 13.0, 1.25)]
    assert rows(eng.candles(SYM, "1s")) == [(1_000, 10, 12, 9, 9, 1.5), (2_000, 11, 13, 11, 13, 1.25)]


def test_a_bar_event_closes_the_open_second_and_a_late_trade_changes_nothing() -> None:
    eng = DataEngine("binance")
    eng.on_event(tick(59_500, 100.0))
    out = eng.on_event(bar_event(0, 1, 2, 0.5, 1.5))  # the 1m bar closing at 60_000 proves 59_000..59_999 ended
    assert [b.bar.ts for b in out.bars] == [59_000]
    eng.on_event(tick(60_100, 101.0))
    assert eng.on_event(tick(59_900, 50.0)).bars == ()  # late (delayed message): counted, dropped
    assert eng.late_trades == 1
    assert rows(eng.candles(SYM, "1s")) == [(59_000, 100, 100, 100, 100, 1)]
    eng.on_event(BookUpdate(60_200, "binance", SYM, ((100.0, 1.0),), ()))
    assert eng.book_updates == 1


def test_bars_must_come_in_time_order() -> None:
    eng = DataEngine("binance")
    eng.on_event(tick(130_000, 1.0))
    with pytest.raises(UserInputError, match="event at 120000 arrived after 130000: the data engine takes events in time"):
        eng.on_event(bar_event(60_000, 1, 2, 0.5, 1.5))


# -- higher timeframes ----------------------------------------------------------------------------------------------
def hand_minutes() -> Candles:
    """Two hours of 1m bars by hand (12 per 12m bucket wanted below), with minute 30 missing."""
    ts = [i * MIN for i in range(120) if i != 30]
    px = [100.0 + (i % 7) - (i % 5) * 0.5 for i in range(120) if i != 30]
    a = np.array(px)
    return Candles(
        np.array(ts, np.int64), a, a + 1.0, a - 1.0, a + 0.25, np.arange(len(a), dtype=float) + 1, "binance", SYM, "1m"
    )


def test_a_derived_bar_is_emitted_when_its_last_minute_closes_and_never_with_a_hole() -> None:
    minutes = hand_minutes()
    eng = DataEngine("binance", trade_timeframe=None, derive={"1m": ["15m"]})
    emitted: list[BarClosed] = []
    for ev in HistoricalFeed([minutes]).events():
        out = eng.on_event(ev)
        assert all(b.known_at == ev.known_at == b.bar.close_ts for b in out.bars)  # at the close of its last minute
        emitted.extend(out.bars)
    batch, _ = resample(minutes, "15m")
    assert eng.candles(SYM, "15m").equals(batch)
    assert [b.bar.ts // MIN for b in emitted] == [0, 15, 45, 60, 75, 90, 105]  # 30..44 has a hole: never emitted
    assert emitted[0].bar[2:7] == (100.0, 106.5, 97.0, 98.25, 120.0)  # first open, max, min, last close, sum


def test_bad_configuration_and_double_sources_are_refused() -> None:
    with pytest.raises(UserInputError, match=r"data engine derive: unknown timeframe '90m'"):
        DataEngine(derive={"1h": ["90m"]})
    with pytest.raises(UserInputError, match="derive 1h -> 1m: the target must be a whole multiple"):
        DataEngine(derive={"1h": ["1m"]})
    eng = DataEngine("binance", derive={"1m": ["1h"]})
    with pytest.raises(UserInputError, match="BTC/USDT 1h: the feed delivers bars the data engine builds itself"):
        eng.on_event(bar_event(0, 1, 2, 0.5, 1.5, "1h", HOUR))
    with pytest.raises(UserInputError, match="no InputSpec"):
        eng.input_at(SYM, 0)


# -- persistence ----------------------------------------------------------------------------------------------------
class FlakyStore:
    """A store whose first ``fail`` writes raise (a disk or network fault) and then work."""

    def __init__(self, inner: DuckDBStore, fail: int) -> None:
        self.inner, self.fail = inner, fail

    def write_candles(self, candles: Candles, source: str = "") -> int:
        if self.fail:
            self.fail -= 1
            raise OSError("disk full")
        return self.inner.write_candles(candles, source)


def test_the_sink_persists_candles_and_pivots_that_a_tracker_resumes_from(tmp_path: Path) -> None:
    minutes = hand_minutes()
    params = PivotParams(levels=3)
    store = DuckDBStore(tmp_path / "m.duckdb")
    try:
        repo = PivotRepository(store)
        flaky = FlakyStore(store, fail=1)
        sink = StoreSink(flaky, "binance", params, pivots=repo, batch=50, every_ms=10**12)
        eng = DataEngine("binance", trade_timeframe=None, derive={"1m": ["15m"]}, pivot_params=params, sink=sink)
        head = minutes.slice(0, 80)
        emitted: list[SeriesPivot] = []
        failures = 0
        for ev in HistoricalFeed([head]).events():
            try:
                emitted.extend(eng.on_event(ev).pivots)
            except OSError as exc:  # the 50th bar makes the batch due; its write fails after the event was processed
                assert str(exc) == "disk full" and len(eng.candles(SYM, "1m")) + len(eng.candles(SYM, "15m")) == 50
                failures += 1
        eng.flush()  # writes what the failed write left buffered
        assert failures == 1 and sink.written_bars == 80 + 4 == len(eng.candles(SYM, "1m")) + len(eng.candles(SYM, "15m"))
        assert store.candles("binance", SYM, "1m").equals(head)
        assert store.candles("binance", SYM, "15m").equals(resample(head, "15m")[0])
        tracker = PivotTracker(params, repo)
        mine = [p.pivot for p in emitted if p.key == (SYM, "1m")]
        assert tracker.stored_pivots("binance", SYM, "1m") == sorted(
            mine, key=lambda p: (p.confirmed_at, p.level, p.index, p.kind)
        )
        # a tracker continues the persisted detector over the rest: the same pivots as one batch run over all of it
        store.write_candles(minutes.slice(80, len(minutes)))
        tracker.update(store, "binance", SYM, "1m", now_ms=int(minutes.ts[-1]) + MIN)
        stored = tracker.stored_pivots("binance", SYM, "1m")
        batch = wms_batch(high=minutes.high, low=minutes.low, open=minutes.open, close=minutes.close, params=params)
        assert sorted((p.level, p.kind, p.index, p.price, p.confirmed_at) for p in stored) == batch_rows(batch)
    finally:
        store.close()


def batch_rows(s: PivotSet) -> list[tuple[int, str, int, float, int]]:
    out: list[tuple[int, str, int, float, int]] = []
    for lvl in range(1, s.params.levels + 1):
        for kind in ("H", "L"):
            out += [(lvl, kind, i, p, c) for i, p, c in s.get(lvl, kind).as_tuples()]
    return sorted(out)


# -- the node -------------------------------------------------------------------------------------------------------
class Recorder:
    def __init__(self, engine: DataEngine | None = None) -> None:
        self.bars: list[Bar] = []
        self.seen_1s: list[int] = []
        self.engine = engine

    def on_bar(self, ctx: BarContext) -> list[Order]:
        self.bars.append(ctx.bar)
        if self.engine is not None:  # the data engine already holds the bar the strategy is deciding on
            self.seen_1s.append(len(self.engine.candles(SYM, ctx.bar.timeframe)))
        return [Order.enter(+1)] if ctx.bar.index == 0 else [Order.exit()] if ctx.bar.index == 2 else []

    def on_fill(self, fill: Fill) -> None:
        pass


def test_the_node_trades_bars_the_data_engine_builds_from_trades() -> None:
    trades = [tick(1_000 + 250 * i, 100.0 + i, 1.0, i + 1) for i in range(20)]  # 5 seconds of prints
    eng = DataEngine("binance")
    strategy = Recorder(eng)
    node = TradingNode(strategy, [(SYM, "1s")], exchange="binance", data_engine=eng, run_id="t",
                       config=BacktestConfig(fee_rate=0.0, slippage=0.0))  # fmt: skip
    for ev in trades:
        node.on_event(ev)
    node.finish()
    assert [b[1:7] for b in strategy.bars] == [
        (1_000 + 1_000 * s, 100.0 + 4 * s, 103.0 + 4 * s, 100.0 + 4 * s, 103.0 + 4 * s, 4.0) for s in range(4)
    ]  # fmt: skip  (the 5th is open)
    assert strategy.seen_1s == [1, 2, 3, 4]
    assert [(t.entry_bar, t.exit_bar, t.entry_fill) for t in node.trades] == [(1, 3, 104.0)]
    plain = Recorder()
    bare = TradingNode(plain, [(SYM, "1s")], exchange="binance", run_id="t")  # no data engine: trades are ignored
    for ev in trades:
        bare.on_event(ev)
    assert plain.bars == [] and bare.ignored == len(trades)


def test_a_data_engine_leaves_the_trades_of_fed_bars_unchanged() -> None:
    minutes = hand_minutes()
    hours = resample(minutes, "15m")[0]
    hours = Candles(hours.ts, hours.open, hours.high, hours.low, hours.close, hours.volume, "binance", SYM, "15m")
    results = []
    for eng in (None, DataEngine("binance", trade_timeframe=None)):
        node = TradingNode(Recorder(), [(SYM, "15m")], exchange="binance", data_engine=eng, run_id="t",
                           config=BacktestConfig(fee_rate=0.001, slippage=0.0))  # fmt: skip
        for ev in HistoricalFeed([minutes, hours]).events():
            node.on_event(ev)
        node.finish()
        results.append(trade_fingerprint(node.trades))
        if eng is not None:
            assert eng.candles(SYM, "15m").equals(hours) and eng.candles(SYM, "1m").equals(minutes)
    assert results[0] == results[1]


# -- real data ------------------------------------------------------------------------------------------------------
def real_trades(shared: Path) -> Trades:
    frame = pd.read_parquet(shared / "binance" / "BTCUSDT-trades.parquet").sort_values(["timestamp", "trade_id"], kind="stable")
    return Trades.from_frame(frame.rename(columns={"timestamp": "ts", "qty": "amount"}), "binance", SYM)


def cut(trades: Trades, keep: np.ndarray) -> Trades:
    ts, ids, px, amt, m = (a[keep] for a in (trades.ts, trades.trade_id, trades.price, trades.amount, trades.is_buyer_maker))
    return Trades(ts, ids, px, amt, m, trades.exchange, trades.symbol)


def real_minutes(shared: Path, start: str, end: str) -> Candles:
    frame = pd.read_parquet(shared / "binance" / "BTCUSDT-1m-2024.parquet")
    lo, hi = (int(pd.Timestamp(x, tz="UTC").value // 1_000_000) for x in (start, end))
    frame = frame[(frame.timestamp >= lo) & (frame.timestamp < hi)]
    return Candles.from_frame(frame, "binance", SYM, "1m")


def test_live_1s_bars_equal_the_batch_builder_on_real_trades(shared_data: Path) -> None:
    trades = real_trades(shared_data)
    eng = DataEngine("binance")
    cuts = {len(trades) // 7, len(trades) // 2, len(trades) - 1}
    for i, ev in enumerate(HistoricalFeed([], [trades]).events()):
        out = eng.on_event(ev)
        assert all(b.bar.close_ts <= ev.known_at for b in out.bars)  # never a still-open second
        if i in cuts:  # what is closed so far is the batch builder's complete bars up to this trade
            head = cut(trades, np.arange(len(trades)) <= i)
            expected, _ = candles_from_trades(head, "1s", until=int(trades.ts[i]))
            assert eng.candles(SYM, "1s").equals(expected)
    eng.advance(int(trades.ts[-1]) + 1)
    expected, _ = candles_from_trades(trades, "1s")
    assert len(expected) == 691 and eng.candles(SYM, "1s").equals(expected) and eng.late_trades == 0


def test_1h_derived_live_equals_resample_and_binance_hours(shared_data: Path) -> None:
    minutes = real_minutes(shared_data, "2024-08-05", "2024-08-08")
    eng = DataEngine("binance", trade_timeframe=None, derive={"1m": ["1h"]})
    for ev in HistoricalFeed([minutes]).events():
        eng.on_event(ev)
    derived = eng.candles(SYM, "1h")
    assert len(derived) == 72 and derived.equals(resample(minutes, "1h")[0])
    hours = pd.read_parquet(shared_data / "binance" / "BTCUSDT-1h-2018-2026.parquet").set_index("timestamp").loc[derived.ts]
    for name in ("open", "high", "low", "close"):  # Binance's own 1h bars
        assert np.array_equal(getattr(derived, name), hours[name].to_numpy())
    assert np.allclose(derived.volume, hours["volume"].to_numpy(), rtol=1e-9)


def test_pivots_once_emitted_never_change_and_equal_the_batch(shared_data: Path) -> None:
    minutes = real_minutes(shared_data, "2024-08-05", "2024-08-08")
    events = list(HistoricalFeed([minutes]).events())

    def run(n: int) -> tuple[DataEngine, list[SeriesPivot]]:
        eng = DataEngine("binance", trade_timeframe=None, derive={"1m": ["1h"]})
        out: list[SeriesPivot] = []
        for ev in events[:n]:
            out.extend(eng.on_event(ev).pivots)
        return eng, out

    full_engine, full = run(len(events))
    for n in (500, 1_777, 3_000):  # a prefix run emits exactly the prefix of the full run's pivots, values and times
        prefix = run(n)[1]
        assert prefix == full[: len(prefix)] == [p for p in full if p.known_at <= events[n - 1].known_at]
    for tf, series in (("1m", minutes), ("1h", resample(minutes, "1h")[0])):
        batch = wms_batch(high=series.high, low=series.low, open=series.open, close=series.close, params=PivotParams())
        mine = [p for p in full if p.key == (SYM, tf)]
        assert sorted(
            (p.pivot.level, p.pivot.kind, p.pivot.index, p.pivot.price, p.pivot.confirmed_at) for p in mine
        ) == batch_rows(batch)
        close_ts = series.ts + (MIN if tf == "1m" else HOUR)
        assert all(p.pivot.confirmed_ts == close_ts[p.pivot.confirmed_at] == p.known_at for p in mine)
        assert len(mine) > 20 and batch_rows(full_engine.pivots(SYM, tf)) == batch_rows(batch)


def assert_equal_inputs(a: BaseDataInput, b: BaseDataInput) -> None:
    assert (a.symbol, a.timestamp, a.microstructure) == (b.symbol, b.timestamp, b.microstructure)
    assert a.last_predictions == b.last_predictions
    assert a.order_book is None and b.order_book is None  # no depth recorded there: the engine builds no book yet
    assert a.ohlcv.keys() == b.ohlcv.keys() == a.indicators.keys() == b.pivots.keys()
    for key in a.ohlcv:
        assert a.ohlcv[key].equals(b.ohlcv[key]) and a.ohlcv[key].timeframe == b.ohlcv[key].timeframe
        for name in INDICATORS:
            assert np.array_equal(a.indicators[key][name], b.indicators[key][name], equal_nan=True), (key, name)
        for x, y in zip((*a.pivots[key].highs, *a.pivots[key].lows), (*b.pivots[key].highs, *b.pivots[key].lows), strict=True):
            for f in ("index", "price", "confirmed_at"):
                assert np.array_equal(getattr(x, f), getattr(y, f)) and getattr(x, f).dtype == getattr(y, f).dtype


def test_series_and_pivots_handed_out_stay_unchanged_and_read_only_as_bars_arrive(shared_data: Path) -> None:
    """The engine hands out views of growable arrays, not copies (a copy per bar cost a long run its speed): what a
    caller holds must not change when later bars arrive or the arrays grow, and cannot be written to."""
    minutes = real_minutes(shared_data, "2024-08-05", "2024-08-08")
    eng = DataEngine("binance", trade_timeframe=None)
    events = list(HistoricalFeed([minutes]).events())
    for ev in events[:1500]:
        eng.on_event(ev)
    held = eng.candles(SYM, "1m")
    held_pivots = eng.pivots(SYM, "1m")
    copies = [a.copy() for a in (held.ts, held.close, held_pivots.highs[0].index, held_pivots.lows[1].price)]
    for ev in events[1500:]:  # past the 2,048-row buffer: the arrays grow (reallocate) under the held views
        eng.on_event(ev)
    for before, now in zip(copies, (held.ts, held.close, held_pivots.highs[0].index, held_pivots.lows[1].price), strict=True):
        assert np.array_equal(before, now)
    with pytest.raises(ValueError, match="read-only"):
        held.close[0] = 0.0
    with pytest.raises(ValueError, match="read-only"):
        held_pivots.highs[0].price[0] = 0.0
    full = eng.candles(SYM, "1m")
    assert len(full) == len(minutes) and np.array_equal(full.close, minutes.close) and np.array_equal(full.ts, minutes.ts)
    batch = wms_batch(high=minutes.high, low=minutes.low, open=minutes.open, close=minutes.close, params=PivotParams())
    got = eng.pivots(SYM, "1m")
    for lv in range(PivotParams().levels):
        for mine, theirs in ((got.highs[lv], batch.highs[lv]), (got.lows[lv], batch.lows[lv])):
            assert np.array_equal(mine.index, theirs.index) and np.array_equal(mine.price, theirs.price)


def test_live_inputs_equal_training_inputs_on_real_data(shared_data: Path, tmp_path: Path) -> None:
    minutes = real_minutes(shared_data, "2024-08-05 07:13", "2024-08-09 00:06")  # ends with the recorded trades
    trades = real_trades(shared_data)
    trades = cut(trades, trades.ts >= 1_723_161_255_000)  # the last recorded session
    spec = InputSpec((WindowSpec("1m", 300), WindowSpec("1h", 48)))
    store = DuckDBStore(tmp_path / "m.duckdb")
    try:
        store.write_candles(minutes)
        store.write_trades(trades)
        eng = DataEngine("binance", spec=spec, derive={"1m": ["1h"]})
        times = {int(minutes.ts[i]) + MIN for i in (120, 2_000, 4_000, len(minutes) - 8, len(minutes) - 1)}
        times.add(int(trades.ts[len(trades) // 2]) + 1)  # a moment between bars, inside the trades
        checked: list[bool] = []

        def check(t: int) -> None:  # as of t: the engine has taken every event known by t, none after
            live = eng.input_at(SYM, t)
            assert_equal_inputs(live, build_input(store, "binance", SYM, t, spec))
            assert len(live.ohlcv[(SYM, "1m")]) == min(300, int(np.searchsorted(minutes.ts + MIN, t, "right")))
            times.discard(t)
            checked.append(live.microstructure is not None)

        for ev in HistoricalFeed([minutes], [trades]).events():
            for t in sorted(x for x in times if x < ev.known_at):
                check(t)
            eng.on_event(ev)
        for t in sorted(times):
            check(t)
        assert len(checked) == 6 and sum(checked) == 3  # three of the times lie in the recorded trades
        last = eng.input_at(SYM, int(minutes.ts[-1]) + MIN)
        assert last.microstructure is not None and last.microstructure["trades_60s"] > 0
        assert len(last.ohlcv[(SYM, "1h")]) == 48 and len(last.pivots[(SYM, "1h")].highs[0]) > 0
    finally:
        store.close()


def test_detector_state_of_the_engine_continues_like_an_uninterrupted_one() -> None:
    minutes = hand_minutes()
    eng = DataEngine("binance", trade_timeframe=None)
    for ev in HistoricalFeed([minutes.slice(0, 60)]).events():
        eng.on_event(ev)
    det = eng.detector(SYM, "1m")
    assert det is not None
    restored = WilliamsMarketStructure.from_state(det.state())
    for i in range(60, len(minutes)):
        o, h, lo, c = (float(getattr(minutes, f)[i]) for f in ("open", "high", "low", "close"))
        assert restored.on_bar(i, o, h, lo, c, int(minutes.ts[i]), int(minutes.ts[i]) + MIN) == det.on_bar(
            i, o, h, lo, c, int(minutes.ts[i]), int(minutes.ts[i]) + MIN
        )


class RecordingSink:
    """Records what the engine hands a sink (the protocol's calls), in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[str, str], int, int, bool]] = []
        self.ticks: list[int] = []
        self.flushes = 0

    def bar_closed(
        self, key: tuple[str, str], bar: Bar, pivots: Sequence[PivotEvent], detector: WilliamsMarketStructure, *, new: bool
    ) -> None:
        self.calls.append((key, bar.ts, len(pivots), new))

    def tick(self, now: int) -> None:
        self.ticks.append(now)

    def flush(self) -> None:
        self.flushes += 1


def test_warm_up_continues_exactly_like_streaming_and_persists_no_stored_candle() -> None:
    minutes = hand_minutes()
    streamed = DataEngine("binance", trade_timeframe=None, derive={"1m": ["15m"]}, pivot_params=PivotParams(levels=3))
    for ev in HistoricalFeed([minutes]).events():
        streamed.on_event(ev)
    sink = RecordingSink()
    warmed = DataEngine("binance", trade_timeframe=None, derive={"1m": ["15m"]}, pivot_params=PivotParams(levels=3), sink=sink)
    warmed.warm_up(minutes.slice(0, 70))
    rest = minutes.slice(70, len(minutes))
    for ev in HistoricalFeed([rest]).events():
        warmed.on_event(ev)
    for tf in ("1m", "15m"):
        assert warmed.candles(SYM, tf).equals(streamed.candles(SYM, tf))
        assert batch_rows(warmed.pivots(SYM, tf)) == batch_rows(streamed.pivots(SYM, tf))
    assert [c[3] for c in sink.calls] == [False] * (70 + 3) + [True] * (len(minutes) - 70 + 4)  # 15m: 0, 15, 45 | 60..105
    assert sum(c[2] for c in sink.calls) == sum(
        len(a) for s in (streamed.pivots(SYM, "1m"), streamed.pivots(SYM, "15m")) for a in (*s.highs, *s.lows)
    )  # fmt: skip  (every pivot, once)
    assert sink.ticks == [int(t) for t in rest.ts + MIN] and sink.flushes == 0
    warmed.flush()
    assert sink.flushes == 1
    with pytest.raises(UserInputError, match="warm up the source timeframe"):
        warmed.warm_up(resample(minutes, "15m")[0])


trade_streams = st.lists(
    st.tuples(st.integers(0, 2_500), st.sampled_from([99.5, 100.0, 100.25, 101.0]), st.sampled_from([0.001, 0.5, 2.0])),
    min_size=1,
    max_size=60,
)


@given(trade_streams, st.integers(0, 4_000))
@settings(max_examples=150, deadline=None)
def test_any_trade_stream_any_cut_gives_the_batch_builders_complete_bars(
    rows: list[tuple[int, float, float]], extra: int
) -> None:
    rows = sorted(rows, key=lambda r: r[0])
    ts = np.array([r[0] for r in rows], np.int64)
    trades = Trades(ts, np.arange(len(rows), dtype=np.int64), np.array([r[1] for r in rows]), np.array([r[2] for r in rows]),
                    np.zeros(len(rows), bool), "binance", SYM)  # fmt: skip
    eng = DataEngine("binance")
    for i, r in enumerate(rows):
        eng.on_event(tick(r[0], r[1], r[2], i + 1))
        closed = eng.candles(SYM, "1s")
        assert closed.equals(candles_from_trades(cut(trades, np.arange(len(rows)) <= i), "1s", until=r[0])[0])
    until = int(ts[-1]) + extra
    eng.advance(until)
    assert eng.candles(SYM, "1s").equals(candles_from_trades(trades, "1s", until=until)[0])
