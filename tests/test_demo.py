"""`make demo` (issues #9 and #10): it installs only the package's own dependencies, imports ../shared/data and ends
with replays a trader can watch — a rule strategy on two symbols in one portfolio under the risk engine, then a small
CNN through the orchestrator (trained first when its checkpoint is missing) — with the summary, the trade list and
charts in a named output folder. The demo's own commands are read from the Makefile (`make -n`), so this test runs
what the demo runs (the model run on one week, via the flags that override the configuration)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pivotal.cli.main import app

REPO = Path(__file__).resolve().parents[1]
needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
runner = CliRunner()


def _dry_run(target: str, **variables: str) -> list[str]:
    """The commands `make TARGET` would run on a fresh checkout (-B: as if nothing were installed yet)."""
    extra = [f"{k}={v}" for k, v in variables.items()]
    done = subprocess.run(["make", "-n", "-B", target, *extra], cwd=REPO, capture_output=True, text=True, check=True)
    return done.stdout.splitlines()


def _pivotal_commands(lines: list[str]) -> list[list[str]]:
    """The demo's plain `pivotal ...` commands (not the guarded `models show ... || ...` lines)."""
    return [shlex.split(line)[1:] for line in lines if re.match(r"^\S*/pivotal ", line) and "||" not in line]


def _guarded_train(lines: list[str]) -> list[str]:
    """The `pivotal train ...` run only when `pivotal models show NAME` fails (no checkpoint yet)."""
    [line] = [line for line in lines if "|| " in line and "/pivotal train " in line]
    check, train = line.split("||")
    assert re.match(r"^\S*/pivotal models show \S+ > /dev/null 2>&1 $", check)
    return shlex.split(train)[1:]


@needs_make
@pytest.mark.unit
def test_demo_installs_no_extras_and_replays_a_strategy_and_a_model() -> None:
    demo = _dry_run("demo")
    installs = [line for line in demo if "pip install" in line and "--upgrade pip" not in line]
    assert installs == [".venv/bin/pip install -q -e ."]
    imported, rule, model, serve = _pivotal_commands(demo)
    assert imported == ["data", "import", "../shared/data"]
    assert rule == ["run", "--config", "docs/examples/demo.toml", "--out", "pivotal-out/demo/sma_cross"]
    assert model == ["run", "--config", "docs/examples/demo-model.toml", "--out", "pivotal-out/demo/model"]
    # it ends with the model's replay still playing behind the dashboard
    assert serve == ["serve", "--run", "docs/examples/demo-model.toml", "--speed", "3600"]
    train = _guarded_train(demo)
    config = tomllib.loads((REPO / "docs" / "examples" / "demo-model.toml").read_text())
    name = config["models"][0]["name"]
    assert train[:2] == ["train", "--model"] and train[train.index("--name") + 1] == name == "demo-cnn"
    assert any(f"models show {name}" in line and "training a small CNN" in line for line in demo)  # it says so
    # trained on bars before the replay's window: the model trades bars it never saw
    assert train[train.index("--end") + 1] == "2024-06-01" <= str(config["start"])
    test = _dry_run("test")
    assert ".venv/bin/pip install -q -e '.[dev,cluster,compare]'" in test


def _text(output: str) -> str:
    return " ".join(re.sub("[\u2500-\u257f]", " ", output).split())


def _import(shared_data: Path, *names: str) -> None:
    # the whole of ../shared/data takes ~10 s; the demo replays these files of it
    done = runner.invoke(app, ["data", "import", *(str(shared_data / "binance" / n) for n in names)])
    assert done.exit_code == 0, done.output


@needs_make
@pytest.mark.realdata
def test_the_demo_replays_sma_cross_on_two_symbols_under_the_risk_engine(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "demo-out"
    _, rule, _, _ = _pivotal_commands(_dry_run("demo", SHARED_DATA=str(shared_data), DEMO_OUT=str(out)))
    _import(shared_data, "BTCUSDT-1h-2018-2026.parquet", "ETHUSDT-1h-2018-2026.parquet")
    result = runner.invoke(app, rule)
    assert result.exit_code == 0, result.output
    text = _text(result.output)
    assert "replay: 5904 events at speed 0" in text
    assert "sma_cross on binance BTC/USDT, ETH/USDT 1h: 5904 bars" in text
    assert "period: 2023-10-01 00:00 → 2024-02-01 00:00 UTC" in text
    assert "start capital 10,000.00 10,000.00" in text and "buy and hold" in text
    assert "The strategy made +15.70 %" in text and "+46.84 %" in text  # beside the equal-weight basket
    assert "Per symbol (one portfolio)" in text and "BTC/USDT" in text and "ETH/USDT" in text
    assert "risk: HALTED (max_daily_loss) since 2023-10-26 17:00 UTC" in text  # the breaker, then flat to the end
    assert f"output folder: {(out / 'sma_cross').resolve()}" in text
    files = {p.name for p in (out / "sma_cross").iterdir()}
    assert {"summary.json", "trades.csv", "equity-BTC-USDT.png", "equity-ETH-USDT.html"} <= files
    rows = (out / "sma_cross" / "trades.csv").read_text().splitlines()
    assert rows[0].startswith("symbol,") and len(rows) == 1 + 7
    assert {r.split(",")[0] for r in rows[1:]} == {"BTC/USDT", "ETH/USDT"}


@needs_make
@pytest.mark.realdata
def test_the_demo_replays_a_trained_cnn(shared_data: Path, tmp_path: Path) -> None:
    """The model run of the demo on its first week, with a tiny CNN trained here under the demo's checkpoint name
    (the demo trains a bigger one, about a minute, when it has none)."""
    import torch

    from pivotal.config import load_settings
    from pivotal.data.loaders import load_candles_file
    from pivotal.services.train import checkpoints
    from pivotal.training.pipeline import RunSpec, load_series, make_samples, new_supervised

    out = tmp_path / "demo-out"
    lines = _dry_run("demo", SHARED_DATA=str(shared_data), DEMO_OUT=str(out))
    _, _, model_run, _ = _pivotal_commands(lines)
    name = _guarded_train(lines)[_guarded_train(lines).index("--name") + 1]
    _import(shared_data, "BTCUSDT-1h-2018-2026.parquet")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    path = shared_data / "binance" / "BTCUSDT-1h-2018-2026.parquet"
    base = load_candles_file(path, start=1714521600000, end=1717200000000, exchange="binance", symbol="BTC/USDT")  # May
    spec = RunSpec("cnn", "binance", "BTC/USDT", ("1h",), window=100, progress=False, name=name)
    samples = make_samples(load_series(None, spec, base), spec)
    model = new_supervised(spec)
    rng = np.random.default_rng(0)
    for _ in range(10):
        model.train_step(samples.batch(np.sort(rng.choice(len(samples), 64, replace=False))))
    checkpoints(load_settings()).save(model, "val_loss", 1.0, False, {}, spec.extra())
    result = runner.invoke(app, [*model_run, "--end", "2024-06-08"])  # the first week of the demo's window
    assert result.exit_code == 0, result.output
    text = _text(result.output)
    assert "replay: 168 events at speed 0" in text and "model on binance BTC/USDT 1h: 168 bars" in text
    assert f"parameters: models={name}, buy_threshold=0.03, sell_threshold=0.03" in text
    assert "risk: " in text and f"output folder: {(out / 'model').resolve()}" in text
    assert {"summary.json", "trades.csv", "equity.png", "equity.html"} <= {p.name for p in (out / "model").iterdir()}
