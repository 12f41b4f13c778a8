"""The run configuration: defaults, TOML dates, paths relative to the file, flags overriding keys, the [risk] table
onto RiskConfig, and every refusal one line naming the file (or flag), the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from pivotal.core.errors import UserInputError
from pivotal.risk.config import RiskConfig
from pivotal.runtime.config import RunConfig, load_run_config

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text)
    return path


def refused(path: Path | None, overrides: dict | None = None) -> str:
    with pytest.raises(UserInputError) as err:
        load_run_config(path, overrides)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_defaults_are_the_commands() -> None:
    cfg = load_run_config()
    assert (cfg.mode, cfg.strategy, cfg.speed, cfg.capital, cfg.venue.fee, cfg.venue.slippage) == (
        "replay", "liquidity_sweep", 0.0, 10_000.0, 0.001, 0.0005,
    )  # fmt: skip
    assert cfg.risk_config() is None and cfg.audit_path() is None and cfg.live_trading_enabled is False


def test_a_full_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
mode = "backtest"
strategy = "sma_cross"
params = { fast = 5, slow = 20 }
exchange = "binance"
symbols = ["BTC/USDT"]
timeframes = ["1h"]
input = "data/btc.parquet"
start = 2020-03-09
end = "2020-03-20T12:00"
speed = 2
journal = "out/run.jsonl"
trades_out = "out/trades.json"
[venue]
kind = "ccxt"
testnet = true
fee = 0.00075
[risk]
max_drawdown = 0.1
max_correlation_spike = "off"
consecutive_losses_limit = false
""",
    )
    cfg = load_run_config(path)
    assert cfg.input == tmp_path / "data" / "btc.parquet" and cfg.journal == tmp_path / "out" / "run.jsonl"
    assert (cfg.start, cfg.end) == (1583712000000, 1584705600000)
    assert (cfg.symbol, cfg.timeframe, cfg.venue.kind, cfg.venue.testnet, cfg.venue_exchange) == (
        "BTC/USDT", "1h", "ccxt", True, "binance",
    )  # fmt: skip
    assert cfg.risk_config() == RiskConfig(max_drawdown=0.1, max_correlation_spike=None, consecutive_losses_limit=None)
    assert cfg.audit_path() == tmp_path / "out" / "run.risk.jsonl"


def test_flags_override_the_file_key_by_key(tmp_path: Path) -> None:
    path = write(tmp_path, 'strategy = "sma_cross"\nparams = { fast = 5, slow = 20 }\nspeed = 2\n[venue]\nfee = 0.002\n')
    cfg = load_run_config(path, {"speed": 0.5, "params": {"fast": "7"}, "venue.slippage": 0.0, "mode": None,
                                 "journal": Path("j.jsonl"), "start": "1583712000000"})  # fmt: skip
    assert (cfg.strategy, cfg.speed, cfg.params, cfg.venue.fee, cfg.venue.slippage) == (
        "sma_cross", 0.5, {"fast": "7", "slow": 20}, 0.002, 0.0,
    )  # fmt: skip
    assert cfg.journal == Path("j.jsonl") and cfg.start == 1583712000000  # a flag's path: from the working directory


def test_unknown_keys_are_refused_with_the_keys_that_exist(tmp_path: Path) -> None:
    msg = refused(write(tmp_path, 'stratgy = "sma_cross"\n'))
    assert msg.startswith(f"{tmp_path / 'run.toml'}: unknown key 'stratgy'; fix: remove it or use one of: mode, strategy")
    msg = refused(write(tmp_path, "[venue]\nfees = 0.1\n"))
    assert "unknown key 'venue.fees'; fix: remove it or use one of: kind, exchange, testnet, fee, slippage" in msg
    msg = refused(write(tmp_path, "[risk]\nmax_dail_loss = 0.1\n"))
    assert "risk.max_dail_loss: unknown key; fix: remove it or use one of: max_daily_loss," in msg


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('mode = "dance"\n', "mode = 'dance': unknown mode 'dance'; use one of: backtest, replay, paper, testnet, live"),
        ("speed = 500\n", "speed = 500: replay speed 500 is out of range; use 0 (as fast as possible) or 0.1 to 100"),
        ("[venue]\nfee = -0.1\n", "venue.fee = -0.1: input should be greater than or equal to 0"),
        ('[venue]\nkind = "paper"\n', "venue.kind = 'paper': use one of 'simulated' or 'ccxt'"),
        ("capital = 0\n", "capital = 0: input should be greater than 0"),
        ('start = "yesterday"\n', "start = 'yesterday': use a date like 2024-03-01, 2024-03-01T12:00 (UTC) or epoch ms"),
        ('trades_out = "t.txt"\n', "unsupported trade export format '.txt'; use .csv or .json"),
        ("live_trading_enabled = 3\n", "live_trading_enabled = 3: input should be a valid boolean"),
        ("[risk]\nmax_daily_loss = 2\n", "risk.max_daily_loss: is a fraction in (0, 1) (got 2)"),
        ("[risk]\nmax_drawdown = -1\n", 'risk.max_drawdown: must be a positive number or "off" (got -1)'),
    ],
)
def test_bad_values_name_the_file_the_key_and_the_fix(tmp_path: Path, text: str, expected: str) -> None:
    msg = refused(write(tmp_path, text))
    assert msg.startswith(f"{tmp_path / 'run.toml'}: ") and expected in msg


def test_a_bad_flag_names_the_flag(tmp_path: Path) -> None:
    assert refused(None, {"speed": 500.0}).startswith("--speed: speed = 500.0: replay speed 500 is out of range")
    assert refused(write(tmp_path, ""), {"venue.fee": -1.0}).startswith("--fee: venue.fee = -1.0:")


def test_unreadable_files(tmp_path: Path) -> None:
    assert (
        refused(tmp_path / "nope.toml")
        == f"{tmp_path / 'nope.toml'}: run configuration not found; fix: check the path given to --config"
    )
    msg = refused(write(tmp_path, 'mode = "replay\n'))
    assert msg.startswith(f"{tmp_path / 'run.toml'}: line 1, column ") and "not valid TOML" in msg


def test_the_example_file_loads() -> None:
    cfg = load_run_config(REPO / "docs" / "examples" / "run.toml")
    assert isinstance(cfg, RunConfig) and cfg.mode == "replay" and cfg.strategy == "sma_cross"
    assert cfg.input is not None and cfg.input.parts[-3:] == ("data", "binance", "BTCUSDT-1h-2018-2026.parquet")
    assert cfg.risk_config() == RiskConfig(max_daily_loss=0.02, max_drawdown=0.1, unusual_market_threshold=None,
                                           regime_break_threshold=None)  # fmt: skip
