"""`pivotal optimize` (strategy research)."""

from __future__ import annotations

from pivotal.cli.common import fail


def optimize() -> None:
    """Not built yet: arrives with the strategy-research issue."""
    raise fail("'pivotal optimize' is not built yet (strategy-research issue).")
