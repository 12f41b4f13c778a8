"""Market-structure routes beyond ``GET /api/pivots``: the trend lines of a stored series (``GET /api/trendlines``),
thin over ``services.api_queries.trendline_events`` (``structure.trendlines`` on the batch pivots). A running node
pushes the same lines on the WebSocket as they form (``api.runtime_routes``)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Query

from pivotal.api.hub import Hub
from pivotal.api.schemas import TIMEFRAME_PATTERN
from pivotal.api.schemas_dashboard import TrendLineOut
from pivotal.config import Settings
from pivotal.core.timeframes import TIMEFRAMES
from pivotal.services import api_queries


def mount_structure(app: FastAPI, hub: Hub, settings: Settings) -> None:
    """Add ``GET /api/trendlines``."""
    del hub  # reads only

    @app.get("/api/trendlines", response_model=list[TrendLineOut])
    def trendlines(
        exchange: str, symbol: str,
        timeframe: str = Query(..., pattern=TIMEFRAME_PATTERN, description="a timeframe name: " + " ".join(TIMEFRAMES)),
        level: int | None = Query(None, ge=1, le=5, description="pivot level 1-5; absent: every level"),
        start: int | None = Query(None, ge=0, description="epoch ms, inclusive"),
        end: int | None = Query(None, ge=0, description="epoch ms, exclusive"),
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Trend lines through consecutive same-type pivots of a level on the bars of ``[start, end)``, in the order
        they became known, each with its two anchor pivots, slope per bar, ``known_ts`` (the second anchor's
        confirmation) and ``until_ts`` (when the next same-type pivot replaced it)."""
        return api_queries.trendline_events(settings, exchange, symbol, timeframe, level, start, end)
