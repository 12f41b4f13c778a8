"""The console script starts fast: importing the CLI loads no heavy library, and every `--help` still renders."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from pivotal.cli import data_ingest
from pivotal.cli import optimize as optimize_cli
from pivotal.cli.main import app

HEAVY = ("torch", "matplotlib", "ccxt", "optuna", "scipy", "ray", "plotly")
# Not in the brief's list, but each costs a noticeable share of start-up and no `--help` needs them.
ALSO_LAZY = ("numba", "pandas", "pyarrow", "duckdb", "psycopg", "pydantic_settings")


def _modules_loaded_by_cli_import(names: tuple[str, ...]) -> list[str]:
    code = f"import pivotal.cli.main, sys; print(sorted(m for m in {names!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    return ast.literal_eval(done.stdout.strip())


def test_importing_the_cli_loads_no_heavy_library() -> None:
    assert _modules_loaded_by_cli_import(HEAVY) == []


def test_importing_the_cli_leaves_the_data_stack_unloaded() -> None:
    assert _modules_loaded_by_cli_import(ALSO_LAZY) == []


# Typer vendors its own click, so groups are recognised by their sub-commands, not by a click class.
def _subcommands(command: object) -> dict[str, object]:
    return getattr(command, "commands", {})


def _command_paths(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [path]
    for name, sub in sorted(_subcommands(command).items()):
        paths += _command_paths(sub, (*path, name))
    return paths


ROOT = typer.main.get_command(app)
PATHS = _command_paths(ROOT)


def _command_at(path: tuple[str, ...]) -> object:
    command: object = ROOT
    for name in path:
        command = _subcommands(command)[name]
    return command


def test_the_command_tree_is_complete() -> None:
    leaves = {" ".join(p) for p in PATHS if not _subcommands(_command_at(p))}
    assert leaves == {
        "backtest", "run", "parity", "optimize", "train", "predict", "serve", "testexchange serve",
        "data download", "data import", "data info", "data gaps", "data export", "data delete", "data verify",
        "data capture",
        "cob features", "cob heatmap",
        "pivots compute", "pivots chart", "pivots update",
        "configs list", "configs show", "configs export",
        "models list", "models show", "models delete", "models train-live", "models promote", "models rollback",
        "predictions list", "predictions show", "predictions stats", "predictions outcomes", "predictions prune",
        "annotations list", "annotations export",
    }  # fmt: skip


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "pivotal")
def test_every_help_renders_with_all_its_options(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})  # rich wraps at 80 otherwise
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    command = _command_at(path)
    options = [o for param in getattr(command, "params", []) for o in param.opts if o.startswith("--")]
    for option in options:
        assert option in result.output, f"{' '.join(path)} --help lost {option}"
    for name in _subcommands(command):
        assert name in result.output


def test_import_format_choices_equal_the_importers_list() -> None:
    from pivotal.data.importers import FORMATS

    assert data_ingest.FORMATS == FORMATS


def test_optimize_choices_equal_the_library_lists() -> None:
    from pivotal.optimize.bayesian import SAMPLERS

    assert tuple(SAMPLERS) == optimize_cli.SAMPLERS
