"""Where bars of a timeframe start: every timeframe is aligned to the Unix epoch, except ``1w``.

Binance (and ccxt) weekly bars open on Monday 00:00 UTC; the epoch (1970-01-01) was a Thursday, so weeks are
anchored four days later. Validation, gap detection and resampling all use this one definition.
"""

from __future__ import annotations

import numpy as np

from pivotal.core.timeframes import timeframe_ms

WEEK_ORIGIN_MS = 4 * 86_400_000  # 1970-01-05, the first Monday after the epoch


def timeframe_origin(timeframe: str) -> int:
    """Epoch-ms offset of the bar grid of ``timeframe``."""
    return WEEK_ORIGIN_MS if timeframe == "1w" else 0


def is_aligned(ts: np.ndarray, timeframe: str) -> np.ndarray:
    """Boolean mask: which open times sit on the grid of ``timeframe``."""
    return (ts - timeframe_origin(timeframe)) % timeframe_ms(timeframe) == 0


def bucket_start(ts: np.ndarray, timeframe: str) -> np.ndarray:
    """Open time of the ``timeframe`` bar containing each timestamp (floor onto the grid)."""
    origin = timeframe_origin(timeframe)
    step = timeframe_ms(timeframe)
    return (ts - origin) // step * step + origin
