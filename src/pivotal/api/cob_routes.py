"""The order-book (COB) heatmap route: per-second imbalance, resting volume or spread over the stored depth captures
(``services.api_queries.cob_heatmap`` over ``services.cob``); a market without stored depth is a 404 naming the files
to import."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI, Query

from pivotal.api.hub import Hub
from pivotal.config import Settings
from pivotal.services import api_queries


def mount_cob(app: FastAPI, hub: Hub, settings: Settings) -> None:
    """Add ``GET /api/cob/heatmap`` and ``GET /api/cob/available``."""
    del hub  # reads only

    @app.get("/api/cob/available")
    def cob_available(exchange: str, symbol: str) -> dict[str, Any]:
        """Whether depth of the market is stored (``message`` says what to import when not): asked before a heatmap."""
        return api_queries.cob_available(settings, exchange, symbol)

    @app.get("/api/cob/heatmap")
    def cob_heatmap(
        exchange: str, symbol: str,
        start: int | None = Query(None, ge=0, description="epoch ms, inclusive"),
        end: int | None = Query(None, ge=0, description="epoch ms, exclusive"),
        metric: Literal["imbalance", "volume", "spread"] = "imbalance",
        seconds: int = Query(300, ge=1, le=86_400, description="rows: the newest N seconds of the range"),
        buckets: int = Query(10, ge=1, le=20, description="price buckets on each side of the mid"),
    ) -> dict[str, Any]:  # fmt: skip
        """Time × price-bucket matrix (``values[row][bucket]``; ``spread``: one value per row) with each row's
        second (``ts``), the bucket offsets from the mid and each row's lowest bucket price."""
        return api_queries.cob_heatmap(settings, exchange, symbol, start, end, metric, seconds, buckets)
