"""One settings object: defaults < TOML config file < environment (``PIVOTAL_*``).

Secrets (exchange API keys) are read from the environment only and never written anywhere: a key in the config file
is refused. The PostgreSQL DSN is a ``SecretDsn``: its password is masked in reprs, logs and error messages, and
only ``settings.postgres_dsn.get_secret_value()`` (where a connection is opened) sees it.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from pivotal.core.errors import UserInputError

# Settings that must come from the environment only (the README promises it; a config file gets copied and shared).
ENV_ONLY = ("exchange_api_key", "exchange_api_secret")
DATA_DIR_MODE = 0o700


def mask_dsn(dsn: str) -> str:
    """A DSN with its password replaced by ``***`` (URL form ``scheme://user:***@host/db``, or ``password=***``)."""
    if "://" not in dsn:
        return " ".join("password=***" if part.lower().startswith("password=") else part for part in dsn.split())
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return "***"
    if parts.password is None:
        return dsn
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


class SecretDsn(SecretStr):
    """A DSN whose password never shows: ``str``/``repr`` (and so logs, tracebacks, ``Settings()``) print it masked."""

    def _display(self) -> str:
        return mask_dsn(self.get_secret_value())


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "pivotal"


def config_file_path() -> Path:
    """The TOML config file: ``PIVOTAL_CONFIG`` or ``~/.config/pivotal/config.toml``."""
    explicit = os.environ.get("PIVOTAL_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "pivotal" / "config.toml"


class Settings(BaseSettings):
    """Runtime configuration. Precedence: init kwargs > env > TOML file > defaults."""

    model_config = SettingsConfigDict(env_prefix="PIVOTAL_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    store: Literal["duckdb", "postgres"] = "duckdb"
    duckdb_file: str = "pivotal.duckdb"
    postgres_dsn: SecretDsn = SecretDsn("postgresql://postgres@127.0.0.1:5432/test")
    postgres_schema: str = "pivotal"
    reference_symbol: str = "BTC/USDT"
    default_exchange: str = "binance"
    log_level: str = "INFO"
    live_trading_enabled: bool = False
    # Secrets: env only (PIVOTAL_EXCHANGE_API_KEY / PIVOTAL_EXCHANGE_API_SECRET); never logged or persisted.
    exchange_api_key: SecretStr | None = None
    exchange_api_secret: SecretStr | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = _NoSecretsToml(settings_cls, toml_file=config_file_path())
        return (init_settings, env_settings, toml)

    def __init__(self, **values: Any) -> None:
        """As ``BaseSettings``, but a bad value (an unknown ``--store``, a typo in the config file) is one
        ``UserInputError`` line naming the setting, where it can come from, and the values it accepts."""
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise UserInputError(_describe(exc)) from None

    @property
    def duckdb_path(self) -> Path:
        return self.data_dir / self.duckdb_file

    def ensure_dirs(self) -> None:
        """Create the data directory owner-only (0700): it holds the store, jobs and models."""
        self.data_dir.mkdir(mode=DATA_DIR_MODE, parents=True, exist_ok=True)


class _NoSecretsToml(TomlConfigSettingsSource):
    """The TOML file source, refusing API keys: they are read from the environment only."""

    def __init__(self, settings_cls: type[BaseSettings], toml_file: Path) -> None:
        self.path = toml_file
        try:
            super().__init__(settings_cls, toml_file=toml_file)
        except tomllib.TOMLDecodeError as exc:
            raise UserInputError(toml_error(toml_file, exc)) from None
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise UserInputError(
                f"{toml_file}: cannot read the config file ({why}); fix: repair it or set PIVOTAL_CONFIG"
            ) from None

    def __call__(self) -> dict[str, Any]:
        found = [key for key in ENV_ONLY if key in self.toml_data]
        if found:
            env = ", ".join(f"PIVOTAL_{key.upper()}" for key in found)
            raise UserInputError(
                f"{self.path}: {', '.join(found)} must not be in the config file (keys are read from the environment "
                f"only); fix: remove it from the file and set {env}"
            )
        return super().__call__()


def toml_error(path: Path, exc: tomllib.TOMLDecodeError) -> str:
    """One line: the file, the line and column of a TOML syntax error, and the fix."""
    text = str(exc)
    found = re.search(r"\(at line (\d+), column (\d+)\)", text)
    what = re.sub(r"\s*\(at (?:line \d+, column \d+|end of document)\)", "", text)
    if found:
        where = f"line {found[1]}, column {found[2]}"
    else:  # "(at end of document)": an unclosed bracket, string or table; the last line is where it shows
        try:
            where = f"line {max(1, len(path.read_text(encoding='utf-8').splitlines()))} (end of file)"
        except (OSError, UnicodeDecodeError):
            where = "end of file"
    return f'{path}: {where}: not valid TOML ({what}); fix: correct that line (settings look like: store = "duckdb")'


def _describe(exc: ValidationError) -> str:
    """The first invalid setting as one line: name, value (never a secret's), sources, what is accepted."""
    error = exc.errors()[0]
    name = ".".join(str(part) for part in error["loc"]) or "settings"
    field = Settings.model_fields.get(name)
    is_secret = any(word in name for word in ("dsn", "secret", "key"))
    value = "" if is_secret or "input" not in error else f" {error['input']!r}"
    accepted = _accepted(field.annotation) if field is not None else None
    fix = f"use one of {'|'.join(accepted)}" if accepted else error["msg"][:1].lower() + error["msg"][1:]
    flag = f"{_FLAGS[name]}, " if name in _FLAGS else ""
    sources = f"{flag}PIVOTAL_{name.upper()} or {config_file_path()}"
    return f"invalid setting {name}{value} (from {sources}): {fix}"


_FLAGS = {"store": "--store", "data_dir": "--data-dir"}  # settings a CLI option can set


def _accepted(annotation: Any) -> list[str] | None:
    """The allowed values of a ``Literal`` setting (``store``: duckdb, postgres)."""
    args = getattr(annotation, "__args__", None)
    if getattr(annotation, "__origin__", None) is Literal and args:
        return [str(a) for a in args]
    return None


def load_settings(**overrides: Any) -> Settings:
    """Settings with CLI overrides applied on top (``None`` values are ignored)."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
