"""The run use case's mode-independent half: which modes exist, what a run asks for, and its validated inputs (the
strategy's parameters and the bars, loaded exactly as ``pivotal backtest`` loads them).

Layering: services sit below the runtime, so the part that drives a feed through a node lives in
``pivotal.runtime.runner``; the CLI prepares a run here and hands it there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from pivotal.config import Settings
from pivotal.core.errors import PivotalError, UserInputError
from pivotal.data.candles import Candles
from pivotal.risk.config import RiskConfig
from pivotal.services.backtest import DEFAULT_CAPITAL, CandleSource, load_source, resolve_params

MODES = ("backtest", "replay", "paper", "testnet", "live")
BUILT = ("backtest", "replay", "paper", "testnet", "live")  # live only past services.run.live_gate
LIVE_DATA = ("paper", "testnet", "live")  # modes trading on the live feed


LIVE_KEY_ENV = ("PIVOTAL_EXCHANGE_API_KEY", "PIVOTAL_EXCHANGE_API_SECRET")


class ModeNotBuilt(PivotalError):
    """A trading mode that is planned but not built yet (the CLI exits 2)."""


def check_mode(mode: str) -> str:
    """``mode`` when it is built; ``ModeNotBuilt`` for the planned ones, ``UserInputError`` for unknown names."""
    if mode not in MODES:
        raise UserInputError(f"unknown mode {mode!r}; use one of: {', '.join(MODES)}")
    if mode not in BUILT:
        raise ModeNotBuilt(
            f"--mode {mode} is not built yet: paper/testnet/live execution is not wired into pivotal run (the exchange "
            f"venue and the live feed); available now: {', '.join(BUILT)}"
        )
    return mode


def live_gate(*, enabled: bool, env: Mapping[str, str], exchange: str, typed: str | None, yes: bool) -> list[str]:
    """What a live run still lacks, one line each (empty: it may trade real money). Live needs all three:
    ``live_trading_enabled = true`` in the run configuration (``enabled``), both exchange keys in the environment
    (``env``), and a confirmation: the user typed the exchange's name (``typed``, compared without case or
    surrounding spaces) or passed ``--yes``. Pure, so every combination is tested; the CLI prompts and prints."""
    missing: list[str] = []
    if not enabled:
        missing.append(
            "live_trading_enabled is not true in the run configuration; fix: add live_trading_enabled = true to the --config file"
        )
    absent = [name for name in LIVE_KEY_ENV if not env.get(name, "").strip()]
    if absent:
        missing.append(
            f"exchange keys are not in the environment ({', '.join(absent)}); fix: export them in the shell that "
            "runs pivotal (never in a file)"
        )
    if not yes:
        name = exchange.strip()
        if typed is None:
            missing.append(
                f"no confirmation; fix: type the exchange name ({name or 'the venue exchange'}) when asked on a "
                "terminal, or pass --yes"
            )
        elif not name or typed.strip().lower() != name.lower():
            missing.append(
                f"the confirmation {typed.strip()!r} is not the exchange name {name!r}; fix: type it exactly, or pass --yes"
            )
    return missing


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
    risk: RiskConfig | None = None  # the run goes under the risk engine (runtime.runner)
    audit: Path | None = None  # its audit log (None: in memory)
    venue_exchange: str | None = None  # paper/testnet/live: the ccxt exchange id (default: the source's exchange)
    rest_url: str | None = None  # a local test exchange's REST base (testnet/paper against it); None: the exchange's own
    ws_url: str | None = None  # its WebSocket base (default: derived from rest_url)
    markets: tuple[tuple[str, str], ...] = ()  # several (symbol, timeframe) of ``source.exchange``; () = the source's
    models: tuple[Mapping[str, Any], ...] = ()  # strategy "model": [[models]] entries ({name, weight})
    orchestrator: Mapping[str, Any] = field(default_factory=dict)  # its OrchestratorConfig settings
    keep_on_abstain: bool = False  # strategy "model": a HOLD keeps an open position (default: flat)
    adopt_foreign_orders: bool = False  # testnet/live: start despite open orders this run did not place (listed)
    live_training: bool = False  # strategy "model", backtest/replay: train on confirmed pivots while it runs (hot swap)

    @property
    def is_model(self) -> bool:
        return bool(self.models)


@dataclass(frozen=True)
class PreparedRun:
    """A request with its parameters validated and its bars loaded."""

    request: RunRequest
    params: dict[str, Any]
    bars: Candles  # the first market's bars
    series: tuple[Candles, ...] = ()  # every market's bars, in the order asked (several symbols); () = (bars,)
    settings: Settings | None = None  # where checkpoints are (strategy "model")

    @property
    def markets(self) -> tuple[Candles, ...]:
        """Every market's bars (one for a single-symbol run)."""
        return self.series or (self.bars,)

    def describe(self) -> str:
        """The source line of the printout: the file or series, or ``exchange A, B timeframe`` for several."""
        if len(self.markets) == 1:
            return self.request.source.describe()
        tfs = sorted({c.timeframe for c in self.markets})
        return f"{self.bars.exchange} {', '.join(c.symbol for c in self.markets)} {'/'.join(tfs)}"

    def header(self) -> dict[str, Any]:
        """What identifies the run in a journal (a restart must match it)."""
        s, req = self.request.source, self.request
        return {
            "mode": req.mode,
            "strategy": req.strategy,
            "params": self.params,
            "source": self.describe(),
            "start": s.start,
            "end": s.end,
            "fee_rate": req.fee_rate,
            "slippage": req.slippage,
            **({} if req.risk is None else {"risk": asdict(req.risk)}),
            **({} if not req.models else {"models": [dict(m) for m in req.models]}),
        }


def model_params(request: RunRequest) -> dict[str, Any]:
    """The model strategy's effective settings as its parameters — printed, journaled, and what the runner builds the
    strategy from: the registered ``model`` strategy's parameters (validated there; a ``--params`` file < the
    [orchestrator] table < flags) with the models named, plus the other orchestrator settings and the configured
    weights. Bad settings are one line (``OrchestratorConfig.from_mapping``)."""
    from pivotal.strategies.orchestrator import OrchestratorConfig

    names = [str(m["name"]) for m in request.models]
    weights = {n.partition("/")[0]: float(m["weight"]) for n, m in zip(names, request.models, strict=True) if "weight" in m}
    OrchestratorConfig.from_mapping({**request.orchestrator, **({"weights": weights} if weights else {})})
    known = resolve_params("model", {})
    values = {k: v for k, v in request.orchestrator.items() if k in known}
    keep = {"keep_on_abstain": True} if request.keep_on_abstain else {}
    params = resolve_params("model", {**values, **request.params, "models": ",".join(names), **keep},
                            request.params_file)  # fmt: skip
    params.update({k: v for k, v in request.orchestrator.items() if k not in known})
    if weights:
        params["weights"] = {n.partition("/")[0]: weights.get(n.partition("/")[0], 1.0) for n in names}
    return params


def prepare(request: RunRequest, settings: Settings | None = None) -> PreparedRun:
    """Validate the mode, costs and parameters, then load the bars (``services.backtest.load_source``); the replay
    speed is the replay session's to check (``runtime.replay.check_speed``)."""
    check_mode(request.mode)
    if request.fee_rate < 0 or request.slippage < 0:
        raise UserInputError(f"fee and slippage must be >= 0 (got fee {request.fee_rate}, slippage {request.slippage})")
    if request.journal is not None and request.mode == "backtest":
        raise UserInputError("--journal applies to --mode replay, paper, testnet and live (a backtest has nothing to recover)")
    # a model in a live mode reads its inputs from the node's data engine (runtime.runner.live_data_engine)
    params = model_params(request) if request.is_model else resolve_params(request.strategy, request.params, request.params_file)
    src = request.source
    if len(request.markets) > 1:
        return _prepare_markets(request, params, settings)
    if request.mode in LIVE_DATA and src.path is not None:
        raise UserInputError(
            f"--mode {request.mode} trades the exchange's live feed; --input (a candle file) is for backtest or replay"
        )
    if request.mode in LIVE_DATA:  # the bars come from the live feed
        if not (src.exchange and src.symbol and src.timeframe):
            raise UserInputError(f"--mode {request.mode} needs an exchange, a symbol and a timeframe (-e, -s, -t)")
        return PreparedRun(request, params, Candles.empty(src.exchange, src.symbol, src.timeframe), settings=settings)
    if src.path is not None and (src.exchange or src.symbol):  # a file labelled with its market (run configuration)
        bars = load_source(replace(src, exchange=None, symbol=None), settings)
        bars = replace(bars, exchange=src.exchange or bars.exchange, symbol=src.symbol or bars.symbol)
    else:
        bars = load_source(src, settings)
    return PreparedRun(request, params, bars, settings=settings)


def _prepare_markets(request: RunRequest, params: dict[str, Any], settings: Settings | None) -> PreparedRun:
    """Several symbols: each market's stored series over the same window (one node, one portfolio, one feed)."""
    src = request.source
    if request.mode in LIVE_DATA and request.mode != "paper":
        raise UserInputError(
            f"--mode {request.mode} trades one symbol for now; several symbols run in --mode backtest, replay and paper"
        )
    if src.path is not None:
        raise UserInputError("a candle file (--input) holds one symbol; leave it out to run the stored series of each")
    if not src.exchange:
        raise UserInputError("several symbols need the stored series' exchange (exchange = ... or -e)")
    if request.mode in LIVE_DATA:  # the bars come from the live feed
        empty = tuple(Candles.empty(src.exchange, symbol, timeframe) for symbol, timeframe in request.markets)
        return PreparedRun(request, params, empty[0], empty, settings)
    series = tuple(
        load_source(replace(src, symbol=symbol, timeframe=timeframe), settings) for symbol, timeframe in request.markets
    )
    return PreparedRun(request, params, series[0], series, settings)
