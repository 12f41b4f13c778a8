"""ModelStrategy through the backtest engine: exact trades on hand bars, causality (prefix test), output storage,
the registered ``model`` strategy, and a real small CNN trained here and traded on real Binance bars."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pytest

from pivotal.config import load_settings
from pivotal.core.errors import DataNotFound, UserInputError
from pivotal.core.timeframes import timeframe_ms
from pivotal.data.backends import open_store
from pivotal.data.candles import Candles
from pivotal.execution.backtest import backtest
from pivotal.features.model_io import ModelOutput
from pivotal.models.output_store import OutputStore
from pivotal.strategies import model_strategy as ms
from pivotal.strategies.model_strategy import ModelStrategy, Predictor
from pivotal.strategies.orchestrator import Decision, Orchestrator, OrchestratorConfig

pytestmark = pytest.mark.unit

T0 = 1_700_000_000_000
MIN = timeframe_ms("1d")  # one hand bar (a day: annualised metrics of 10 bars stay finite)
CLOSES = [100.0, 101.0, 102.0, 101.0, 101.0, 103.0, 104.0, 104.0, 105.0, 106.0]
OPENS = [100.0, 100.5, 101.5, 102.5, 100.5, 101.5, 103.5, 104.5, 103.5, 105.5]


def hand_candles(n: int = len(CLOSES)) -> Candles:
    o, c = np.array(OPENS[:n]), np.array(CLOSES[:n])
    ts = T0 + MIN * np.arange(n, dtype=np.int64)
    return Candles(ts, o, np.maximum(o, c) + 1, np.minimum(o, c) - 1, c, np.ones(n), "binance", "BTC/USDT", "1d")


def _output(name: str, symbol: str, t: int, dv: float) -> ModelOutput:
    buy, sell = max(dv, 0.0), max(-dv, 0.0)
    probs = {"BUY": buy, "SELL": sell, "HOLD": 1.0 - buy - sell}
    action = "BUY" if dv > 0 else "SELL" if dv < 0 else "HOLD"
    return ModelOutput("rule", name, symbol, t, 1.0, action, probs, dv, abs(dv))  # type: ignore[arg-type]


class Momentum:
    """Deterministic predictor: as of t, BUY if the last closed bar closed above the one before, SELL if below, HOLD
    if equal; nothing before two bars are closed. It holds the whole series and cuts it at t, as a checkpoint predictor
    cuts its prepared series (``peek`` bars of look-ahead make it a leaky negative control)."""

    def __init__(self, candles: Candles, peek: int = 0, name: str = "momentum") -> None:
        self.candles, self.peek, self._name = candles, peek, name
        self.asked: list[int] = []

    @property
    def name(self) -> str:
        return self._name

    def predict(self, symbol: str, t: int, last_predictions: Mapping[str, ModelOutput], position: int = 0) -> ModelOutput | None:
        self.asked.append(t)
        known = int(np.searchsorted(self.candles.ts + MIN, t + self.peek * MIN, side="right"))
        if known < 2:
            return None
        c = self.candles.close
        return _output(self.name, symbol, t, float(np.sign(c[known - 1] - c[known - 2])))


def _trades(result) -> list[tuple]:
    return [(t.direction, t.signal_bar, t.entry_bar, t.entry_fill, t.exit_bar, t.exit_fill, t.exit_reason) for t in result.trades]


def test_exact_trades_on_hand_bars() -> None:
    candles = hand_candles()
    strategy = ModelStrategy([Momentum(candles)])
    result = backtest(strategy, candles, fee_rate=0.0, slippage=0.0)
    assert _trades(result) == [
        (1, 1, 2, 101.5, 4, 100.5, "SIGNAL"),  # BUY at bar 1's close, filled at bar 2's open
        (-1, 3, 4, 100.5, 5, 101.5, "SIGNAL"),  # SELL at bar 3: exit long + enter short at bar 4's open (reversal)
        (1, 5, 6, 103.5, 8, 103.5, "SIGNAL"),  # HOLD at bar 4 flattened the short; HOLD at bar 7 flattens this
        (1, 8, 9, 105.5, 9, 106.0, "EOD"),
    ]
    actions = [str(d.action) for d in strategy.decisions]
    assert actions == ["HOLD", "BUY", "BUY", "SELL", "HOLD", "BUY", "BUY", "HOLD", "BUY", "BUY"]
    assert strategy.decisions[0].reason == "no output"
    assert [d.as_of for d in strategy.decisions] == [int(x) + MIN for x in candles.ts]  # each bar's close time


def test_keep_on_abstain_holds_the_position_through_hold() -> None:
    candles = hand_candles()
    result = backtest(ModelStrategy([Momentum(candles)], keep_on_abstain=True), candles, fee_rate=0.0, slippage=0.0)
    assert _trades(result) == [
        (1, 1, 2, 101.5, 4, 100.5, "SIGNAL"),
        (-1, 3, 4, 100.5, 6, 103.5, "SIGNAL"),  # kept through bar 4's HOLD, reversed by bar 5's BUY
        (1, 5, 6, 103.5, 9, 106.0, "EOD"),
    ]


def _decisions(candles: Candles, peek: int = 0) -> list[Decision]:
    strategy = ModelStrategy([Momentum(candles, peek)])
    backtest(strategy, candles, fee_rate=0.0, slippage=0.0)
    return strategy.decisions


@pytest.mark.parametrize("cut", [3, 4, 7])
def test_prefix_decisions_do_not_change_when_bars_are_appended(cut: int) -> None:
    """The predictor holds the *whole* series; the decisions up to bar ``cut`` equal those of a run on the first
    ``cut`` bars only (the as-of cut), and a predictor that peeks one bar ahead fails this same test."""
    full, prefix = hand_candles(), hand_candles(cut)
    assert _decisions(full)[:cut] == _decisions(prefix)
    assert _decisions(full, peek=1)[:cut] != _decisions(prefix, peek=1)


def test_outputs_go_to_the_output_store_with_their_as_of_times() -> None:
    candles = hand_candles()
    market = open_store()
    try:
        outputs = OutputStore(market)
        backtest(ModelStrategy([Momentum(candles)], outputs=outputs), candles, fee_rate=0.0, slippage=0.0)
        stored = outputs.query("momentum", symbol="BTC/USDT")
        assert [o.timestamp for o in stored] == [int(x) + MIN for x in candles.ts[1:]]  # bar 0: input not ready
        assert [o.action for o in stored] == ["BUY", "BUY", "SELL", "HOLD", "BUY", "BUY", "HOLD", "BUY", "BUY"]
        assert OutputStore(market).last_predictions("BTC/USDT", int(candles.ts[4]) + MIN)["momentum"].action == "HOLD"
    finally:
        market.close()


class Follower:
    """A model fed by another ("last predictions"): repeats momentum's newest output known at t, with its time."""

    name = "follower"

    def __init__(self) -> None:
        self.seen: list[tuple[int, int | None]] = []

    def predict(self, symbol: str, t: int, last_predictions: Mapping[str, ModelOutput], position: int = 0) -> ModelOutput | None:
        leader = last_predictions.get("momentum")
        self.seen.append((t, None if leader is None else leader.timestamp))
        return None if leader is None else _output(self.name, symbol, t, leader.direction_vector)


def test_models_feed_each_other_through_last_predictions() -> None:
    candles = hand_candles()
    follower = Follower()
    strategy = ModelStrategy(
        [Momentum(candles), follower], Orchestrator(OrchestratorConfig(weights={"momentum": 1.0, "follower": 1.0}))
    )
    backtest(strategy, candles, fee_rate=0.0, slippage=0.0)
    closes = [int(x) + MIN for x in candles.ts]
    assert follower.seen == [(closes[0], None)] + [(t, t) for t in closes[1:]]  # this bar's output, never a later one
    assert all(len(d.contributions) == 2 for d in strategy.decisions[1:])


@pytest.fixture
def loader() -> Iterator[list[Momentum]]:
    made: list[Momentum] = []
    saved = list(ms._loader)

    def load(names, params) -> list[Predictor]:
        made.extend(Momentum(hand_candles(), name=n) for n in names)
        return list(made)

    ms.install_predictor_loader(load)
    yield made
    ms._loader[:] = saved


def test_registered_model_strategy_loads_its_predictors_at_start(loader: list[Momentum]) -> None:
    candles = hand_candles()
    result = backtest("model", candles, params={"models": "momentum", "buy_threshold": 0.5}, fee_rate=0.0, slippage=0.0)
    assert len(loader) == 1 and loader[0].asked[0] == int(candles.ts[0]) + MIN
    direct = backtest(ModelStrategy([Momentum(candles)]), candles, fee_rate=0.0, slippage=0.0)
    assert _trades(result) == _trades(direct)


def test_registered_model_strategy_without_models_says_so(loader: list[Momentum]) -> None:
    with pytest.raises(UserInputError, match="models=NAME"):
        backtest("model", hand_candles())


def test_bars_without_a_close_time_are_refused() -> None:
    c = hand_candles()
    bare = Candles(c.ts, c.open, c.high, c.low, c.close, c.volume, symbol="BTC/USDT")
    with pytest.raises(ValueError, match="close time"):
        backtest(ModelStrategy([Momentum(c)]), bare)


# -------------------------------------------------------------------------------- a real small CNN, real bars


def test_a_trained_cnn_trades_real_bars_causally(shared_data: Path) -> None:
    """Train a tiny CNN on 600 real Binance BTC/USDT 1h bars, checkpoint it, trade it from the checkpoint through
    the engine: outputs stored at each bar's close time, equal to ``pivotal predict``'s, a prefix run gives the same
    decisions, and every trade fills at the open after the bar whose decision it follows."""
    import torch

    from pivotal.services.model_strategy import model_strategy_from_checkpoint
    from pivotal.services.predict import predict
    from pivotal.services.train import checkpoints
    from pivotal.training.pipeline import RunSpec, load_series, make_samples, new_supervised
    from tests.models.real_samples import real_candles

    torch.set_num_threads(1)
    base = real_candles(shared_data, 600, offset=19_000)
    spec = RunSpec("cnn", "binance", "BTC/USDT", ("1h",), window=100, progress=False)
    samples = make_samples(load_series(None, spec, base), spec)
    model = new_supervised(spec)
    rng = np.random.default_rng(0)
    for _ in range(20):
        model.train_step(samples.batch(np.sort(rng.choice(len(samples), 64, replace=False))))
    settings = load_settings()
    span = {"exchange": "binance", "symbol": "BTC/USDT", "start": int(base.ts[0]), "end": int(base.ts[-1])}
    checkpoints(settings).save(model, "val_loss", 1.0, False, span, spec.extra())
    market = open_store(settings)
    try:
        market.write_candles(base, source="test slice")
    finally:
        market.close()

    config = OrchestratorConfig(buy_threshold=0.0, sell_threshold=0.0)
    strategy = model_strategy_from_checkpoint(settings, "cnn", orchestrator=config)  # inputs from the store
    result = backtest(strategy, base)
    closes = [int(x) + timeframe_ms("1h") for x in base.ts]
    assert [d.as_of for d in strategy.decisions] == closes
    assert {d.reason for d in strategy.decisions[:99]} == {"no output"}  # < 100 bars closed: not ready, no guess
    stored = strategy.outputs.query("cnn", symbol="BTC/USDT")  # type: ignore[attr-defined]
    assert [o.timestamp for o in stored] == closes[99:]
    for k in (99, 300, 599):
        again = predict(settings, "cnn", "BTC/USDT", closes[k])
        assert (again.direction_vector, again.action_probabilities) == (
            stored[k - 99].direction_vector,
            stored[k - 99].action_probabilities,
        )

    decided = {d.ts: d for d in strategy.decisions}
    for trade in result.trades:
        decision = decided[closes[trade.signal_bar]]
        assert decision.target == trade.direction and trade.entry_bar == trade.signal_bar + 1
        assert trade.entry_time == int(base.ts[trade.signal_bar + 1])
    assert len(result.trades) > 0

    cut = 450  # the same checkpoint fed only the first 450 bars: identical decisions on them
    prefix = model_strategy_from_checkpoint(settings, "cnn", orchestrator=config, candles=base.slice(0, cut))
    backtest(prefix, base.slice(0, cut))
    assert prefix.decisions == strategy.decisions[:cut]

    # `pivotal backtest --strategy model -p models=cnn ...`: the same trades through the backtest use case, which
    # installs the checkpoint loader itself (no import by the caller)
    from pivotal.services.backtest import run_backtest

    run = run_backtest(base, "model", {"models": "cnn", "buy_threshold": 0.0, "sell_threshold": 0.0})
    assert list(run.result.trades) == list(result.trades)


def test_replay_through_the_trading_node_gives_the_backtests_decisions_and_trades() -> None:
    from pivotal.core.clock import SimulatedClock
    from pivotal.runtime.feeds.historical import HistoricalFeed
    from pivotal.runtime.node import TradingNode
    from pivotal.runtime.replay import ReplaySession

    candles = hand_candles()
    expected = ModelStrategy([Momentum(candles)])
    result = backtest(expected, candles)
    live = ModelStrategy([Momentum(candles)])
    node = TradingNode(live, [("BTC/USDT", "1d")], exchange="binance")
    ReplaySession(HistoricalFeed([candles]), node.on_event, speed=0, clock=SimulatedClock(0)).run()
    assert _trades(node.finish()) == _trades(result) and live.decisions == expected.decisions


def test_model_strategy_from_a_run_configurations_tables() -> None:
    """``[[models]]`` and ``[orchestrator]`` of a run file: the checkpoint is loaded at once, weights configured."""
    from pivotal.services.model_strategy import model_strategy_from_config
    from pivotal.services.train import checkpoints
    from pivotal.training.pipeline import RunSpec, new_supervised

    spec = RunSpec("cnn", "binance", "BTC/USDT", ("1h",), window=100, progress=False)
    settings = load_settings()
    checkpoints(settings).save(new_supervised(spec), "val_loss", 1.0, False, {}, spec.extra())
    strategy = model_strategy_from_config(settings, [{"name": "cnn", "weight": 2.0}], {"buy_threshold": 0.3})
    assert [p.name for p in strategy.predictors] == ["cnn"]
    assert dict(strategy.orchestrator.config.weights or {}) == {"cnn": 2.0}
    assert strategy.orchestrator.config.buy_threshold == 0.3
    with pytest.raises(UserInputError, match="each model needs name"):
        model_strategy_from_config(settings, [{"model": "cnn"}])
    with pytest.raises(DataNotFound, match=r"^model strategy: no checkpoints for model 'rnn' under .*; have: cnn$"):
        model_strategy_from_config(settings, [{"name": "rnn"}])


def test_registered_parameters_are_validated() -> None:
    from pivotal.strategies.registry import get_strategy

    spec = get_strategy("model")
    assert spec.validate({"models": "cnn", "vote": "action"})["vote"] == "action"
    with pytest.raises(UserInputError, match="vote='majority' is not one of"):
        spec.validate({"vote": "majority"})
    with pytest.raises(UserInputError, match="strategy model: orchestrator: buy/sell thresholds must be in"):
        spec.validate({"buy_threshold": 2.0})
