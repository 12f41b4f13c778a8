"""``pivotal run`` driven: a prepared run (``services.run.prepare``) through the event engine, whole (``backtest``)
or as a replay session of its bars through a trading node (``replay``), optionally journaled. Both return the
``BacktestRun`` that ``pivotal backtest`` returns, so the CLI prints and exports them the same way.

With a risk configuration the node trades under ``risk.engine.RiskEngine`` (its gate, and ``RiskManaged`` around
the strategy for its closing orders), the audit log at ``request.audit``; a backtest with one runs through the node
too (same engine, same trades as the whole-series path), since the whole-series path has no risk engine hook.
The audit log follows the journal's protocol (``RederivedAudit``): a run is re-derived from the feed's start, so
entries already in the file are matched, not rewritten, and only new ones are appended."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pivotal.config import Settings
from pivotal.core.clock import Clock
from pivotal.core.errors import UserInputError
from pivotal.core.events import BarClosed, MarketEvent
from pivotal.core.metrics import bar_stats
from pivotal.core.orders import Fill, Order
from pivotal.core.stats import max_drawdown
from pivotal.core.timeframes import TIMEFRAMES
from pivotal.data.candles import Candles
from pivotal.execution.engine import BacktestConfig, BacktestResult
from pivotal.execution.exchange_venue import ExchangeVenue
from pivotal.features.assemble import PredictionHistory
from pivotal.features.input_spec import InputSpec
from pivotal.features.model_io import BaseDataInput, WindowKey
from pivotal.risk.audit import AuditLog
from pivotal.risk.engine import RiskEngine
from pivotal.risk.managed import RiskManaged
from pivotal.runtime.data_engine import DataEngine
from pivotal.runtime.feed import Feed
from pivotal.runtime.feeds.historical import HistoricalFeed
from pivotal.runtime.journal import Journal
from pivotal.runtime.node import NodeSnapshot, TradingNode
from pivotal.runtime.replay import ReplaySession, ReplayState, Sleeper, check_speed
from pivotal.services.backtest import BacktestRun, BuyAndHold, run_backtest
from pivotal.services.run import LIVE_DATA, PreparedRun
from pivotal.services.strategies import strategy_spec
from pivotal.strategies.base import BarContext, StrategyProtocol
from pivotal.strategies.model_strategy import ModelStrategy
from pivotal.strategies.orchestrator import OrchestratorConfig

if TYPE_CHECKING:  # runtime.learning (queues, trainer processes) loads only for --live-training
    from pivotal.runtime.learning import LiveLearning


@dataclass(frozen=True)
class RunOutcome:
    """A finished run: the backtest-shaped result, and for a replay its session state and node counters."""

    run: BacktestRun
    mode: str
    session: ReplayState | None = None
    events: int = 0
    resumed_from: int | None = None  # a journaled replay restarted: the journal's last event time
    journal: Path | None = None
    snapshot: NodeSnapshot | None = None  # the node after the end of the feed (money in quote currency)
    audit: Path | None = None  # the risk engine's audit log
    sent: int | None = None  # testnet/live: orders this process sent to the exchange (a restart re-sends none)
    trade_symbols: tuple[str, ...] = ()  # the symbol of each trade of ``run.result.trades`` (several symbols)
    learning: dict[str, Any] | None = None  # --live-training: ``LiveLearning.stats()`` per model at the end

    def write_trades(self, path: Path) -> None:
        """The trade list as ``pivotal backtest`` writes it (.csv or .json); a run of several symbols adds a first
        column ``symbol`` naming each trade's market (one symbol: byte for byte the backtest's file)."""
        trades = self.run.result.trades
        if len(set(self.trade_symbols)) <= 1 and len(self.run.result.symbol_trades) <= 1:
            trades.write(path)
            return
        if path.suffix.lower() == ".json":
            rows = [{"symbol": s, **asdict(t), "side": t.side} for s, t in zip(self.trade_symbols, trades, strict=True)]
            path.write_text(json.dumps(rows, indent=1, allow_nan=True))
            return
        frame = trades.to_frame()
        frame.insert(0, "symbol", list(self.trade_symbols))
        frame.to_csv(path, index=False)

    def symbol_summary(self) -> list[dict[str, Any]]:
        """Per symbol: trades, wins, the sum of their net returns in percent (the status of each market)."""
        out = []
        for symbol, trades in self.run.result.symbol_trades.items():
            returns = [t.net_return for t in trades]
            out.append({"symbol": symbol, "trades": len(returns), "wins": sum(r > 0 for r in returns),
                        "net_return_pct": sum(returns) * 100.0})  # fmt: skip
        return out


class RederivedAudit(AuditLog):
    """The risk audit log of a run the node re-derives from its feed's start (a journaled restart, or a rerun).

    A plain ``AuditLog`` hands its entries to ``RiskEngine``, which restores the trips never reset: right for a live
    node that continues, wrong for a replay that starts over (it would meet HALTED from its first bar and trade
    differently). Here the engine starts with no trips, and each entry it writes is compared with the file's entry
    of the same ``seq``: equal, it is not written again; different, the log belongs to another run (one line);
    beyond the file's end, appended. A crash anywhere therefore leaves each entry written exactly once."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self.known, self.entries = self.entries, []

    def append(self, entry: dict[str, Any]) -> dict[str, Any]:
        seq = len(self.entries) + 1
        if seq > len(self.known):
            return super().append(entry)
        known, record = self.known[seq - 1], json.loads(json.dumps({"seq": seq, **entry}, allow_nan=True))
        if known != record:
            raise UserInputError(
                f"{self.path}: the risk audit log belongs to another run (entry {seq} is {known}, this run gives "
                f"{record}); use a new audit file or journal"
            )
        self.entries.append(known)
        return known


def execute(
    prepared: PreparedRun,
    *,
    clock: Clock | None = None,
    sleep: Sleeper | None = None,
    observer: Callable[[MarketEvent], None] | None = None,
    on_start: Callable[[TradingNode], None] | None = None,
    on_session: Callable[[ReplaySession], None] | None = None,
    on_feed: Callable[[Feed], None] | None = None,
) -> RunOutcome:
    """Run ``prepared`` in its mode; ``observer`` sees each replayed event after the node processed it, ``on_start``
    the node before the first event (the status view keeps it to take snapshots), ``on_session`` the replay session
    before it plays (the API controls it: pause, resume, seek, speed, stop), ``on_feed`` a paper/testnet/live run's
    feed before it starts (its ``stop()`` ends the run from another thread even when no bar arrives)."""
    req, bars = prepared.request, prepared.bars
    if req.mode in LIVE_DATA:
        return execute_live(prepared, observer=observer, on_start=on_start, on_feed=on_feed)
    series = prepared.markets
    if req.mode == "backtest" and req.risk is None and len(series) == 1 and not req.is_model:
        run = run_backtest(bars, req.strategy, prepared.params, fee_rate=req.fee_rate, slippage=req.slippage,
                           source=req.source.describe(), capital=req.capital)  # fmt: skip
        return RunOutcome(run, req.mode)
    speed = check_speed(req.speed) if req.mode == "replay" else 0.0  # a backtest under risk: as fast as possible
    config = BacktestConfig(fee_rate=req.fee_rate, slippage=req.slippage)
    journal = Journal(req.journal) if req.journal is not None else None
    risk: RiskEngine | None = None
    learning: LiveLearning | None = None
    learned: dict[str, Any] | None = None
    try:
        strategy = build_strategy(prepared, [c.symbol for c in series])
        model = strategy if isinstance(strategy, ModelStrategy) else None
        markets = [(c.symbol, c.timeframe) for c in series]
        engine: DataEngine | None = None
        warm: Callable[[int], None] | None = None
        if model is not None and req.live_training:
            if req.journal is not None:
                raise UserInputError("--live-training with --journal: a restart cannot re-derive weights trained live; "
                                     "leave out --journal")  # fmt: skip
            engine, warm, _ = live_data_engine(prepared, model, markets)
        if req.risk is not None:
            risk = RiskEngine(req.risk, audit=None if req.audit is None else RederivedAudit(req.audit))
            strategy = RiskManaged(strategy, risk)
        node = TradingNode(strategy, markets, exchange=bars.exchange, config=config, journal=journal,
                           run=prepared.header(), gate=risk, data_engine=engine)  # fmt: skip
        if model is not None and journal is not None:
            model.orchestrator.sink = _journal_decisions(node)
        if engine is not None and model is not None:
            learning = _live_learning(prepared, model, engine, markets).attach(node)
        if on_start is not None:
            on_start(node)
        resumed = node.recovery.last_event_time if node.recovery is not None else None

        def sink(event: MarketEvent) -> None:
            nonlocal warm
            if warm is not None:  # live training: the stored history before the first event seeds the data engine
                warm(event.known_at)
                warm = None
            node.on_event(event)
            if observer is not None:
                observer(event)

        session = ReplaySession(HistoricalFeed(list(series)), sink, speed=speed, clock=clock, sleep=sleep)
        if on_session is not None:
            on_session(session)
        state = session.run()
        result = node.finish()
        snapshot = node.snapshot(node.last_time, req.capital)
        if learning is not None:
            learning.flush()
            learned = learning.stats()
    finally:
        if learning is not None:
            learning.close()
        if journal is not None:
            journal.close()
        if risk is not None:
            risk.audit.close()
    if len(series) > 1:
        _portfolio_metrics(result, min(TIMEFRAMES.get(c.timeframe, 0) for c in series))
    run = BacktestRun(
        req.strategy, prepared.params, prepared.describe(), sum(len(c) for c in series), result, config,
        capital=req.capital, timeframe=bars.timeframe, first_ts=min(int(c.ts[0]) for c in series),
        end_ts=max(int(c.ts[-1]) + TIMEFRAMES.get(c.timeframe, 0) for c in series),
        buy_and_hold=basket_buy_and_hold(series, req.fee_rate, req.slippage),
    )  # fmt: skip
    return RunOutcome(
        run, req.mode, session.status() if state else None, node.events, resumed, req.journal, snapshot,
        req.audit if risk is not None else None, trade_symbols=tuple(s for s, _ in node.engine.trades), learning=learned,
    )  # fmt: skip


def _live_learning(
    prepared: PreparedRun, model: ModelStrategy, engine: DataEngine, markets: Sequence[tuple[str, str]]
) -> LiveLearning:
    """Live training for a model run (``--live-training``; replay, backtest under the node, paper, testnet, live): L2
    pivots of the traded timeframes become samples for an out-of-process trainer; promoted versions are hot-swapped
    between bars (``runtime.learning``)."""
    from pivotal.config import load_settings
    from pivotal.runtime.learning import LiveLearning, LiveLearningConfig
    from pivotal.training.live_samples import LivePivotConfig

    config = LiveLearningConfig(pivots=LivePivotConfig(timeframes=tuple(sorted({tf for _, tf in markets}))))
    return LiveLearning.for_run(prepared.settings or load_settings(), model, engine, config)


_ORCHESTRATOR_KEYS = {f.name for f in fields(OrchestratorConfig)} - {"weights"}  # weights: from the [[models]] entries


class PerSymbol:
    """A registered rule strategy on several symbols: one instance per symbol, each seeing only its own bars and
    fills, exactly as in a single-symbol run (a rule strategy keeps its series' state: closes, pivots, levels). The
    symbols share the node's one portfolio and risk engine, and the capital equally: an entry sized as a fraction of
    equity gets that fraction divided by the number of symbols (an entry with a quantity keeps it), so a run of n
    symbols is the equal-weight portfolio its buy-and-hold basket is compared with. Trades (fills, returns) are the
    single-symbol run's; only the money each one moves is split."""

    def __init__(self, factory: Callable[[], StrategyProtocol], symbols: Sequence[str]) -> None:
        self.by_symbol = {s: factory() for s in symbols}
        self.share = 1.0 / len(self.by_symbol)

    def on_bar(self, ctx: BarContext) -> list[Order]:
        orders = self.by_symbol[ctx.bar.symbol].on_bar(ctx)
        return [self._sized(o) for o in orders] if orders else orders

    def _sized(self, order: Order) -> Order:
        if order.action != "enter" or order.quantity is not None:
            return order
        return replace(order, fraction=order.fraction * self.share)

    def on_fill(self, fill: Fill) -> None:
        self.by_symbol[fill.symbol].on_fill(fill)


def build_strategy(prepared: PreparedRun, symbols: Sequence[str] = ()) -> StrategyProtocol:
    """The run's strategy: a registered one from its parameters (one instance per symbol when ``symbols`` names
    several: ``PerSymbol``), or for ``strategy = "model"`` with [[models]] a ``ModelStrategy`` (one for all symbols:
    its predictors and orchestrator key everything by symbol) whose checkpoints load now ("the best at start"; a
    missing one is one line naming those that exist). Its inputs come from the market store of the run's settings
    (bars before the window too: a model needs its window of history at the first decision), or from the candle
    file for an ``--input`` run."""
    req = prepared.request
    if not req.is_model:
        spec = strategy_spec(req.strategy)
        if len(symbols) > 1:
            return PerSymbol(lambda: spec.factory(prepared.params), symbols)
        return spec.factory(prepared.params)
    from pivotal.config import load_settings
    from pivotal.services.model_strategy import model_strategy_from_config

    settings = prepared.settings or load_settings()
    from_file = req.source.path is not None
    params = prepared.params  # services.run.model_params: the effective settings
    orchestrator = {k: v for k, v in params.items() if k in _ORCHESTRATOR_KEYS}
    return model_strategy_from_config(
        settings, list(req.models), orchestrator, candles=prepared.bars if from_file else None,
        exchange=prepared.bars.exchange or None, fraction=float(params.get("fraction", 1.0)) / max(1, len(symbols)),
        keep_on_abstain=bool(params.get("keep_on_abstain", False)), threads=1,
    )  # fmt: skip


def _portfolio_metrics(result: BacktestResult, tf_ms: int) -> None:
    """Several symbols: the merged equity curve's per-bar metrics (drawdown, Sharpe on bars) are computed as a single
    symbol's are (the engine ends the curve at the equity after every symbol's end-of-data exit)."""
    curve = result.equity
    if len(curve.equity) and tf_ms:
        result.metrics.update(bar_stats(curve.equity, curve.in_position, tf_ms))


def _journal_decisions(node: TradingNode) -> Callable[[Any], None]:
    """The orchestrator's sink: every decision (as-of time, contributing outputs) to the journal, keyed by symbol and
    time so a re-derived run writes none twice."""

    def sink(decision: Any) -> None:
        node.record("model_decision", f"model_decision:{decision.symbol}:{decision.ts}", decision.to_dict(), acts=False)

    return sink


def basket_buy_and_hold(series: Sequence[Candles], fee_rate: float, slippage: float) -> BuyAndHold:
    """Buy-and-hold of one market, or of an equal-weight basket of several (each leg bought at its first open and sold
    at its last close with the same costs; the drawdown is the basket's on closes, each leg carried forward)."""
    if len(series) == 1:
        return BuyAndHold.of(series[0], fee_rate, slippage)
    legs = [BuyAndHold.of(c, fee_rate, slippage) for c in series]
    times = np.unique(np.concatenate([np.asarray(c.ts, np.int64) for c in series]))
    value = np.zeros(times.size)
    for c in series:
        rel = np.asarray(c.close, np.float64) / float(c.open[0])
        at = np.searchsorted(np.asarray(c.ts, np.int64), times, side="right") - 1
        value += np.where(at >= 0, rel[at.clip(0)], 1.0)
    curve = np.concatenate(([1.0], value / len(series)))
    return BuyAndHold(sum(leg.net_profit_pct for leg in legs) / len(legs), max_drawdown(curve))


def execute_live(
    prepared: PreparedRun,
    *,
    feed: Feed | None = None,
    venue: ExchangeVenue | None = None,
    settings: Settings | None = None,
    observer: Callable[[MarketEvent], None] | None = None,
    on_start: Callable[[TradingNode], None] | None = None,
    on_feed: Callable[[Feed], None] | None = None,
) -> RunOutcome:
    """A paper, testnet or live run: the live feed's events through a trading node until the bar closing at
    ``source.end`` (or Ctrl-C), then the node finishes as a backtest does (what is open exits at the last close).
    ``feed`` / ``venue`` replace the ones the request describes (``live_feed_for`` on a ccxt.pro client, and for
    testnet/live ``CcxtVenue`` with the keys of ``settings``): tests pass their own. Paper fills with the simulated
    venue; testnet/live through ``exchange_node.ExchangeBook``. Restarting on a journal re-derives the run from
    ``source.start`` (required with a journal) and reconciles the orders it sent with the exchange by client id.

    Several symbols (paper) share the node, its portfolio and the one feed, as in a replay. A model strategy reads
    its inputs from the node's data engine (``live_data_engine``), seeded at the feed's first event with the stored
    history before it, so each decision sees the input a replay of the same bars sees."""
    from pivotal.config import Settings as _Settings
    from pivotal.execution.ccxt_venue import CcxtVenue
    from pivotal.runtime.exchange_node import ExchangeBook, feed_client_factory
    from pivotal.runtime.feeds.live import live_feed_for

    req, empty = prepared.request, prepared.bars
    src = req.source
    markets = [(c.symbol, c.timeframe) for c in prepared.markets]
    if len({tf for _, tf in markets}) > 1:
        raise UserInputError(f"--mode {req.mode} trades one timeframe for all symbols; got {markets}")
    tf_ms = TIMEFRAMES[empty.timeframe]
    if req.journal is not None and src.start is None:
        raise UserInputError(f"--journal with --mode {req.mode} needs --start: a restart re-derives the run from it")
    exchange = req.venue_exchange or empty.exchange
    sandbox = req.mode != "live"
    strategy = build_strategy(prepared, [s for s, _ in markets])  # checkpoints load now: a missing one is one line
    model = strategy if isinstance(strategy, ModelStrategy) else None
    engine: DataEngine | None = None
    warm: Callable[[int], None] | None = None
    watch = ([s for s, _ in markets], [empty.timeframe])
    if model is not None:
        engine, warm, watch = live_data_engine(prepared, model, markets)
    if model is not None and req.live_training and req.journal is not None:
        raise UserInputError("--live-training with --journal: a restart cannot re-derive weights trained live; "
                             "leave out --journal")  # fmt: skip
    if feed is None:
        feed = live_feed_for(feed_client_factory(exchange, sandbox=sandbox and req.mode == "testnet", rest_url=req.rest_url,
                                                 ws_url=req.ws_url), *watch)  # fmt: skip
    if on_feed is not None:
        on_feed(feed)
    config = BacktestConfig(fee_rate=req.fee_rate, slippage=req.slippage if req.mode == "paper" else 0.0)
    journal = Journal(req.journal) if req.journal is not None else None
    risk: RiskEngine | None = None
    book: ExchangeBook | None = None
    seen: dict[str, list[tuple[int, float, float, float, float, float]]] = {s: [] for s, _ in markets}
    traded = dict(markets)
    ended: set[str] = set()
    first: int | None = None
    learning: LiveLearning | None = None
    learned: dict[str, Any] | None = None
    try:
        if req.mode != "paper":
            if venue is None:
                venue = CcxtVenue.from_settings(settings or _Settings(), exchange, sandbox=req.mode == "testnet",
                                                rest_url=req.rest_url)  # fmt: skip
            book = ExchangeBook(venue, capital=req.capital, fee_rate=req.fee_rate, adopt_foreign_orders=req.adopt_foreign_orders)
        if req.risk is not None:
            risk = RiskEngine(req.risk, audit=None if req.audit is None else RederivedAudit(req.audit))
            strategy = RiskManaged(strategy, risk)
        node = TradingNode(strategy, markets, exchange=empty.exchange, config=config, journal=journal,
                           run=prepared.header(), gate=risk, venue=book, data_engine=engine)  # fmt: skip
        if model is not None and journal is not None:
            model.orchestrator.sink = _journal_decisions(node)
        if book is not None:
            book.attach(node)
        if engine is not None and model is not None and req.live_training:
            learning = _live_learning(prepared, model, engine, markets).attach(node)
        if on_start is not None:
            on_start(node)
        resumed = node.recovery.last_event_time if node.recovery is not None else None
        try:
            for event in feed.events(None if src.start is None else src.start + tf_ms):
                if src.end is not None and event.known_at > src.end:
                    break
                if first is None:
                    first = event.known_at
                    if warm is not None:  # the stored history before the first event the feed delivers
                        warm(first)
                node.on_event(event)
                if isinstance(event, BarClosed) and traded.get(event.bar.symbol) == event.bar.timeframe:
                    b = event.bar
                    seen[b.symbol].append((b.ts, b.open, b.high, b.low, b.close, b.volume))
                if observer is not None:
                    observer(event)
                if src.end is not None and event.known_at >= src.end and isinstance(event, BarClosed):
                    ended.add(event.bar.symbol)  # several symbols: each one's bar closing at the end is taken
                    if ended >= traded.keys():
                        break
        except KeyboardInterrupt:
            pass
        finally:
            stop = getattr(feed, "stop", None)
            if callable(stop):
                stop()
        if engine is not None:  # bars the engine built or derived for a traded market
            for symbol, timeframe in markets:
                if not seen[symbol]:
                    got = engine.candles(symbol, timeframe)
                    tf = TIMEFRAMES[timeframe]  # the bars that closed during the run, not the seeded history
                    seen[symbol] = [
                        _row_of(got, i) for i in range(len(got)) if first is not None and int(got.ts[i]) + tf >= first
                    ]
        missing = [s for s, rows in seen.items() if not rows]
        if missing:
            raise UserInputError(f"--mode {req.mode}: the feed delivered no closed bar of {', '.join(missing)} {empty.timeframe}")
        result = node.finish()
        snapshot = node.snapshot(node.last_time, req.capital)
        if learning is not None:
            learning.flush()
            learned = learning.stats()
    finally:
        if learning is not None:
            learning.close()
        if journal is not None:
            journal.close()
        if risk is not None:
            risk.audit.close()
    series = [_candles_of(seen[s], empty.exchange, s, tf) for s, tf in markets]
    if len(series) > 1:
        _portfolio_metrics(result, tf_ms)
    describe = req.source.describe() if len(series) == 1 else prepared.describe()
    run = BacktestRun(
        req.strategy, prepared.params, describe, sum(len(c) for c in series), result, config, capital=req.capital,
        timeframe=empty.timeframe, first_ts=min(int(c.ts[0]) for c in series),
        end_ts=max(int(c.ts[-1]) for c in series) + tf_ms,
        buy_and_hold=basket_buy_and_hold(series, req.fee_rate, req.slippage),
    )  # fmt: skip
    return RunOutcome(run, req.mode, None, node.events, resumed, req.journal, snapshot, req.audit if risk else None,
                      sent=None if book is None else book.sent,
                      trade_symbols=tuple(s for s, _ in node.engine.trades), learning=learned)  # fmt: skip


def _row_of(c: Candles, i: int) -> tuple[int, float, float, float, float, float]:
    return (int(c.ts[i]), float(c.open[i]), float(c.high[i]), float(c.low[i]), float(c.close[i]), float(c.volume[i]))


def _candles_of(rows: Sequence[tuple[int, float, float, float, float, float]], exchange: str, symbol: str,
                timeframe: str) -> Candles:  # fmt: skip
    cols = list(zip(*rows, strict=True))
    o, h, lo, c, v = (np.asarray(col, float) for col in cols[1:])
    return Candles(np.asarray(cols[0], np.int64), o, h, lo, c, v, exchange, symbol, timeframe)


def live_data_engine(
    prepared: PreparedRun, model: ModelStrategy, markets: Sequence[tuple[str, str]]
) -> tuple[DataEngine, Callable[[int], None], tuple[list[str], list[str]]]:
    """The data engine a live model node reads its inputs from, the function that seeds it, and what the live feed
    must watch (symbols, timeframes).

    Its series are every window the models read for the traded symbols (their input specs' keys: context timeframes,
    a reference symbol) plus the traded markets. The finest timeframe is fed by the live feed; every whole multiple of
    it is derived by the engine causally (a bucket the moment its last bar closes, within the event that closes it,
    so a decision at t sees the coarser bar closing at t, as a replay does); any other timeframe is fed too. Each
    predictor reads ``DataEngine.input_at`` with its own input spec. The seed (``warm(t)``, called with the first
    event's time) is the stored history that closed before t, loaded as training loads it
    (``services.model_strategy.history_series``): the engine's series then start where the stored series start, and
    its inputs equal those a replay of the same bars builds from the store."""
    from pivotal.config import load_settings
    from pivotal.services.model_strategy import CheckpointPredictor, history_series

    predictors = [p for p in model.predictors if isinstance(p, CheckpointPredictor)]
    if len(predictors) != len(model.predictors):  # pragma: no cover - the runner builds checkpoint predictors only
        raise UserInputError("a live model node needs checkpoint predictors")
    symbols = [s for s, _ in markets]
    keys: dict[str, set[str]] = {s: {tf} for s, tf in markets}
    params = set()
    for symbol in symbols:
        for predictor in predictors:
            spec = predictor.input_spec(symbol)
            params.add(spec.pivot_params)
            for sym, tf in spec.keys(symbol):
                keys.setdefault(sym, set()).add(tf)
    if len(params) > 1:
        raise UserInputError(
            f"models: the checkpoints use different pivot parameters ({sorted(map(str, params))}); a live node trades "
            "models with one set of pivot parameters"
        )
    timeframes = sorted({tf for tfs in keys.values() for tf in tfs}, key=lambda tf: TIMEFRAMES[tf])
    finest = TIMEFRAMES[timeframes[0]]
    derived = [tf for tf in timeframes[1:] if TIMEFRAMES[tf] % finest == 0]
    fed = [tf for tf in timeframes if tf not in derived]
    engine = DataEngine(prepared.bars.exchange, trade_timeframe=None, derive={timeframes[0]: derived} if derived else {},
                        pivot_params=params.pop())  # fmt: skip

    def inputs(symbol: str, t: int, spec: InputSpec, history: PredictionHistory | None) -> BaseDataInput | None:
        return engine.input_at(symbol, t, history, spec)

    for predictor in predictors:
        predictor.inputs = inputs
    settings = prepared.settings or load_settings()

    def warm(before: int) -> None:
        seed: dict[WindowKey, Candles] = {}
        for symbol in symbols:
            for key, candles in history_series(settings, predictors, symbol, before).items():
                seed.setdefault(key, candles)
        engine.warm_up_series(seed)

    return engine, warm, (sorted(keys, key=lambda s: (s not in symbols, symbols.index(s) if s in symbols else 0, s)), fed)
