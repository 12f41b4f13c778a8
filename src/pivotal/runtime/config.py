"""The run configuration of ``pivotal run``: one TOML file (``--config run.toml``) with what a trading node runs —
mode, strategy and parameters (or ``strategy = "model"`` with ``[[models]]`` checkpoints and an ``[orchestrator]``
table), the market (exchange, one or several symbols, their timeframe, or a candle file), the venue (simulated, or
a ccxt exchange id with a testnet flag), fees and slippage, the risk limits (a ``[risk]`` table onto
``pivotal.risk.config.RiskConfig``), the replay window and speed, the journal, the trade-list file and the output
folder. Command-line flags override the file key by key.

Why strict: a misspelt key in a file that controls real orders must not be silently ignored. Unknown keys and bad
values are refused with one line naming the file, the key and the fix. Relative paths in the file are relative to
the file's folder (the file can be run from anywhere); relative paths given as flags are relative to the working
directory, as everywhere else. An example: ``docs/examples/run.toml``.
"""

from __future__ import annotations

import tomllib
from dataclasses import fields
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pivotal.config import toml_error
from pivotal.core.errors import UserInputError
from pivotal.risk.config import RiskConfig
from pivotal.runtime.replay import check_speed
from pivotal.services.run import LIVE_DATA, MODES, RunRequest

# Keys of the file that name paths (resolved against the file's folder).
_PATH_KEYS = ("input", "journal", "trades_out", "audit")
_RISK_KEYS = tuple(f.name for f in fields(RiskConfig))
_FLAG_NAMES = {  # not --<key>
    "venue.rest_url": "--exchange-url", "venue.adopt_foreign_orders": "--adopt-foreign-orders", "symbols": "--symbol",
    "timeframes": "--timeframe",
}
MODEL_STRATEGY = "model"  # the registered strategy that [[models]] and [orchestrator] configure


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VenueConfig(_Strict):
    """Where orders go: ``simulated`` (fills from the bars, backtest/replay/paper) or ``ccxt`` (an exchange id,
    e.g. binance, with ``testnet``), and the simulated venue's costs."""

    kind: Literal["simulated", "ccxt"] = "simulated"
    exchange: str | None = None  # ccxt exchange id; default: the run's exchange
    testnet: bool = False
    fee: float = Field(0.001, ge=0, le=0.1)  # per side, fraction of notional
    slippage: float = Field(0.0005, ge=0, le=0.1)  # adverse, per side, fraction of price
    rest_url: str | None = None  # for a local test exchange: its REST base, e.g. http://127.0.0.1:PORT (feed and orders)
    ws_url: str | None = None  # its WebSocket base (default: ws://<rest_url host>/ws)
    adopt_foreign_orders: bool = False  # testnet/live: start although the account has open orders not of this run

    @field_validator("rest_url", "ws_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://", "ws://", "wss://")):
            raise ValueError(f"is a URL such as http://127.0.0.1:PORT (got {v!r})")
        return v


class ModelEntry(_Strict):
    """One ``[[models]]`` entry: a checkpoint (``NAME`` = the best checkpoint of that name, or ``NAME/ID``) and its
    expert weight in the orchestrator (given for any model: weights are configured, a model without one gets 1)."""

    name: str = Field(min_length=1)
    weight: float | None = Field(None, ge=0)


class OrchestratorTable(_Strict):
    """The ``[orchestrator]`` table: ``strategies.orchestrator.OrchestratorConfig`` settings (absent: its defaults)
    and ``abstain``: what a HOLD (an abstention) does with an open position, ``flat`` (close it) or ``keep``."""

    buy_threshold: float | None = Field(None, ge=0, le=1)  # combined score >= this: be long
    sell_threshold: float | None = Field(None, ge=0, le=1)  # score <= -this: be short
    min_confidence: float | None = Field(None, ge=0, le=1)  # confidence filter per model output
    learn_weights: bool | None = None  # weights x exp(recent scored accuracy / temperature)
    window: int | None = Field(None, ge=1)  # scored outputs the accuracy is taken over
    temperature: float | None = Field(None, gt=0)
    min_scored: int | None = Field(None, ge=0)
    prior_accuracy: float | None = Field(None, ge=0, le=1)
    horizon: int | None = Field(None, ge=1)  # bars until an output is scored
    hold_band: float | None = Field(None, ge=0)
    max_age_ms: int | None = Field(None, ge=0)  # older outputs are stale
    vote: Literal["direction", "action"] | None = None
    abstain: Literal["flat", "keep"] = "flat"

    def settings(self) -> dict[str, Any]:
        """The ``OrchestratorConfig`` keys that are set."""
        return {k: v for k, v in self.model_dump(exclude={"abstain"}).items() if v is not None}


# Parameters of the registered `model` strategy that are orchestrator settings: in `params` / --param they override
# the [orchestrator] table (flags override the file); `models` (comma-separated) becomes [[models]] entries.
_ORCHESTRATOR_PARAMS = ("buy_threshold", "sell_threshold", "min_confidence", "learn_weights", "window", "temperature", "vote")


class RunConfig(_Strict):
    """Everything ``pivotal run`` needs; defaults are the CLI's."""

    mode: str = "replay"  # one of services.run.MODES
    strategy: str = "liquidity_sweep"
    params: dict[str, Any] = Field(default_factory=dict)
    params_file: Path | None = None  # a JSON object of parameters (``params`` and ``--param`` override it)
    models: list[ModelEntry] = Field(default_factory=list)  # strategy "model": the checkpoints it trades
    orchestrator: OrchestratorTable = Field(default_factory=lambda: OrchestratorTable.model_validate({}))
    exchange: str | None = None  # the stored series' exchange (and the venue's, unless [venue] names one)
    symbols: list[str] = Field(default_factory=list)  # one or several: one node, one portfolio, one merged feed
    timeframes: list[str] = Field(default_factory=list)  # one for every symbol, or one per symbol
    input: Path | None = None  # a candle file instead of a stored series (one symbol)
    out: Path | None = None  # a folder for summary.json, trades.csv and the charts (as pivotal backtest --out)
    start: int | None = None  # epoch ms, inclusive (TOML date, "YYYY-MM-DD[THH:MM]" UTC or epoch ms)
    end: int | None = None  # epoch ms, exclusive
    speed: float = 0.0  # replay pace: 0 = as fast as possible, else 0.1-100,000 x the original timing
    capital: float = Field(10_000.0, gt=0)
    venue: VenueConfig = Field(default_factory=lambda: VenueConfig.model_validate({}))
    risk: dict[str, Any] | None = None  # RiskConfig keys; "off" switches one off. Absent: no risk engine
    audit: Path | None = None  # the risk audit log; default beside the journal (<journal>.risk.jsonl)
    journal: Path | None = None
    trades_out: Path | None = None
    status: bool | None = None  # the live status view; None: on a terminal only
    live_trading_enabled: bool = False
    live_training: bool = False  # strategy "model", any mode but backtest: train live on confirmed pivots (runtime.learning)

    @model_validator(mode="before")
    @classmethod
    def _model_strategy(cls, data: Any) -> Any:
        """[[models]] without a strategy means ``strategy = "model"``; the model strategy's orchestrator parameters
        (``params`` / --param) move into the [orchestrator] table, ``models = "a,b"`` into [[models]] entries."""
        if not isinstance(data, dict):
            return data
        if data.get("models") and "strategy" not in data:
            data = {**data, "strategy": MODEL_STRATEGY}
        params = data.get("params")
        if data.get("strategy") != MODEL_STRATEGY or not isinstance(params, dict):
            return data
        params, table = dict(params), dict(data.get("orchestrator") or {})
        for key in _ORCHESTRATOR_PARAMS:
            if key in params:
                table[key] = params.pop(key)
        if "keep_on_abstain" in params:
            keep = params.pop("keep_on_abstain")
            table["abstain"] = "keep" if str(keep).lower() in ("true", "1", "yes") else "flat"
        names = params.pop("models", None)
        data = {**data, "params": params, "orchestrator": table}
        if isinstance(names, str) and names.strip():  # --param models=a,b: it replaces the file's list
            weights = {m.get("name"): m.get("weight") for m in data.get("models") or [] if isinstance(m, dict)}
            data["models"] = [
                {"name": n.strip(), **({} if weights.get(n.strip()) is None else {"weight": weights[n.strip()]})}
                for n in names.split(",")
                if n.strip()
            ]
        return data

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        """Cross-key rules; each message starts with the key it is about (``describe`` reads it)."""
        if self.strategy == MODEL_STRATEGY and not self.models:
            raise ValueError(
                'models: strategy "model" trades checkpoints; fix: add a [[models]] entry with name = "cnn" (a model '
                "name from pivotal models list), or --param models=cnn"
            )
        if self.strategy != MODEL_STRATEGY and (self.models or self.orchestrator.model_fields_set):
            key = "models" if self.models else "orchestrator"
            raise ValueError(
                f'{key}: [[models]] and [orchestrator] configure strategy = "model" (got strategy = {self.strategy!r}); '
                'fix: set strategy = "model" or remove them'
            )
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"models: {names} names a checkpoint twice; fix: list each model once")
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError(f"symbols: {self.symbols} names a symbol twice; fix: list each symbol once")
        if len(self.timeframes) > 1 and len(self.timeframes) != len(self.symbols):
            raise ValueError(
                f"timeframes: {self.timeframes} for symbols {self.symbols}; fix: give one timeframe for every symbol, "
                "or one per symbol in the same order"
            )
        if self.input is not None and len(self.symbols) > 1:
            raise ValueError(
                "input: a candle file holds one symbol; fix: leave input out to run the stored series of each symbol "
                "(pivotal data import), or name one symbol"
            )
        return self

    @field_validator("start", "end", mode="before")
    @classmethod
    def _time(cls, v: Any) -> int | None:
        return to_epoch_ms(v)

    @field_validator("mode")
    @classmethod
    def _mode(cls, v: str) -> str:
        if v not in MODES:
            raise ValueError(f"unknown mode {v!r}; use one of: {', '.join(MODES)}")
        return v

    @field_validator("speed")
    @classmethod
    def _speed(cls, v: float) -> float:
        return check_speed(v)

    @field_validator("risk")
    @classmethod
    def _risk(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is not None:
            risk_config(v)
        return v

    @field_validator("trades_out")
    @classmethod
    def _trades_out(cls, v: Path | None) -> Path | None:
        if v is not None and v.suffix.lower() not in (".csv", ".json"):
            raise ValueError(f"unsupported trade export format {v.suffix!r}; use .csv or .json")
        return v

    # -- derived ------------------------------------------------------------------------------------------------------
    @property
    def symbol(self) -> str | None:
        return self.symbols[0] if self.symbols else None

    @property
    def timeframe(self) -> str | None:
        return self.timeframes[0] if self.timeframes else None

    def markets(self) -> list[tuple[str, str | None]]:
        """(symbol, timeframe) of every symbol: the one timeframe for all, or each its own."""
        if len(self.timeframes) > 1:
            return list(zip(self.symbols, self.timeframes, strict=True))
        return [(s, self.timeframe) for s in self.symbols]

    def model_tables(self) -> tuple[list[dict[str, Any]], dict[str, Any], bool]:
        """The model strategy's [[models]] entries, [orchestrator] settings and whether HOLD keeps a position."""
        models = [m.model_dump(exclude_none=True) for m in self.models]
        return models, self.orchestrator.settings(), self.orchestrator.abstain == "keep"

    @property
    def venue_exchange(self) -> str | None:
        """The exchange orders would go to (what a live run's confirmation asks the user to type)."""
        return self.venue.exchange or self.exchange

    def risk_config(self) -> RiskConfig | None:
        return None if self.risk is None else risk_config(self.risk)

    def audit_path(self) -> Path | None:
        """The risk audit log: ``audit``, else beside the journal (``run.jsonl`` → ``run.risk.jsonl``), else none
        (kept in memory)."""
        if self.audit is not None or self.journal is None:
            return self.audit
        return self.journal.with_name(f"{self.journal.stem}.risk.jsonl")

    def request(self) -> RunRequest:
        """The ``services.run.RunRequest`` of this configuration: one translation for ``pivotal run`` and the API's
        runtime routes. Paper/testnet/live read the venue's exchange when the market names none."""
        from pivotal.services.backtest import CandleSource

        market = self.exchange or (self.venue_exchange if self.mode in LIVE_DATA else None)
        source = CandleSource(self.input, market, self.symbol, self.timeframe, self.start, self.end)
        models, orchestrator, keep = self.model_tables()
        markets = tuple((s, tf) for s, tf in self.markets() if tf is not None) if len(self.symbols) > 1 else ()
        if len(self.symbols) > 1 and len(markets) != len(self.symbols):
            raise UserInputError(f"several symbols {self.symbols} need a timeframe (timeframes = [...] or -t)")
        return RunRequest(
            self.mode, self.strategy, source, self.params, self.params_file, self.speed, self.venue.fee,
            self.venue.slippage, self.capital, self.journal, self.risk_config(), self.audit_path(), self.venue_exchange,
            self.venue.rest_url, self.venue.ws_url, markets, tuple(models), orchestrator, keep,
            self.venue.adopt_foreign_orders, self.live_training,
        )  # fmt: skip


def risk_config(table: dict[str, Any]) -> RiskConfig:
    """A ``[risk]`` table as a ``RiskConfig``: its keys are RiskConfig's fields, ``"off"`` (or false) switches a setting
    off (TOML has no null); absent keys keep their defaults (the A-Plus seven on)."""
    unknown = [k for k in table if k not in _RISK_KEYS]
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown key; fix: remove it or use one of: {', '.join(_RISK_KEYS)}")
    values = {k: None if v == "off" or v is False else v for k, v in table.items()}
    try:
        return RiskConfig(**values)  # type: ignore[arg-type]
    except UserInputError as exc:
        text = str(exc).removeprefix("risk config: ").replace(" or None", ' or "off"')
        raise ValueError(text.replace(" ", ": ", 1)) from None  # "<key>: <what>" (describe() reads the key)
    except TypeError as exc:
        raise ValueError(str(exc)) from None


def to_epoch_ms(v: Any) -> int | None:
    """A TOML date / datetime, an ISO string (UTC unless it says otherwise) or epoch ms, as epoch ms."""
    if v is None or (isinstance(v, int) and not isinstance(v, bool)):
        return v
    if isinstance(v, str):
        text = v.strip()
        if text.isdigit():
            return int(text)
        try:
            v = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("use a date like 2024-03-01, 2024-03-01T12:00 (UTC) or epoch ms") from None
    if isinstance(v, date) and not isinstance(v, datetime):
        v = datetime.combine(v, time(0))
    if isinstance(v, datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=UTC)
        return int(v.timestamp() * 1000)
    raise ValueError("use a date like 2024-03-01, 2024-03-01T12:00 (UTC) or epoch ms")


def read_toml(path: Path) -> dict[str, Any]:
    """The file's table, with its relative paths resolved against its folder; one line on any error."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserInputError(f"{path}: run configuration not found; fix: check the path given to --config") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserInputError(toml_error(path, exc).replace('store = "duckdb"', 'strategy = "sma_cross"')) from None
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise UserInputError(f"{path}: cannot read the run configuration ({why})") from None
    base = path.parent
    for key in (*_PATH_KEYS, "params_file", "out"):
        if isinstance(data.get(key), str):
            data[key] = str((base / Path(data[key]).expanduser()).resolve())
    return data


def load_run_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """The file (when given) with ``overrides`` (flag values; ``None`` = not given) applied key by key. Dotted keys
    (``venue.fee``) set a key of a table. Errors name the file or the flag, the key and the fix."""
    data = read_toml(path) if path is not None else {}
    source = str(path) if path is not None else "the run configuration"
    validate(data, source)
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    if not flags:
        return validate(data, source)
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for key, value in flags.items():
        if "." in key:
            table, sub = key.split(".", 1)
            merged.setdefault(table, {})[sub] = value
        elif key == "params" and isinstance(merged.get("params"), dict):
            merged["params"] = {**merged["params"], **value}
        else:
            merged[key] = value
    return validate(merged, source, flags=set(flags))


def validate(data: dict[str, Any], source: str, flags: set[str] | None = None) -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise UserInputError(describe(exc, source, flags or set())) from None


def _table_of(loc: list[str]) -> type[BaseModel]:
    """The model whose keys a location is in (``venue.x``, ``orchestrator.x``, ``models.0.x``)."""
    tables: dict[str, type[BaseModel]] = {"venue": VenueConfig, "orchestrator": OrchestratorTable, "models": ModelEntry}
    return tables.get(loc[0], RunConfig) if len(loc) > 1 else RunConfig


def describe(exc: ValidationError, source: str, flags: set[str]) -> str:
    """The first problem as one line: where (file or flag), which key, what is wrong, the fix."""
    error = exc.errors()[0]
    loc = [str(p) for p in error["loc"]]
    key = ".".join(loc) or "run configuration"
    flag = _FLAG_NAMES.get(key, f"--{key.replace('_', '-').replace('venue.', '')}")
    where = flag if (key in flags or (loc and loc[0] in flags)) else source
    if loc[:1] == ["orchestrator"] and "params" in flags and loc[-1] in _ORCHESTRATOR_PARAMS:
        where = "--param"  # the model strategy's orchestrator parameters given as --param KEY=VALUE
    if error["type"] == "extra_forbidden":
        model = _table_of(loc)
        return f"{where}: unknown key {key!r}; fix: remove it or use one of: {', '.join(model.model_fields)}"
    if error["type"] == "missing":
        return f"{where}: {key}: missing; fix: add {loc[-1]} = ..."
    value = "" if "input" not in error or isinstance(error["input"], dict) else f" = {error['input']!r}"
    msg = str(error.get("ctx", {}).get("error", "")) or error["msg"]
    msg = msg.removeprefix("Value error, ")
    if loc == ["risk"] and ": " in msg:  # risk_config names the key of the table first
        sub, msg = msg.split(": ", 1)
        key, value = f"risk.{sub}", ""
    elif not loc and ": " in msg:  # a cross-key rule (RunConfig._consistent) names its key first
        key, msg = msg.split(": ", 1)
        value = ""
    expected = error.get("ctx", {}).get("expected")
    fix = f"use one of {expected}" if expected and error["type"] == "literal_error" else msg[:1].lower() + msg[1:]
    return f"{where}: {key}{value}: {fix}"


__all__ = [
    "MODEL_STRATEGY",
    "ModelEntry",
    "OrchestratorTable",
    "RunConfig",
    "VenueConfig",
    "load_run_config",
    "read_toml",
    "risk_config",
    "to_epoch_ms",
]
