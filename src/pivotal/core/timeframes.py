"""Supported candle timeframes and their length in milliseconds."""

from __future__ import annotations

TIMEFRAMES: dict[str, int] = {
    "1s": 1_000,
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
    "1w": 604_800_000,
}


def timeframe_ms(timeframe: str) -> int:
    """Length of a timeframe in ms; raises a ValueError listing the valid names."""
    try:
        return TIMEFRAMES[timeframe]
    except KeyError:
        valid = " ".join(TIMEFRAMES)
        raise ValueError(f"unknown timeframe {timeframe!r}; use one of: {valid}") from None


def parse_timeframes(spec: str) -> list[str]:
    """Parse a comma-separated list such as ``"1m,1h"`` and validate every entry."""
    names = [s.strip() for s in spec.split(",") if s.strip()]
    for name in names:
        timeframe_ms(name)
    return names
