"""The registered strategy for a use case, with what it needs installed first.

The ``model`` strategy trades checkpoints; loading them needs ``training`` (torch), which the strategies layer may
not import, so ``services.model_strategy`` installs the loader. It is imported only when that strategy is asked for,
keeping torch out of every other command's start-up.
"""

from __future__ import annotations

from pivotal.strategies.registry import StrategySpec, get_strategy

MODEL_STRATEGY = "model"


def strategy_spec(name: str) -> StrategySpec:
    """``get_strategy(name)``, after installing the checkpoint loader when ``name`` is the model strategy."""
    if name == MODEL_STRATEGY:
        import pivotal.services.model_strategy  # noqa: F401  (installs the predictor loader on import)
    return get_strategy(name)
