"""Strategies by name: each registered with its parameter defaults, default search space and optional sweep adapter.

Adding a strategy is one file in ``pivotal/strategies/`` (a module or subpackage) that calls :func:`register` at
import; the registry imports every module of the package on first lookup, so ``backtest``, ``optimize`` and the API
find it without further edits.

Search-space entries: ``("int", lo, hi, step)``, ``("float", lo, hi)`` or ``("choice", [values...])``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pivotal.core.errors import UserInputError
from pivotal.strategies.base import StrategyProtocol as Strategy

_REGISTRY: dict[str, StrategySpec] = {}
_NOT_STRATEGIES = {"base", "registry"}
_discovered = False


@dataclass(frozen=True)
class StrategySpec:
    name: str
    factory: Callable[[dict[str, Any]], Strategy]  # validated params -> a fresh strategy instance
    defaults: dict[str, Any]  # every parameter with its default
    space: dict[str, tuple]  # default search space per parameter
    description: str = ""
    sweep: Callable[..., Any] | None = None  # optional vectorised adapter (LS3 numba sweep)

    def validate(self, params: dict[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with ``params``, each coerced to its default's type; unknown or invalid values raise
        UserInputError naming the parameter and the valid ones. The factory is tried once, so cross-parameter rules
        (e.g. fast < slow) are checked here too."""
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise UserInputError(
                f"strategy {self.name}: unknown parameter(s) {', '.join(unknown)}; valid: {', '.join(sorted(self.defaults))}"
            )
        out = dict(self.defaults)
        for key, value in params.items():
            out[key] = self._coerce(key, value)
        try:
            self.factory(out)
        except UserInputError:
            raise
        except (TypeError, ValueError) as exc:
            raise UserInputError(f"strategy {self.name}: {exc}") from None
        return out

    def _coerce(self, key: str, value: Any) -> Any:
        default = self.defaults[key]
        space = self.space.get(key)
        if space is not None and space[0] == "choice" and not isinstance(default, int | float):
            if value not in space[1]:
                raise UserInputError(f"strategy {self.name}: {key}={value!r} is not one of {list(space[1])}")
            return value
        if isinstance(default, bool):
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.lower() in ("true", "1", "yes")
            if isinstance(value, bool):
                return value
            raise UserInputError(f"strategy {self.name}: {key}={value!r} must be true or false")
        if isinstance(default, int | float):
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise UserInputError(f"strategy {self.name}: {key}={value!r} is not a number") from None
            if isinstance(default, int):
                if not number.is_integer():
                    raise UserInputError(f"strategy {self.name}: {key}={value!r} must be a whole number")
                return int(number)
            return number
        return value

    def create(self, params: dict[str, Any] | None = None) -> Strategy:
        """A fresh instance with validated ``params`` (defaults for the rest)."""
        return self.factory(self.validate(params or {}))


def register(spec: StrategySpec) -> StrategySpec:
    """Add ``spec`` under its name (re-registering the same name replaces it, e.g. on module reload)."""
    if not spec.name or not spec.name.replace("_", "").isalnum():
        raise ValueError(f"strategy name {spec.name!r}: use letters, digits and underscores")
    missing = sorted(set(spec.space) - set(spec.defaults))
    if missing:
        raise ValueError(f"strategy {spec.name}: search space names unknown parameters {missing}")
    _REGISTRY[spec.name] = spec
    return spec


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    _discovered = True
    import pivotal.strategies as package

    for module in pkgutil.iter_modules(package.__path__):
        if module.name not in _NOT_STRATEGIES and not module.name.startswith("_"):
            importlib.import_module(f"pivotal.strategies.{module.name}")


def get_strategy(name: str) -> StrategySpec:
    """The registered strategy ``name``; unknown -> UserInputError listing the registered names."""
    _discover()
    spec = _REGISTRY.get(name)
    if spec is None:
        raise UserInputError(f"unknown strategy {name!r}; registered: {', '.join(strategy_names())}")
    return spec


def strategy_names() -> list[str]:
    _discover()
    return sorted(_REGISTRY)
