"""`pivotal train` and `pivotal predict` (models)."""

from __future__ import annotations

from pivotal.cli.common import fail


def train() -> None:
    """Not built yet: arrives with the models issue."""
    raise fail("'pivotal train' is not built yet (models issue).")


def predict() -> None:
    """Not built yet: arrives with the models issue."""
    raise fail("'pivotal predict' is not built yet (models issue).")
