"""One settings object: defaults < TOML config file < environment (``PIVOTAL_*``).

Secrets (exchange API keys) are read from the environment only and never written anywhere.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


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
    postgres_dsn: str = "postgresql://postgres@127.0.0.1:5432/test"
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
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file_path())
        return (init_settings, env_settings, toml)

    @property
    def duckdb_path(self) -> Path:
        return self.data_dir / self.duckdb_file

    def ensure_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)


def load_settings(**overrides: Any) -> Settings:
    """Settings with CLI overrides applied on top (``None`` values are ignored)."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
