"""`pivotal backtest` (strategy research)."""

from __future__ import annotations

from pivotal.cli.common import fail


def backtest() -> None:
    """Not built yet: arrives with the strategy-research issue."""
    raise fail("'pivotal backtest' is not built yet (strategy-research issue).")
