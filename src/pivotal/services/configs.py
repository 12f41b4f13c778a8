"""Use case: the trained configurations a parameter search stored (``pivotal configs``, later the HTTP API).

Plain functions over settings; they return values and raise ``UserInputError`` with one-line messages. Printing is
the caller's business.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pivotal.config import Settings
from pivotal.core.errors import UserInputError
from pivotal.data.backends import open_store
from pivotal.optimize.configs import ConfigurationRepository, TrainedConfiguration, export_template


def list_configurations(settings: Settings, job_id: str | None = None, strategy: str | None = None) -> list[TrainedConfiguration]:
    """Every stored configuration (of one job / strategy when given), by exchange, pair, timeframe, id."""
    store = open_store(settings)
    try:
        return ConfigurationRepository(store).list(job_id=job_id, strategy=strategy)
    finally:
        store.close()


def get_configuration(settings: Settings, config_id: str) -> TrainedConfiguration:
    """One configuration; ``UserInputError`` naming it when absent."""
    store = open_store(settings)
    try:
        config = ConfigurationRepository(store).get(config_id)
    finally:
        store.close()
    if config is None:
        raise UserInputError(f"no trained configuration {config_id!r}; see `pivotal configs list`")
    return config


def configuration_template(settings: Settings, config_id: str) -> dict[str, Any]:
    """The live-trading JSON template of one configuration (parameters, metrics, significance, circuit breakers)."""
    return export_template(get_configuration(settings, config_id))


def export_configuration(settings: Settings, config_id: str, out: Path) -> Path:
    """Write the template of ``config_id`` to ``out`` atomically (never a half-written template); returns ``out``."""
    template = configuration_template(settings, config_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(template, indent=2, allow_nan=False) + "\n")
    tmp.replace(out)
    return out
