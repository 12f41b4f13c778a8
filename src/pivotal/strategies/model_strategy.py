"""``ModelStrategy``: trained models decide, through the orchestrator, at the close of each base bar.

At the close of bar t (as-of time ``t = bar.close_ts``, the first moment the bar is known):

1. the orchestrator observes the close (scoring earlier outputs whose horizon ends here);
2. each :class:`Predictor` is asked for its ``ModelOutput`` as of t, in order, with the "last predictions" known at t
   (the output store's newest output per model with timestamp <= t, plus the outputs of the predictors before it
   at this bar), so models feed each other; each output goes to the output store;
3. the orchestrator turns the outputs into a :class:`~pivotal.strategies.orchestrator.Decision` (a position target:
   BUY long, SELL short, HOLD flat);
4. the difference between the target and the open position becomes orders, which the engine fills at the **next**
   bar's open (exit first, then entry: a reversal is two orders).

A predictor sees only the symbol and t; how it builds the input is its own, and the one built from a checkpoint
(``pivotal.services.model_strategy``) cuts the input at t exactly as a training sample at t is cut. The layering
keeps checkpoint loading (``training``, layer 9) out of this module: it is injected from above, either as ready
predictors or as a loader (``install_predictor_loader``) that the registered strategy ``model`` calls at its first bar.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

from pivotal.core.errors import UserInputError
from pivotal.core.orders import Fill, Order
from pivotal.features.model_io import ModelOutput
from pivotal.strategies.base import BarContext
from pivotal.strategies.orchestrator import Decision, Orchestrator, OrchestratorConfig
from pivotal.strategies.registry import StrategySpec, register

__all__ = ["ModelStrategy", "ModelStrategyParams", "OutputSink", "Predictor", "install_predictor_loader"]


@runtime_checkable
class Predictor(Protocol):
    """A model ready to answer: its ``ModelOutput`` for ``symbol`` as of ``t`` (epoch ms; only data known at t), or
    None when its input is not ready (incomplete data). ``position`` is the open position's direction after bar t
    (+1, -1, 0; the DQN's state includes it). ``name`` is the model name outputs are stored under."""

    @property
    def name(self) -> str: ...

    def predict(
        self, symbol: str, t: int, last_predictions: Mapping[str, ModelOutput], position: int = 0
    ) -> ModelOutput | None: ...


class OutputSink(Protocol):
    """Where outputs go and "last predictions" come from (``models.output_store.OutputStore``)."""

    def add(self, output: ModelOutput) -> bool: ...

    def last_predictions(self, symbol: str, t: int) -> dict[str, ModelOutput]: ...


class _MemoryOutputs:
    """Fallback output store: newest output per (model, symbol), as-of lookups (no persistence)."""

    def __init__(self) -> None:
        self._by: dict[tuple[str, str], list[ModelOutput]] = {}

    def add(self, output: ModelOutput) -> bool:
        rows = self._by.setdefault((output.model_name, output.symbol), [])
        if rows and rows[-1].timestamp >= output.timestamp:
            return False
        rows.append(output)
        return True

    def last_predictions(self, symbol: str, t: int) -> dict[str, ModelOutput]:
        found: dict[str, ModelOutput] = {}
        for (model, sym), rows in self._by.items():
            if sym == symbol:
                for out in reversed(rows):
                    if out.timestamp <= t:
                        found[model] = out
                        break
        return found


class ModelStrategy:
    """Predictors → output store → orchestrator → position target → orders (see module doc).

    ``fraction`` of equity per entry; ``keep_on_abstain`` keeps an open position when the orchestrator abstains
    (default False: HOLD means flat, the vocabulary's reading of an action)."""

    def __init__(
        self,
        predictors: Sequence[Predictor] | Callable[[], Sequence[Predictor]],
        orchestrator: Orchestrator | None = None,
        outputs: OutputSink | None = None,
        *,
        fraction: float = 1.0,
        keep_on_abstain: bool = False,
        tag: str = "model",
    ) -> None:
        if not 0 < fraction <= 1:
            raise ValueError(f"model strategy: fraction must be in (0, 1] (got {fraction})")
        self._predictors: Sequence[Predictor] | None = None if callable(predictors) else list(predictors)
        self._load = predictors if callable(predictors) else None
        self.orchestrator = orchestrator or Orchestrator()
        self.outputs: OutputSink = outputs if outputs is not None else _MemoryOutputs()
        self.fraction, self.keep_on_abstain, self.tag = fraction, keep_on_abstain, tag
        self.fills: list[Fill] = []

    @property
    def predictors(self) -> Sequence[Predictor]:
        """The predictors; a loader given instead runs once, here (at the first bar: "load the best at start")."""
        if self._predictors is None:
            assert self._load is not None
            self._predictors = list(self._load())
        return self._predictors

    @property
    def decisions(self) -> list[Decision]:
        return self.orchestrator.decisions

    def on_bar(self, ctx: BarContext) -> list[Order]:
        bar = ctx.bar
        t = int(bar.close_ts)
        if t <= 0:
            raise ValueError("model strategy: bars need their close time (Candles with a timeframe)")
        symbol = bar.symbol
        self.orchestrator.observe(symbol, t, float(bar.close))
        last = self.outputs.last_predictions(symbol, t)
        position = 0 if ctx.position is None else int(ctx.position.direction)
        for predictor in self.predictors:
            out = predictor.predict(symbol, t, dict(last), position)
            if out is None:
                continue
            if out.timestamp > t:
                raise ValueError(f"model strategy: {predictor.name} returned an output as of {out.timestamp} > t={t}")
            self.outputs.add(out)
            last[out.model_name] = out
        decision = self.orchestrator.decide(symbol, t, last)  # older outputs too: max_age_ms drops stale ones
        return self._orders(decision, ctx)

    def _orders(self, decision: Decision, ctx: BarContext) -> list[Order]:
        if decision.abstained and self.keep_on_abstain:
            return []
        have = 0 if ctx.position is None else int(ctx.position.direction)
        want = decision.target
        if want == have:
            return []
        orders = [Order.exit(self.tag)] if have else []
        if want:
            orders.append(Order.enter(want, tag=self.tag, fraction=self.fraction))
        return orders

    def on_fill(self, fill: Fill) -> None:
        self.fills.append(fill)


# ------------------------------------------------------------------------------------------- registry

PredictorLoader = Callable[[Sequence[str], dict[str, Any]], Sequence[Predictor]]
_loader: list[PredictorLoader] = []


def install_predictor_loader(loader: PredictorLoader) -> None:
    """Let the registered ``model`` strategy build predictors from model names (``services.model_strategy`` does this
    on import: loading checkpoints needs the training layer, which strategies may not import)."""
    _loader[:] = [loader]


@dataclass(frozen=True)
class ModelStrategyParams:
    models: str = ""  # comma-separated checkpoint references (NAME = its best, or NAME/ID)
    buy_threshold: float = 0.2
    sell_threshold: float = 0.2
    min_confidence: float = 0.0
    learn_weights: bool = False
    window: int = 50
    temperature: float = 0.1
    fraction: float = 1.0
    keep_on_abstain: bool = False
    vote: str = "direction"  # or "action" (see the orchestrator)

    def model_names(self) -> list[str]:
        return [m.strip() for m in self.models.split(",") if m.strip()]


def _factory(params: dict[str, Any]) -> ModelStrategy:
    p = ModelStrategyParams(**params)
    config = OrchestratorConfig(
        learn_weights=p.learn_weights, window=p.window, temperature=p.temperature, min_confidence=p.min_confidence,
        buy_threshold=p.buy_threshold, sell_threshold=p.sell_threshold, vote=p.vote,
    )  # fmt: skip
    names = p.model_names()

    def load() -> Sequence[Predictor]:
        if not names:
            raise UserInputError("strategy model: name the checkpoint(s) to trade with models=NAME[,NAME...]")
        if not _loader:
            raise UserInputError("strategy model: no predictor loader installed; import pivotal.services.model_strategy")
        return _loader[0](names, params)

    return ModelStrategy(load, Orchestrator(config), fraction=p.fraction, keep_on_abstain=p.keep_on_abstain)


SPEC = register(
    StrategySpec(
        name="model",
        factory=_factory,
        defaults=asdict(ModelStrategyParams()),
        space={
            "buy_threshold": ("float", 0.0, 0.8),
            "sell_threshold": ("float", 0.0, 0.8),
            "min_confidence": ("float", 0.0, 0.9),
            "vote": ("choice", ["direction", "action"]),
        },
        description="trained model(s) through the orchestrator: BUY long, SELL short, HOLD flat at the next open",
    )
)
