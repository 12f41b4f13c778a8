"""`make demo` (issue #9): it installs only the package's own dependencies, and it ends with a backtest a trader
recognises (capital, dates, buy-and-hold, an honest verdict) and charts in a named output folder. The demo's own
commands are read from the Makefile (`make -n`), so this test runs what the demo runs."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pivotal.cli.main import app

REPO = Path(__file__).resolve().parents[1]
needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _dry_run(target: str, **variables: str) -> list[str]:
    """The commands `make TARGET` would run on a fresh checkout (-B: as if nothing were installed yet)."""
    extra = [f"{k}={v}" for k, v in variables.items()]
    done = subprocess.run(["make", "-n", "-B", target, *extra], cwd=REPO, capture_output=True, text=True, check=True)
    return done.stdout.splitlines()


@needs_make
@pytest.mark.unit
def test_demo_installs_no_extras_and_test_installs_the_ci_extras() -> None:
    demo = _dry_run("demo")
    installs = [line for line in demo if "pip install" in line and "--upgrade pip" not in line]
    assert installs == [".venv/bin/pip install -q -e ."]
    assert any("pivotal backtest" in line and "--out pivotal-out/demo" in line for line in demo)
    test = _dry_run("test")
    assert ".venv/bin/pip install -q -e '.[dev,cluster,compare]'" in test


def _pivotal_commands(lines: list[str]) -> list[list[str]]:
    return [shlex.split(line)[1:] for line in lines if re.match(r"^\S*/pivotal ", line)]


@needs_make
@pytest.mark.realdata
def test_the_demo_ends_with_a_backtest_and_charts(shared_data: Path, tmp_path: Path) -> None:
    """Runs the demo's commands in-process on a throw-away data directory (the autouse settings fixture)."""
    out = tmp_path / "demo-out"
    imported, backtest = _pivotal_commands(_dry_run("demo", SHARED_DATA=str(shared_data), DEMO_OUT=str(out)))
    assert imported[:2] == ["data", "import"] and backtest[0] == "backtest"
    # the whole of ../shared/data takes ~10 s; the series the demo backtests is one file of it
    done = CliRunner().invoke(app, ["data", "import", str(shared_data / "coinbase" / "BTCUSD-4h.parquet")])
    assert done.exit_code == 0, done.output
    result = CliRunner().invoke(app, backtest)
    assert result.exit_code == 0, result.output
    text = " ".join(re.sub("[\u2500-\u257f]", " ", result.output).split())
    assert "liquidity_sweep on coinbase BTC/USD 4h: 20695 bars" in text
    assert "period: 2016-05-18 04:00 → 2025-10-28 04:00 UTC (9.5 years)" in text
    assert "start capital 10,000.00 10,000.00" in text and "buy and hold" in text
    assert "The strategy LOST money: -67.24 %" in text  # the truth, on these data, with the default parameters
    assert f"output folder: {out.resolve()}" in text
    assert {"summary.json", "trades.csv", "equity.png", "equity.html"} <= {p.name for p in out.iterdir()}
