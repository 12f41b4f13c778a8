"""The run use case's mode-independent half: which modes exist, what a run asks for, and its validated inputs (the
strategy's parameters and the bars, loaded exactly as ``pivotal backtest`` loads them).

Layering: services sit below the runtime, so the part that drives a feed through a node lives in
``pivotal.runtime.runner``; the CLI prepares a run here and hands it there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pivotal.config import Settings
from pivotal.core.errors import PivotalError, UserInputError
from pivotal.data.candles import Candles
from pivotal.services.backtest import DEFAULT_CAPITAL, CandleSource, load_source, resolve_params

MODES = ("backtest", "replay", "paper", "testnet", "live")
BUILT = ("backtest", "replay")


class ModeNotBuilt(PivotalError):
    """A trading mode that is planned but not built yet (the CLI exits 2)."""


def check_mode(mode: str) -> str:
    """``mode`` when it is built; ``ModeNotBuilt`` for the planned ones, ``UserInputError`` for unknown names."""
    if mode not in MODES:
        raise UserInputError(f"unknown mode {mode!r}; use one of: {', '.join(MODES)}")
    if mode not in BUILT:
        raise ModeNotBuilt(
            f"--mode {mode} is not built yet (it needs the live feeds, the exchange venue and the test exchange); "
            f"available now: {', '.join(BUILT)}"
        )
    return mode


@dataclass(frozen=True)
class RunRequest:
    """What ``pivotal run`` was asked for."""

    mode: str
    strategy: str
    source: CandleSource
    params: dict[str, Any] = field(default_factory=dict)
    params_file: Path | None = None
    speed: float = 0.0
    fee_rate: float = 0.001
    slippage: float = 0.0005
    capital: float = DEFAULT_CAPITAL
    journal: Path | None = None


@dataclass(frozen=True)
class PreparedRun:
    """A request with its parameters validated and its bars loaded."""

    request: RunRequest
    params: dict[str, Any]
    bars: Candles

    def header(self) -> dict[str, Any]:
        """What identifies the run in a journal (a restart must match it)."""
        s = self.request.source
        return {
            "mode": self.request.mode,
            "strategy": self.request.strategy,
            "params": self.params,
            "source": s.describe(),
            "start": s.start,
            "end": s.end,
            "fee_rate": self.request.fee_rate,
            "slippage": self.request.slippage,
        }


def prepare(request: RunRequest, settings: Settings | None = None) -> PreparedRun:
    """Validate the mode, costs and parameters, then load the bars (``services.backtest.load_source``); the replay
    speed is the replay session's to check (``runtime.replay.check_speed``)."""
    check_mode(request.mode)
    if request.fee_rate < 0 or request.slippage < 0:
        raise UserInputError(f"fee and slippage must be >= 0 (got fee {request.fee_rate}, slippage {request.slippage})")
    if request.journal is not None and request.mode != "replay":
        raise UserInputError("--journal applies to --mode replay (a backtest has nothing to recover)")
    params = resolve_params(request.strategy, request.params, request.params_file)
    bars = load_source(request.source, settings)
    return PreparedRun(request, params, bars)
