"""The orchestrator (design requirement 4): several models' outputs in, one position target out, every decision recorded.

Rule, per decision for ``symbol`` at time ``t`` (the close of the bar being decided on):

1. **Outputs.** Each model's newest ``ModelOutput`` with ``timestamp <= t`` (one later than t is a look-ahead bug and
   raises); one older than ``max_age_ms`` is left out as stale.
2. **Confidence filter.** An output with ``confidence < min_confidence`` is left out.
3. **Weights** (mixture of experts) over the outputs still in: ``w_m = base_m · exp(acc_m / temperature)`` when
   ``learn_weights``, else ``w_m = base_m``; ``base_m`` is ``weights[m]`` when configured (a model not listed: 0),
   else 1. Normalised to sum 1 (all zero: abstain). ``acc_m`` is model m's accuracy over its last ``window`` *scored*
   outputs, or ``prior_accuracy`` while fewer than ``min_scored`` are scored — so learned weights are the softmax of
   recent accuracy at temperature ``temperature``.
4. **Score** ``S = Σ w_m · v_m`` with ``v_m`` = direction_vector (P(BUY) − P(SELL); ``vote="direction"``, the
   default) or the model's own action as +1/−1/0 (``vote="action"``: a DQN's greedy action with its hold margin is
   its decision, its softmax-of-Q direction is not), combined confidence ``C = Σ w_m · confidence_m``.
5. **Thresholds.** BUY (be long) when ``S >= buy_threshold``, SELL (be short) when ``S <= -sell_threshold``,
   otherwise HOLD (be flat) — an abstention, as is having no output left after 1–3.

**Scoring** (what "accuracy" means): an output emitted at a bar close with that bar's close ``c0`` is scored
``horizon`` bars of its symbol later, at that bar's close ``c1``, with ``r = ln(c1 / c0)``: BUY is right when
``r > 0``, SELL when ``r < 0``, HOLD when ``|r| <= hold_band``. The score becomes known at that later close, so a
decision at t only ever uses scores known by t (``observe`` is called with each closed bar before ``decide``).

Every decision is a :class:`Decision` with its as-of time and every contributing output (model, output time,
action, direction, confidence, weight, whether it was used and why not); ``decisions`` keeps them and ``sink``
(e.g. the runtime journal) receives each one.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from pivotal.core.errors import UserInputError
from pivotal.core.vocabulary import Action
from pivotal.features.model_io import ModelOutput

__all__ = ["AccuracyTracker", "Contribution", "Decision", "Orchestrator", "OrchestratorConfig"]


@dataclass(frozen=True)
class OrchestratorConfig:
    weights: Mapping[str, float] | None = None  # configured expert weights (None: equal)
    learn_weights: bool = False  # multiply by exp(recent accuracy / temperature)
    window: int = 50  # scored outputs per model the accuracy is taken over
    temperature: float = 0.1
    min_scored: int = 10  # fewer scored outputs: prior_accuracy
    prior_accuracy: float = 0.5
    horizon: int = 1  # bars of the output's symbol until it is scored
    hold_band: float = 0.0  # |log return| a HOLD may see and still be right
    min_confidence: float = 0.0  # confidence filter per output
    buy_threshold: float = 0.2  # S >= this: BUY
    sell_threshold: float = 0.2  # S <= -this: SELL
    max_age_ms: int | None = None  # older outputs are stale (None: any age)
    vote: str = "direction"  # what a model contributes: its direction_vector, or its action as +1/-1/0

    def __post_init__(self) -> None:
        if self.window < 1 or self.horizon < 1 or self.min_scored < 0:
            raise ValueError("orchestrator: window and horizon must be >= 1, min_scored >= 0")
        if not self.temperature > 0:
            raise ValueError(f"orchestrator: temperature must be > 0 (got {self.temperature})")
        if not 0 <= self.min_confidence <= 1:
            raise ValueError(f"orchestrator: min_confidence must be in [0, 1] (got {self.min_confidence})")
        if not (0 <= self.buy_threshold <= 1 and 0 <= self.sell_threshold <= 1):
            raise ValueError("orchestrator: buy/sell thresholds must be in [0, 1]")
        if self.vote not in ("direction", "action"):
            raise ValueError(f"orchestrator: vote must be direction or action (got {self.vote!r})")
        if self.weights is not None and any(not (w >= 0 and math.isfinite(w)) for w in self.weights.values()):
            raise ValueError(f"orchestrator: weights must be finite and >= 0 (got {dict(self.weights)})")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> OrchestratorConfig:
        """From a configuration table (a run file's ``[orchestrator]``); an unknown key or a bad value is one line."""
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise UserInputError(f"orchestrator: unknown setting(s) {', '.join(unknown)}; valid: {', '.join(names)}")
        try:
            return cls(**dict(data))
        except (TypeError, ValueError) as exc:
            raise UserInputError(str(exc).splitlines()[0] if str(exc) else "orchestrator: invalid settings") from None


@dataclass(frozen=True)
class Contribution:
    """One model's part in a decision; ``used`` False with ``excluded`` saying why (stale, low confidence, weight 0)."""

    model_name: str
    output_ts: int  # the output's as-of time
    action: str
    direction: float
    confidence: float
    accuracy: float | None  # the accuracy the weight was learned from (prior or measured); None when not learning
    weight: float  # normalised; 0 when not used
    used: bool
    excluded: str = ""


@dataclass(frozen=True)
class Decision:
    """A position target for ``symbol`` decided at ``ts`` from inputs known at ``as_of`` (= ts: the bar's close)."""

    symbol: str
    ts: int
    as_of: int
    action: Action
    score: float
    confidence: float
    abstained: bool
    reason: str  # why this action ("score 0.31 >= buy 0.2", "no output", ...)
    contributions: tuple[Contribution, ...] = ()

    @property
    def target(self) -> int:
        """+1 long, -1 short, 0 flat."""
        return self.action.target

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (for the journal)."""
        return {
            "symbol": self.symbol, "ts": self.ts, "as_of": self.as_of, "action": str(self.action), "score": self.score,
            "confidence": self.confidence, "abstained": self.abstained, "reason": self.reason,
            "contributions": [vars(c).copy() for c in self.contributions],
        }  # fmt: skip


@dataclass
class _Pending:
    symbol: str
    target: int  # +1 BUY, -1 SELL, 0 HOLD
    close: float
    bars_left: int


@dataclass
class AccuracyTracker:
    """Scores outputs ``horizon`` bars after they were emitted (see module doc); the last ``window`` hits per model."""

    horizon: int = 1
    window: int = 50
    hold_band: float = 0.0
    _pending: dict[str, list[tuple[str, _Pending]]] = field(default_factory=dict)  # symbol -> (model, pending)
    _hits: dict[str, deque[bool]] = field(default_factory=dict)

    def track(self, output: ModelOutput, close: float) -> None:
        """Remember ``output`` (emitted at a close of ``close``) for scoring."""
        pending = _Pending(output.symbol, Action(output.action).target, close, self.horizon)
        self._pending.setdefault(output.symbol, []).append((output.model_name, pending))

    def observe(self, symbol: str, close: float) -> None:
        """One more closed bar of ``symbol``: score the outputs whose horizon ends here."""
        waiting = self._pending.get(symbol)
        if not waiting:
            return
        keep: list[tuple[str, _Pending]] = []
        for model, p in waiting:
            p.bars_left -= 1
            if p.bars_left > 0:
                keep.append((model, p))
                continue
            r = math.log(close / p.close)
            hit = abs(r) <= self.hold_band if p.target == 0 else p.target * r > 0
            self._hits.setdefault(model, deque(maxlen=self.window)).append(hit)
        self._pending[symbol] = keep

    def scored(self, model: str) -> int:
        return len(self._hits.get(model, ()))

    def accuracy(self, model: str) -> float:
        """Hit rate over the last ``window`` scored outputs (NaN when none)."""
        hits = self._hits.get(model)
        return sum(hits) / len(hits) if hits else float("nan")


class Orchestrator:
    """Combines model outputs into one :class:`Decision` per call (rule in the module doc)."""

    def __init__(self, config: OrchestratorConfig | None = None, sink: Callable[[Decision], None] | None = None) -> None:
        self.config = config or OrchestratorConfig()
        self.sink = sink
        self.decisions: list[Decision] = []
        self.tracker = AccuracyTracker(self.config.horizon, self.config.window, self.config.hold_band)
        self._last_close: dict[str, float] = {}

    def observe(self, symbol: str, t: int, close: float) -> None:
        """The bar of ``symbol`` closing at ``t`` with ``close``: scores what is due (call before ``decide`` at t)."""
        self.tracker.observe(symbol, close)
        self._last_close[symbol] = close

    def accuracy_used(self, model: str) -> float:
        """The accuracy the learned weight uses: measured, or the prior while fewer than ``min_scored`` are scored."""
        c = self.config
        return self.tracker.accuracy(model) if self.tracker.scored(model) >= max(1, c.min_scored) else c.prior_accuracy

    def _vote(self, output: ModelOutput) -> float:
        return float(output.direction_vector) if self.config.vote == "direction" else float(Action(output.action).target)

    def decide(self, symbol: str, t: int, outputs: Mapping[str, ModelOutput]) -> Decision:
        """The decision for ``symbol`` at ``t`` from each model's output (keyed by model name); new outputs (``timestamp
        == t``) are tracked for scoring against the close last observed for ``symbol``."""
        c = self.config
        raw: list[tuple[ModelOutput, float, float | None, str]] = []  # output, base weight, accuracy, excluded
        for name in sorted(outputs):
            out = outputs[name]
            if out.timestamp > t:
                raise ValueError(f"orchestrator: output of {name} at {out.timestamp} is after the decision time {t} (look-ahead)")
            acc = self.accuracy_used(name) if c.learn_weights else None
            base = 1.0 if c.weights is None else float(c.weights.get(name, 0.0))
            excluded = ""
            if c.max_age_ms is not None and t - out.timestamp > c.max_age_ms:
                excluded = f"stale ({t - out.timestamp} ms > {c.max_age_ms} ms)"
            elif out.confidence < c.min_confidence:
                excluded = f"confidence {out.confidence:.3f} < {c.min_confidence}"
            elif base == 0.0:
                excluded = "weight 0"
            raw.append((out, base, acc, excluded))
            if out.timestamp == t and symbol in self._last_close:
                self.tracker.track(out, self._last_close[symbol])
        used = [(out, base * (1.0 if acc is None else math.exp(acc / c.temperature))) for out, base, acc, ex in raw if not ex]
        total = sum(w for _, w in used)
        norm = {out.model_name: w / total for out, w in used} if total > 0 else {}
        contributions = tuple(
            Contribution(
                out.model_name,
                int(out.timestamp),
                str(out.action),
                float(out.direction_vector),
                float(out.confidence),
                acc,
                norm.get(out.model_name, 0.0),
                out.model_name in norm,
                ex,
            )
            for out, _, acc, ex in raw
        )
        if not norm:
            action, score, conf = Action.HOLD, 0.0, 0.0
            reason = "no output" if not raw else "no output passed the filters"
        else:
            score = sum(w * self._vote(outputs[m]) for m, w in norm.items())
            conf = sum(w * float(outputs[m].confidence) for m, w in norm.items())
            if score >= c.buy_threshold:
                action, reason = Action.BUY, f"score {score:.4f} >= buy threshold {c.buy_threshold}"
            elif score <= -c.sell_threshold:
                action, reason = Action.SELL, f"score {score:.4f} <= -sell threshold {c.sell_threshold}"
            else:
                action, reason = Action.HOLD, f"score {score:.4f} inside (-{c.sell_threshold}, {c.buy_threshold})"
        decision = Decision(symbol, t, t, action, score, conf, action is Action.HOLD, reason, contributions)
        self.decisions.append(decision)
        if self.sink is not None:
            self.sink(decision)
        return decision
