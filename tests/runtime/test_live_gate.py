"""The live-trading gate: all three of the configuration's consent, the keys in the environment and a typed
confirmation (or --yes) — every combination of the pure function, then the command: each missing item one error
line, exit 2, and with all three present the run goes on (here it stops at its missing market: no network call)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pivotal.cli.main import app
from pivotal.services.run import LIVE_KEY_ENV, live_gate

pytestmark = pytest.mark.unit

KEYS = {"PIVOTAL_EXCHANGE_API_KEY": "k", "PIVOTAL_EXCHANGE_API_SECRET": "s"}


@pytest.mark.parametrize(("enabled", "keys", "confirmed"), list(itertools.product([True, False], repeat=3)))
def test_every_combination_names_exactly_what_is_missing(enabled: bool, keys: bool, confirmed: bool) -> None:
    missing = live_gate(
        enabled=enabled, env=KEYS if keys else {}, exchange="binance", typed="binance" if confirmed else None, yes=False
    )
    expected = [not enabled, not keys, not confirmed]
    assert len(missing) == sum(expected)
    words = iter(missing)
    if not enabled:
        assert next(words).startswith("live_trading_enabled is not true in the run configuration; fix: add")
    if not keys:
        line = next(words)
        assert "PIVOTAL_EXCHANGE_API_KEY, PIVOTAL_EXCHANGE_API_SECRET" in line and "never in a file" in line
    if not confirmed:
        assert next(words) == "no confirmation; fix: type the exchange name (binance) when asked on a terminal, or pass --yes"
    assert all("\n" not in line for line in missing)


def test_yes_confirms_and_the_typed_name_must_match() -> None:
    base = {"enabled": True, "env": KEYS, "exchange": "binance"}
    assert live_gate(**base, typed=None, yes=True) == []
    assert live_gate(**base, typed="  Binance ", yes=False) == []  # case and spaces do not matter
    assert live_gate(**base, typed="bybit", yes=False) == [
        "the confirmation 'bybit' is not the exchange name 'binance'; fix: type it exactly, or pass --yes"
    ]
    assert live_gate(**{**base, "exchange": ""}, typed="binance", yes=False) != []  # no exchange: nothing to confirm


@pytest.mark.parametrize("absent", LIVE_KEY_ENV)
def test_one_key_missing_or_blank_is_named(absent: str) -> None:
    for value in (None, "  "):
        env = {k: v for k, v in KEYS.items() if k != absent} | ({} if value is None else {absent: value})
        (line,) = live_gate(enabled=True, env=env, exchange="binance", typed=None, yes=True)
        assert f"({absent})" in line


runner = CliRunner()


def invoke(args: list[str], env: dict[str, str] | None = None, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, args, env=env, input=stdin)
    return result.exit_code, result.output


def config(tmp_path: Path, enabled: bool) -> str:
    path = tmp_path / "live.toml"
    path.write_text(f'mode = "live"\nstrategy = "sma_cross"\nlive_trading_enabled = {str(enabled).lower()}\n'
                    '[venue]\nkind = "ccxt"\nexchange = "binance"\n')  # fmt: skip
    return str(path)


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in LIVE_KEY_ENV:
        monkeypatch.delenv(name, raising=False)


def test_cli_refuses_with_one_line_per_missing_item(tmp_path: Path, no_keys: None) -> None:
    code, out = invoke(["run", "--config", config(tmp_path, False)])
    lines = [line for line in out.splitlines() if line.startswith("error: live trading refused: ")]
    assert code == 2 and len(lines) == 3, out
    assert "live_trading_enabled" in lines[0] and "PIVOTAL_EXCHANGE_API_KEY" in lines[1] and "no confirmation" in lines[2]
    assert "not built yet" not in out  # past the gate, live runs as testnet does (without the sandbox)
    code, out = invoke(["run", "--config", config(tmp_path, True), "--yes"])
    assert code == 2 and out.count("error: live trading refused: ") == 1 and "PIVOTAL_EXCHANGE_API_SECRET" in out


def test_cli_asks_for_the_exchange_name_once_the_rest_is_there(tmp_path: Path, no_keys: None) -> None:
    code, out = invoke(["run", "--config", config(tmp_path, True)], env=KEYS, stdin="bybit\n")
    assert code == 2 and "type the exchange name to confirm" in out
    assert "error: live trading refused: the confirmation 'bybit' is not the exchange name 'binance'" in out
    code, out = invoke(["run", "--config", config(tmp_path, True)], env=KEYS, stdin="")
    assert code == 2 and "error: live trading refused: no confirmation" in out
    for args, stdin in (([], "binance\n"), (["--yes"], None)):  # the gate passes: the run goes on (no network here:
        code, out = invoke(["run", "--config", config(tmp_path, True), *args], env=KEYS, stdin=stdin)  # no market named)
        assert code == 1 and "refused" not in out
        assert "--mode live needs an exchange, a symbol and a timeframe" in " ".join(out.split())
