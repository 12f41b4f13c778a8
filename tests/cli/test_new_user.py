"""What a new user meets (issue #9): tables that fit 80 columns on a terminal and in a pipe, `--json` that is
indented on a terminal and one line in a pipe, the same short options everywhere, every fixed set of values listed in
`--help`, `pivotal --version`. Stores and checkpoint indexes are written here by hand (no ../shared data)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import asdict

import pytest
import typer
from typer.testing import CliRunner

from pivotal.cli import backtest as backtest_cli
from pivotal.cli import optimize as optimize_cli
from pivotal.cli.main import app
from pivotal.config import load_settings
from pivotal.data.backends import open_store
from pivotal.data.state.checkpoints import CheckpointIndex
from pivotal.optimize.configs import ConfigurationRepository, Lifecycle, TrainedConfiguration
from pivotal.training.checkpoints import CheckpointInfo

pytestmark = pytest.mark.unit
runner = CliRunner()
CONFIG_IDS = ("3f9a1c2b7d4e:binance:BTC/USDT:1h", "3f9a1c2b7d4e:coinbase:ETH/USD:4h")
CHECKPOINT = "transformer/20261206T094900123456"


@pytest.fixture
def configs() -> None:
    store = open_store(load_settings())
    try:
        repo = ConfigurationRepository(store)
        for cid in CONFIG_IDS:
            _, exchange, pair, timeframe = cid.split(":")
            repo.save(
                TrainedConfiguration(
                    id=cid, strategy="liquidity_sweep", pair=pair, exchange=exchange, timeframe=timeframe,
                    parameters={"pierce_depth": 0.002}, is_metrics={"net_profit_pct": 12.5, "profit_factor": float("inf")},
                    oos_metrics={"net_profit_pct": -3.25}, significance={"dsr": 0.61, "pbo": 0.25, "p_value": 0.04},
                    sample_size=31, lifecycle_stage=Lifecycle.VALIDATION, job_id="3f9a1c2b7d4e",
                )
            )  # fmt: skip
    finally:
        store.close()


@pytest.fixture
def checkpoint() -> None:
    name, ckpt_id = CHECKPOINT.split("/")
    info = CheckpointInfo(
        name=name, id=ckpt_id, model_type="transformer", metric_name="holdout_mae", metric=0.0123, higher_is_better=False,
        config={}, commit="0123456789abcdef", created="2026-12-06T09:49:00+00:00", path=f"{name}/{ckpt_id}.pt",
        data_span={"symbol": "BTC/USDT", "timeframes": ["1h", "4h", "1d"], "start": 1_704_067_200_000, "end": 1_748_736_000_000},
    )  # fmt: skip
    with CheckpointIndex(load_settings().data_dir / "models").locked() as index:
        index.add(asdict(info))


def _cli(*args: str) -> list[str]:
    """Run the console script with stdout a pipe (not a terminal), as `pivotal ... | less` does."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    code = "from pivotal.cli.main import app; app()"
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def _fits(lines: list[str], *whole: str) -> None:
    assert lines and max(len(line) for line in lines) <= 80, "\n".join(lines)
    assert not any("…" in line for line in lines), "\n".join(lines)  # nothing cut off
    for text in whole:  # ids and references stay whole on one line, so they can be copied
        assert any(text in line for line in lines), f"{text!r} is broken across lines:\n" + "\n".join(lines)


@pytest.mark.usefixtures("configs")
def test_configs_list_fits_80_columns_piped_and_on_a_terminal() -> None:
    _fits(_cli("configs", "list"), *CONFIG_IDS, "OOS net %")
    result = runner.invoke(app, ["configs", "list"], env={"COLUMNS": "80"})
    _fits(result.output.splitlines(), *CONFIG_IDS)


@pytest.mark.usefixtures("checkpoint")
def test_models_list_fits_80_columns_piped_and_on_a_terminal() -> None:
    _fits(_cli("models", "list"), "20261206T094900123456", "2024-01-01", "2025-06-01", "holdout_mae")
    result = runner.invoke(app, ["models", "list"], env={"COLUMNS": "80"})
    _fits(result.output.splitlines(), "20261206T094900123456")


@pytest.mark.usefixtures("configs", "checkpoint")
@pytest.mark.parametrize(
    "args",
    [["configs", "list", "--json"], ["configs", "show", CONFIG_IDS[0], "--json"], ["models", "list", "--json"],
     ["models", "show", CHECKPOINT, "--json"], ["models", "show", CHECKPOINT]],
)  # fmt: skip
def test_json_is_one_line_when_piped(args: list[str]) -> None:
    lines = _cli(*args)
    assert len(lines) == 1
    value = json.loads(lines[0])
    first = value[0] if isinstance(value, list) else value
    assert first.get("id", first.get("configuration_id")) in (*CONFIG_IDS, CHECKPOINT.split("/")[1])


@pytest.mark.usefixtures("configs")
def test_configs_json_has_no_infinity() -> None:
    result = runner.invoke(app, ["configs", "list", "--json"])
    assert json.loads(result.output)[0]["is_metrics"]["profit_factor"] is None  # inf is not JSON


def test_emit_json_indents_for_a_terminal(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from pivotal.cli.common import emit_json

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    emit_json({"a": [1, float("nan")]})
    assert capsys.readouterr().out == '{\n  "a": [\n    1,\n    null\n  ]\n}\n'
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    emit_json({"a": [1, float("nan")]})
    assert capsys.readouterr().out == '{"a": [1, null]}\n'


# --- consistency of the command line --------------------------------------------------------------------------------
ROOT = typer.main.get_command(app)
SHORT = {"--exchange": "-e", "--symbol": "-s", "--symbols": "-s", "--timeframe": "-t", "--timeframes": "-t"}


def _leaves(command: object, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    subs = getattr(command, "commands", {})
    if not subs:
        return [(path, command)]
    return [leaf for name, sub in sorted(subs.items()) for leaf in _leaves(sub, (*path, name))]


# Every command follows the rule (the data and testexchange commands joined last).
PENDING: tuple[str, ...] = ()
LEAVES = [(p, c) for p, c in _leaves(ROOT) if p[0] not in PENDING]


@pytest.mark.parametrize(("path", "command"), LEAVES, ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_exchange_symbol_timeframe_have_the_same_short_options_everywhere(path: tuple[str, ...], command: object) -> None:
    for param in getattr(command, "params", []):
        for long, short in SHORT.items():
            if long in param.opts:
                assert short in param.opts + param.secondary_opts, f"{' '.join(path)} {long} lacks {short}"


def test_list_options_accept_the_singular_too() -> None:
    optimize = {o for p in ROOT.commands["optimize"].params for o in p.opts}  # type: ignore[attr-defined]
    assert {"--symbols", "--symbol", "--timeframes", "--timeframe"} <= optimize
    train = {o for p in ROOT.commands["train"].params for o in p.opts}  # type: ignore[attr-defined]
    assert {"--timeframes", "--timeframe", "--start", "--end"} <= train


@pytest.mark.parametrize(
    ("args", "choices"),
    [
        (["optimize"], ["grid|random|bayesian", "tpe|random|cmaes|qmc|nsga2|gp", "NET_PROFIT|SHARPE|PROFIT_FACTOR|WIN_RATE"]),
        (["train"], ["cnn|transformer|dqn", "small|medium|5m|8m|12m", "cpu|cuda"]),
        (["backtest"], ["liquidity_sweep, model, sma_cross", "duckdb|postgres"]),
        (["pivots", "chart"], ["first|last|strict", "duckdb|postgres"]),
        (["configs", "list"], ["duckdb|postgres"]),
    ],
)
def test_fixed_sets_of_values_are_listed_in_help(args: list[str], choices: list[str]) -> None:
    result = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "250"})
    text = re.sub(r"\s+", "", result.output)
    for choice in choices:
        assert re.sub(r"\s+", "", choice) in text, f"{' '.join(args)} --help does not list {choice}"


def test_a_wrong_store_is_a_usage_error_naming_the_choices() -> None:
    result = runner.invoke(app, ["configs", "list", "--store", "mysql"])
    text = " ".join(re.sub("[\u2500-\u257f]", " ", result.output).split())
    assert result.exit_code == 2 and "'mysql' is not a store backend; choose one of: duckdb, postgres" in text


def test_version() -> None:
    from importlib.metadata import version

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output == f"pivotal {version('pivotal')}\n"


def test_help_copies_equal_the_library_lists() -> None:
    from pivotal.optimize.objective import ObjectiveMetric
    from pivotal.optimize.pipeline import METHODS
    from pivotal.services.backtest import DEFAULT_CAPITAL
    from pivotal.strategies.registry import strategy_names

    assert tuple(strategy_names()) == backtest_cli.STRATEGIES
    assert backtest_cli.DEFAULT_CAPITAL == DEFAULT_CAPITAL
    assert tuple(METHODS) == optimize_cli.METHODS
    assert tuple(ObjectiveMetric.__members__) == optimize_cli.METRICS
