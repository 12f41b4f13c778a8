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
        ("speed = 500000\n", "speed = 500000: replay speed 500000 is out of range; use 0 (as fast as possible) or 0.1 to 100000"),
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
    assert refused(None, {"speed": 500000.0}).startswith("--speed: speed = 500000.0: replay speed 500000 is out of range")
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


# -- the model strategy: [[models]] and [orchestrator] ------------------------------------------------------------------


def test_models_and_the_orchestrator_table(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
params = { fraction = 0.5 }
[[models]]
name = "cnn"
weight = 2
[[models]]
name = "transformer/20240101T000000"
[orchestrator]
buy_threshold = 0.3
min_confidence = 0.4
learn_weights = true
abstain = "keep"
""",
    )
    cfg = load_run_config(path)
    assert cfg.strategy == "model"  # implied by [[models]]
    models, orchestrator, keep = cfg.model_tables()
    assert models == [{"name": "cnn", "weight": 2.0}, {"name": "transformer/20240101T000000"}]
    assert orchestrator == {"buy_threshold": 0.3, "min_confidence": 0.4, "learn_weights": True} and keep is True
    assert cfg.params == {"fraction": 0.5}


def test_flags_override_the_models_and_the_orchestrator(tmp_path: Path) -> None:
    path = write(tmp_path, '[[models]]\nname = "cnn"\nweight = 2\n[orchestrator]\nbuy_threshold = 0.3\nsell_threshold = 0.1\n')
    cfg = load_run_config(path, {"params": {"buy_threshold": "0.05", "keep_on_abstain": "true", "models": "cnn,dqn"}})
    models, orchestrator, keep = cfg.model_tables()
    assert models == [{"name": "cnn", "weight": 2.0}, {"name": "dqn"}]  # a named model keeps its weight
    assert orchestrator == {"buy_threshold": 0.05, "sell_threshold": 0.1} and keep is True
    cfg = load_run_config(path, {"models": [{"name": "tiny"}]})  # --models
    assert [m.name for m in cfg.models] == ["tiny"]
    cfg = load_run_config(None, {"strategy": "model", "params": {"models": "cnn"}})  # --strategy model -p models=cnn
    assert cfg.model_tables()[0] == [{"name": "cnn"}]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('strategy = "model"\n', 'models: strategy "model" trades checkpoints; fix: add a [[models]] entry with name = "cnn"'),
        (
            'strategy = "sma_cross"\n[[models]]\nname = "cnn"\n',
            "models: [[models]] and [orchestrator] configure strategy = \"model\" (got strategy = 'sma_cross'); fix: set",
        ),
        ('strategy = "sma_cross"\n[orchestrator]\nabstain = "keep"\n', "orchestrator: [[models]] and [orchestrator] configure"),
        (
            '[[models]]\nname = "cnn"\n[orchestrator]\nbuy_threshold = 3\n',
            "orchestrator.buy_threshold = 3: input should be less than or equal to 1",
        ),
        (
            '[[models]]\nname = "cnn"\n[orchestrator]\nvote = "majority"\n',
            "orchestrator.vote = 'majority': use one of 'direction' or 'action'",
        ),
        (
            '[[models]]\nname = "cnn"\n[orchestrator]\nabstain = "maybe"\n',
            "orchestrator.abstain = 'maybe': use one of 'flat' or 'keep'",
        ),
        ('[[models]]\nname = "cnn"\nweight = -1\n', "models.0.weight = -1: input should be greater than or equal to 0"),
        ("[[models]]\nweight = 1\n", "models.0.name: missing; fix: add name = ..."),
        (
            '[[models]]\nname = "cnn"\n[[models]]\nname = "cnn"\n',
            "models: ['cnn', 'cnn'] names a checkpoint twice; fix: list each model once",
        ),
    ],
)
def test_bad_model_tables_name_the_key_and_the_fix(tmp_path: Path, text: str, expected: str) -> None:
    msg = refused(write(tmp_path, text))
    assert msg.startswith(f"{tmp_path / 'run.toml'}: ") and expected in msg, msg


def test_unknown_orchestrator_and_model_keys_list_the_valid_ones(tmp_path: Path) -> None:
    msg = refused(write(tmp_path, '[[models]]\nname = "cnn"\n[orchestrator]\nbuy_treshold = 0.1\n'))
    assert "unknown key 'orchestrator.buy_treshold'; fix: remove it or use one of: buy_threshold, sell_threshold," in msg
    msg = refused(write(tmp_path, '[[models]]\nname = "cnn"\nckpt = "x"\n'))
    assert "unknown key 'models.0.ckpt'; fix: remove it or use one of: name, weight" in msg
    assert refused(None, {"strategy": "model", "params": {"models": "cnn", "buy_threshold": "5"}}).startswith(
        "--param: orchestrator.buy_threshold = '5': input should be less than or equal to 1"
    )


# -- several symbols --------------------------------------------------------------------------------------------------


def test_several_symbols_with_one_timeframe_or_one_each(tmp_path: Path) -> None:
    cfg = load_run_config(write(tmp_path, 'symbols = ["BTC/USDT", "ETH/USDT"]\ntimeframes = ["1h"]\n'))
    assert cfg.markets() == [("BTC/USDT", "1h"), ("ETH/USDT", "1h")]
    cfg = load_run_config(write(tmp_path, 'symbols = ["BTC/USDT", "ETH/USDT"]\ntimeframes = ["1h", "4h"]\n'))
    assert cfg.markets() == [("BTC/USDT", "1h"), ("ETH/USDT", "4h")]
    msg = refused(write(tmp_path, 'symbols = ["BTC/USDT", "ETH/USDT"]\ntimeframes = ["1h", "4h", "1d"]\n'))
    assert "timeframes: ['1h', '4h', '1d'] for symbols ['BTC/USDT', 'ETH/USDT']; fix: give one timeframe for every" in msg
    msg = refused(write(tmp_path, 'symbols = ["BTC/USDT", "BTC/USDT"]\n'))
    assert "symbols: ['BTC/USDT', 'BTC/USDT'] names a symbol twice; fix: list each symbol once" in msg
    msg = refused(write(tmp_path, 'symbols = ["BTC/USDT", "ETH/USDT"]\ninput = "x.csv"\n'))
    assert "input: a candle file holds one symbol; fix: leave input out to run the stored series of each symbol" in msg


def test_the_demo_files_load() -> None:
    rule = load_run_config(REPO / "docs" / "examples" / "demo.toml")
    assert (rule.strategy, rule.markets(), rule.mode) == ("sma_cross", [("BTC/USDT", "1h"), ("ETH/USDT", "1h")], "replay")
    assert rule.out == REPO / "pivotal-out" / "demo" / "sma_cross" and rule.risk_config() is not None
    model = load_run_config(REPO / "docs" / "examples" / "demo-model.toml")
    assert model.strategy == "model" and model.model_tables()[0] == [{"name": "demo-cnn"}]
    assert model.out == REPO / "pivotal-out" / "demo" / "model" and model.risk_config() is not None
