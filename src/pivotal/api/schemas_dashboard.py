"""Request bodies of the dashboard's routes (realtime inference, live training, thresholds, optimisation jobs); the
answers are the services' plain values. Validated at the edge: a bad value is a 422 naming the field."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pivotal.api.schemas import TIMEFRAME_PATTERN


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RealtimeStartIn(_Body):
    """``POST /api/realtime-inference/start`` (live-pivot-training.txt): a model checkpoint traded by the server's node
    on the stored series of ``symbol``, learning live from confirmed pivots unless ``enable_live_training`` is false."""

    model_name: str = Field(..., min_length=1, max_length=200, description="a checkpoint: NAME (its best) or NAME/ID")
    symbol: str = Field(..., min_length=1, max_length=50, examples=["BTC/USDT"])
    exchange: str | None = Field(None, min_length=1, max_length=50, description="default: the checkpoint's")
    timeframe: str | None = Field(None, pattern=TIMEFRAME_PATTERN, description="default: the checkpoint's")
    enable_live_training: bool = True
    mode: Literal["replay", "paper"] = Field(
        "replay", description="replay: the stored series; paper: the exchange's live feed, simulated fills"
    )
    exchange_url: str | None = Field(
        None, min_length=1, max_length=200,
        description="paper: the exchange's REST base, e.g. a local `pivotal testexchange serve` (http://127.0.0.1:PORT)",
    )  # fmt: skip
    start: int | None = Field(None, ge=0, description="epoch ms, inclusive (default: the stored series' start)")
    end: int | None = Field(None, ge=0, description="epoch ms, exclusive")
    speed: float = Field(0.0, ge=0, le=100_000, description="0: as fast as possible, else 0.1-100,000 x the bars' pace")
    capital: float = Field(10_000.0, gt=0)
    buy_threshold: float | None = Field(None, ge=0, le=1)
    sell_threshold: float | None = Field(None, ge=0, le=1)
    risk: dict[str, Any] | None = Field(None, description="a [risk] table (RiskConfig keys); absent: no risk engine")


class LiveTrainingIn(_Body):
    enabled: bool


class ThresholdsIn(_Body):
    buy: float = Field(..., ge=0, le=1, description="combined score >= buy: be long")
    sell: float = Field(..., ge=0, le=1, description="combined score <= -sell: be short")


class OptimizeIn(_Body):
    """``POST /api/optimize``: the options of ``pivotal optimize`` (``services.optimize.build_spec``)."""

    strategy: str = Field("liquidity_sweep", min_length=1, max_length=100)
    exchange: str = Field("binance", min_length=1, max_length=50)
    symbols: list[str] = Field(default_factory=lambda: ["BTC/USDT"], min_length=1, max_length=20)
    timeframes: list[str] = Field(default_factory=lambda: ["1h"], min_length=1, max_length=10)
    method: str = Field("random", description="random, grid or bayesian")
    samples: int = Field(100, ge=1, le=100_000)
    sampler: str = "tpe"
    walk_forward: str | None = Field("90/7/30", description="TRAIN/TEST/STEP in days, or none")
    anchored: bool = False
    embargo: str = "0"
    min_trades: int = Field(30, ge=0)
    metric: str = "NET_PROFIT"
    seed: int = 0
    start: int | None = Field(None, ge=0)
    end: int | None = Field(None, ge=0)
    job_id: str | None = Field(None, min_length=1, max_length=100, description="resume this job (same spec)")


class AnchorOut(BaseModel):
    """A trend line's anchor: a confirmed pivot."""

    index: int = Field(description="bar position in the queried range (0: its first bar)")
    ts: int | None = Field(description="open time of the pivot bar, epoch ms")
    price: float
    confirmed_ts: int | None = Field(description="close time of the bar that confirmed the pivot, epoch ms")


class LinePointOut(BaseModel):
    ts: int = Field(description="open time of the bar, epoch ms")
    price: float = Field(description="the line's value at that bar")


class TrendLineOut(BaseModel):
    """``GET /api/trendlines``: a line through two consecutive same-type pivots of one level (``structure.trendlines``)."""

    label: str = Field(examples=["L2H"])
    level: int
    kind: str = Field(description="H: through highs, L: through lows")
    direction: Literal["up", "down", "flat"]
    anchors: list[AnchorOut] = Field(min_length=2, max_length=2)
    slope: float = Field(description="price change per bar")
    known_index: int = Field(description="the bar at whose close the line became known (the second anchor confirmed)")
    known_ts: int | None = Field(description="when the line became known: the second anchor's confirmation time")
    until_index: int | None = Field(description="the bar at whose close the next same-type pivot replaced it")
    until_ts: int | None = Field(description="when it was replaced; null while it is the current line")
    end: LinePointOut | None = Field(description="where the chart draws it to: the replacing bar or the range's last")
