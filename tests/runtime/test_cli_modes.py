"""`pivotal run`: modes not built yet exit 2 in plain words; errors are one line; the CLI's lists equal the
library's."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pivotal.cli import run as run_cli
from pivotal.cli.main import app
from pivotal.services import run as service
from pivotal.strategies.registry import strategy_names

pytestmark = pytest.mark.unit

runner = CliRunner()


def invoke(args: list[str]) -> tuple[int, str]:
    result = runner.invoke(app, args)
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.parametrize("mode", ["paper", "testnet"])
def test_live_data_modes_need_a_market_in_one_line(mode: str) -> None:
    code, out = invoke(["run", "--mode", mode, "--strategy", "sma_cross"])
    assert code == 1 and f"--mode {mode} needs an exchange, a symbol and a timeframe (-e, -s, -t)" in out


def test_live_without_its_gate_is_refused_with_exit_2() -> None:
    code, out = invoke(["run", "--mode", "live", "--strategy", "sma_cross"])
    assert code == 2 and "live trading refused" in out and "not built yet" not in out


def test_errors_are_one_line(tmp_path: Path) -> None:
    code, out = invoke(["run", "--mode", "dance"])
    assert code == 1 and "unknown mode 'dance'; use one of: backtest, replay, paper, testnet, live" in out
    code, out = invoke(["run", "--input", str(tmp_path / "x.csv"), "--speed", "500000"])
    assert code == 1 and "replay speed 500000 is out of range; use 0 (as fast as possible) or 0.1 to 100000" in out
    code, out = invoke(["run", "--input", str(tmp_path / "x.csv"), "--trades-out", str(tmp_path / "t.txt")])
    assert code == 1 and "unsupported trade export format '.txt'" in out
    code, out = invoke(["run", "--input", str(tmp_path / "x.csv")])
    assert code == 1 and "x.csv: file not found" in out
    assert "Traceback" not in out


def test_cli_lists_equal_the_library_lists() -> None:
    assert run_cli.MODES == service.MODES
    assert list(run_cli.STRATEGIES) == strategy_names()
