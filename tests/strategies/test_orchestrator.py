"""Orchestrator arithmetic: weights, confidence filter, thresholds, abstention, learned weights, decision records."""

from __future__ import annotations

import json
import math

import pytest

from pivotal.core.errors import UserInputError
from pivotal.core.vocabulary import Action
from pivotal.features.model_io import ModelOutput
from pivotal.strategies.orchestrator import AccuracyTracker, Decision, Orchestrator, OrchestratorConfig

pytestmark = pytest.mark.unit

T = 1_700_000_000_000


def out(name: str, dv: float, conf: float = 1.0, t: int = T, symbol: str = "BTC/USDT") -> ModelOutput:
    """An output with P(BUY) - P(SELL) = dv (all mass on BUY/SELL, HOLD 0 when |dv| = 1)."""
    buy, sell = max(dv, 0.0), max(-dv, 0.0)
    hold = 1.0 - buy - sell
    probs = {"BUY": buy, "SELL": sell, "HOLD": hold}
    action = max(probs, key=lambda k: probs[k])
    return ModelOutput("cnn", name, symbol, t, conf, action, probs, dv, abs(dv))  # type: ignore[arg-type]


def decide(config: OrchestratorConfig, *outputs: ModelOutput) -> Decision:
    return Orchestrator(config).decide("BTC/USDT", T, {o.model_name: o for o in outputs})


def test_equal_weights_and_buy_threshold_inclusive() -> None:
    d = decide(OrchestratorConfig(buy_threshold=0.25), out("a", 0.75), out("b", -0.25))
    assert d.score == 0.25 and d.action is Action.BUY and d.target == 1 and not d.abstained
    assert [c.weight for c in d.contributions] == [0.5, 0.5]
    assert d.confidence == 1.0 and d.as_of == d.ts == T


def test_configured_weights_are_normalised() -> None:
    d = decide(OrchestratorConfig(weights={"a": 3.0, "b": 1.0}, sell_threshold=0.25), out("a", -0.5), out("b", 0.5))
    assert [c.weight for c in d.contributions] == [0.75, 0.25]
    assert d.score == -0.25 and d.action is Action.SELL and d.target == -1


def test_a_model_without_a_configured_weight_is_left_out() -> None:
    d = decide(OrchestratorConfig(weights={"a": 2.0}), out("a", 0.5), out("b", -1.0))
    assert d.score == 0.5 and d.action is Action.BUY
    b = d.contributions[1]
    assert not b.used and b.weight == 0.0 and b.excluded == "weight 0"


def test_confidence_filter() -> None:
    d = decide(OrchestratorConfig(min_confidence=0.5), out("a", 0.5, conf=0.5), out("b", -1.0, conf=0.25))
    assert d.score == 0.5 and d.confidence == 0.5 and d.action is Action.BUY
    assert d.contributions[1].excluded == "confidence 0.250 < 0.5"


def test_abstain_inside_thresholds_with_no_output_and_when_all_filtered() -> None:
    inside = decide(OrchestratorConfig(buy_threshold=0.5, sell_threshold=0.5), out("a", 0.375))
    assert inside.action is Action.HOLD and inside.abstained and inside.target == 0 and inside.score == 0.375
    assert "inside" in inside.reason
    none = decide(OrchestratorConfig())
    assert none.action is Action.HOLD and none.abstained and none.reason == "no output" and none.contributions == ()
    filtered = decide(OrchestratorConfig(min_confidence=0.9), out("a", 1.0, conf=0.5))
    assert filtered.abstained and filtered.reason == "no output passed the filters" and filtered.score == 0.0


def test_stale_outputs_are_left_out_and_future_ones_refused() -> None:
    d = decide(OrchestratorConfig(max_age_ms=60_000), out("a", 1.0, t=T - 60_000), out("b", -1.0, t=T - 60_001))
    assert d.score == 1.0 and d.contributions[1].excluded == "stale (60001 ms > 60000 ms)"
    with pytest.raises(ValueError, match="look-ahead"):
        decide(OrchestratorConfig(), out("a", 1.0, t=T + 1))


def test_scoring_rule() -> None:
    tracker = AccuracyTracker(horizon=2, window=3, hold_band=0.01)
    tracker.track(out("up", 1.0), close=100.0)  # BUY
    tracker.track(out("down", -1.0), close=100.0)  # SELL
    tracker.track(out("flat", 0.0), close=100.0)  # HOLD
    tracker.observe("BTC/USDT", 200.0)  # one bar: nothing due yet
    assert tracker.scored("up") == 0
    tracker.observe("BTC/USDT", 100.5)  # second bar: r = ln(1.005)
    assert (tracker.accuracy("up"), tracker.accuracy("down"), tracker.accuracy("flat")) == (1.0, 0.0, 1.0)
    tracker.observe("ETH/USDT", 1.0)  # another symbol scores nothing of BTC's
    assert tracker.scored("up") == 1 and math.isnan(tracker.accuracy("nobody"))


def test_learned_weights_are_the_softmax_of_recent_accuracy() -> None:
    """a always says BUY, b always SELL, on a rising series: after min_scored bars a's accuracy is 1, b's 0."""
    config = OrchestratorConfig(learn_weights=True, window=4, min_scored=2, temperature=0.5, buy_threshold=0.1)
    orch = Orchestrator(config)
    decisions = []
    for i, close in enumerate([100.0, 101.0, 102.0, 103.0, 104.0]):
        t = T + i * 60_000
        orch.observe("BTC/USDT", t, close)
        decisions.append(orch.decide("BTC/USDT", t, {"a": out("a", 0.5, t=t), "b": out("b", -0.5, t=t)}))
    # bars 0 and 1: fewer than 2 scored outputs -> prior 0.5 for both -> equal weights -> score 0 -> abstain
    for d in decisions[:2]:
        assert d.score == 0.0 and d.abstained and [c.accuracy for c in d.contributions] == [0.5, 0.5]
    # bar k: outputs of bars 0..k-1 are scored (horizon 1), never the one emitted at k
    assert [orch.tracker.scored("a"), orch.tracker.scored("b")] == [4, 4]
    w_a = math.exp(1.0 / 0.5) / (math.exp(1.0 / 0.5) + math.exp(0.0 / 0.5))
    for d in decisions[2:]:
        a, b = d.contributions
        assert (a.accuracy, b.accuracy) == (1.0, 0.0)
        assert a.weight == pytest.approx(w_a, rel=1e-12) and b.weight == pytest.approx(1 - w_a, rel=1e-12)
        assert d.score == pytest.approx(0.5 * w_a - 0.5 * (1 - w_a), rel=1e-12) and d.action is Action.BUY


def test_learned_weights_use_only_the_last_window() -> None:
    orch = Orchestrator(OrchestratorConfig(learn_weights=True, window=2, min_scored=1))
    closes = [100.0, 99.0, 98.0, 99.0, 100.0]  # a (BUY) wrong twice, then right twice
    for i, close in enumerate(closes):
        t = T + i
        orch.observe("BTC/USDT", t, close)
        orch.decide("BTC/USDT", t, {"a": out("a", 1.0, t=t)})
    assert orch.tracker.scored("a") == 2 and orch.accuracy_used("a") == 1.0


def test_every_decision_is_recorded_and_sent_to_the_sink() -> None:
    sunk: list[Decision] = []
    orch = Orchestrator(OrchestratorConfig(min_confidence=0.5), sink=sunk.append)
    d = orch.decide("BTC/USDT", T, {"a": out("a", 0.5, conf=0.75, t=T - 5), "b": out("b", -1.0, conf=0.25)})
    assert orch.decisions == sunk == [d]
    a, b = d.contributions
    assert (a.model_name, a.output_ts, a.action, a.direction, a.confidence, a.weight, a.used) == (
        "a",
        T - 5,
        "BUY",
        0.5,
        0.75,
        1.0,
        True,
    )
    assert (b.model_name, b.output_ts, b.used) == ("b", T, False)
    record = json.loads(json.dumps(d.to_dict()))
    assert record["as_of"] == T and record["action"] == "BUY" and len(record["contributions"]) == 2


@pytest.mark.parametrize(
    "bad",
    [{"window": 0}, {"temperature": 0.0}, {"min_confidence": 1.5}, {"buy_threshold": -0.1}, {"weights": {"a": -1.0}}],
)
def test_invalid_configuration_is_refused(bad: dict) -> None:
    with pytest.raises(ValueError, match="orchestrator"):
        OrchestratorConfig(**bad)


def test_configuration_tables_are_read_strictly() -> None:
    config = OrchestratorConfig.from_mapping({"buy_threshold": 0.3, "learn_weights": True, "weights": {"cnn": 2.0}})
    assert (config.buy_threshold, config.learn_weights, dict(config.weights or {})) == (0.3, True, {"cnn": 2.0})
    with pytest.raises(UserInputError, match=r"^orchestrator: unknown setting\(s\) buy; valid: weights, "):
        OrchestratorConfig.from_mapping({"buy": 0.3})
    with pytest.raises(UserInputError, match=r"^orchestrator: temperature must be > 0 \(got 0\)$"):
        OrchestratorConfig.from_mapping({"temperature": 0})


def test_action_votes() -> None:
    """vote="action": each model contributes its own action (+1/-1/0), e.g. a DQN's greedy choice."""
    a = ModelOutput("dqn", "a", "BTC/USDT", T, 0.5, "BUY", {"BUY": 0.375, "SELL": 0.25, "HOLD": 0.375}, 0.125, 0.125)
    b = out("b", 0.0)  # HOLD
    d = decide(OrchestratorConfig(vote="action", weights={"a": 3.0, "b": 1.0}), a, b)
    assert d.score == 0.75 and d.action is Action.BUY
    assert decide(OrchestratorConfig(weights={"a": 3.0, "b": 1.0}), a, b).score == 0.09375  # direction: 0.75 * 0.125
