"""Issue #9: a malformed ``config.toml`` or an unknown store is one line naming the file/line or the setting, never a
traceback (Settings, and every CLI command through ``settings_from``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pivotal.config import Settings, load_settings
from pivotal.core.errors import UserInputError

pytestmark = pytest.mark.unit


def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    monkeypatch.setenv("PIVOTAL_CONFIG", str(path))
    return path


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ('store = "duckdb"\nstore_x = duckdb\n', "line 2, column 11", "Invalid value"),
        ("[paths\n", "line 1, column 7", "Expected ']' at the end of a table declaration"),
        ('store = "duckdb"\ndata_dir = [1,\n', "line 2 (end of file)", "Invalid value"),
    ],
    ids=["bare-word", "unclosed-table", "unclosed-array"],
)
def test_malformed_toml_names_the_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, where: str, what: str
) -> None:
    path = config(tmp_path, monkeypatch, text)
    with pytest.raises(UserInputError) as info:
        Settings()
    assert (
        str(info.value)
        == f'{path}: {where}: not valid TOML ({what}); fix: correct that line (settings look like: store = "duckdb")'
    )


def test_an_unknown_store_lists_the_backends_wherever_it_comes_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = config(tmp_path, monkeypatch, 'store = "mysql"\n')
    expected = f"invalid setting store 'mysql' (from --store, PIVOTAL_STORE or {path}): use one of duckdb|postgres"
    with pytest.raises(UserInputError) as info:
        Settings()
    assert str(info.value) == expected
    path.write_text("")
    monkeypatch.setenv("PIVOTAL_STORE", "mysql")
    with pytest.raises(UserInputError, match="use one of duckdb\\|postgres"):
        load_settings()
    monkeypatch.delenv("PIVOTAL_STORE")
    with pytest.raises(UserInputError) as info:
        load_settings(store="sqlite")
    assert str(info.value) == expected.replace("'mysql'", "'sqlite'")


def test_a_bad_secret_value_is_named_without_showing_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config(tmp_path, monkeypatch, "")
    with pytest.raises(UserInputError) as info:
        Settings(postgres_dsn=["postgresql://u:hunter2@h/db"])  # pragma: allowlist secret
    assert str(info.value).startswith("invalid setting postgres_dsn (from PIVOTAL_POSTGRES_DSN or")
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize("command", [["data", "info"], ["data", "import", "."], ["models", "list"]])
def test_cli_commands_print_one_line_for_a_malformed_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    from pivotal.cli.main import app

    path = config(tmp_path, monkeypatch, "store = duckdb\n")
    result = CliRunner(env={"COLUMNS": "400"}).invoke(app, command)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert f"{path}: line 1, column 9: not valid TOML (Invalid value)" in result.output
