"""`pivotal run --config`: a run configuration on hand-written bars (flags override it), the headless final
summary, the status view off a terminal, the [risk] table (an engine with everything off trades exactly as
`pivotal backtest`), and the plain refusals (models not wired, several symbols, paper not built)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pivotal.cli.main import app

pytestmark = pytest.mark.unit

runner = CliRunner()
HOUR = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
OFF = "\n".join(f'{k} = "off"' for k in ("max_daily_loss", "max_correlation_spike", "unusual_market_threshold",
                                           "latency_threshold_ms", "consecutive_losses_limit", "max_adverse_selection",
                                           "regime_break_threshold"))  # fmt: skip


def invoke(args: list[str]) -> tuple[int, str]:
    result = runner.invoke(app, args)
    return result.exit_code, result.output


@pytest.fixture
def bars(tmp_path: Path) -> Path:
    """60 hourly bars by formula (a slow wave with a faster ripple): SMA cross 2/5 trades on it several times."""
    path = tmp_path / "bars.csv"
    rows = ["ts,open,high,low,close,volume"]
    prev = 100.0
    for i in range(60):
        close = round(100 + 8 * math.sin(i / 6) + 2 * math.sin(i * 1.3), 4)
        rows.append(f"{T0 + i * HOUR},{prev},{max(prev, close) + 0.5},{min(prev, close) - 0.5},{close},1")
        prev = close
    path.write_text("\n".join(rows) + "\n")
    return path


def config(tmp_path: Path, bars: Path, extra: str = "") -> str:
    path = tmp_path / "run.toml"
    path.write_text(f'mode = "backtest"\nstrategy = "sma_cross"\nparams = {{ fast = 2, slow = 5 }}\n'
                    f'input = "{bars.name}"\nstatus = false\n{extra}')  # fmt: skip
    return str(path)


def test_config_with_flag_overrides_and_a_headless_summary(tmp_path: Path, bars: Path) -> None:
    code, out = invoke(["run", "--config", config(tmp_path, bars), "--mode", "replay", "--trades-out", str(tmp_path / "r.csv")])
    assert code == 0, out
    assert "replay: 60 events at speed 0" in out and "sma_cross on " in out and "parameters: fast=2, slow=5" in out
    assert "final status  2024-01-03 12:00 UTC  events 60  feed lag 0 ms" in out
    assert "risk: default gate" in out and "risk audit log" not in out
    code, out = invoke(["backtest", "--input", str(bars), "--strategy", "sma_cross", "-p", "fast=2", "-p", "slow=5",
                        "--trades-out", str(tmp_path / "b.csv")])  # fmt: skip
    assert code == 0, out
    trades = (tmp_path / "b.csv").read_text()
    assert (tmp_path / "r.csv").read_text() == trades and len(trades.splitlines()) > 3


def test_a_risk_table_puts_the_node_under_the_engine(tmp_path: Path, bars: Path) -> None:
    """Everything off: the engine decides as the default gate, so the trades are the backtest's; the audit log sits
    beside the journal and the JSON report carries the snapshot with the engine's state."""
    journal = tmp_path / "run.jsonl"
    args = ["run", "--config", config(tmp_path, bars, f"[risk]\n{OFF}\n"), "--mode", "replay", "--journal", str(journal),
            "--trades-out", str(tmp_path / "r.csv"), "--json"]  # fmt: skip
    code, out = invoke(args)
    assert code == 0, out
    report = json.loads(out[out.index("{") :])
    assert report["audit"] == str(tmp_path / "run.risk.jsonl") and (tmp_path / "run.risk.jsonl").exists()
    assert report["status"]["risk"] == {"state": "ACTIVE", "reason": "", "since": None, "trips": []}
    assert report["status"]["events"] == 60 and report["status"]["trades"] == report["metrics"]["trades"]
    invoke(["backtest", "--input", str(bars), "--strategy", "sma_cross", "-p", "fast=2", "-p", "slow=5",
            "--trades-out", str(tmp_path / "b.csv")])  # fmt: skip
    assert (tmp_path / "r.csv").read_text() == (tmp_path / "b.csv").read_text()
    code, out = invoke([*args[:-1], "--json"])  # the same run again: the journal resumes, the audit log reopens
    assert code == 0, out


def test_the_status_view_off_a_terminal_leaves_its_last_frame(tmp_path: Path, bars: Path) -> None:
    code, out = invoke(["run", "--config", config(tmp_path, bars), "--mode", "replay", "--status"])
    assert code == 0, out
    assert "replay sma_cross bars  2024-01-03 12:00 UTC  events 60" in out and "final status" not in out


def test_plain_refusals(tmp_path: Path, bars: Path) -> None:
    code, out = invoke(["run", "--config", config(tmp_path, bars, '[[models]]\nname = "cnn"\n')])
    assert code == 1 and "configure strategy = \"model\" (got strategy = 'sma_cross')" in out
    code, out = invoke(["run", "--config", config(tmp_path, bars, 'symbols = ["BTC/USDT", "ETH/USDT"]\n')])
    assert code == 1 and "input: a candle file holds one symbol; fix: leave input out" in " ".join(out.split())
    code, out = invoke(["run", "--config", config(tmp_path, bars), "--mode", "paper"])
    assert code == 1 and "--mode paper trades the exchange's live feed; --input (a candle file) is for backtest" in " ".join(
        out.split()
    )
    code, out = invoke(["run", "--config", config(tmp_path, bars, "speeed = 1\n")])
    assert code == 1 and "run.toml: unknown key 'speeed'" in out and "Traceback" not in out
