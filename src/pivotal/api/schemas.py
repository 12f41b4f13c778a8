"""Pydantic models of the API's requests and responses (they make /openapi.json)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pivotal.core.timeframes import TIMEFRAMES

TIMEFRAME_PATTERN = "^(" + "|".join(TIMEFRAMES) + ")$"


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None
    timestamp: str
    suggestions: list[str]


class ErrorBody(BaseModel):
    success: Literal[False] = False
    error: ErrorDetail


class SeriesOut(BaseModel):
    exchange: str
    symbol: str
    timeframe: str
    first_ts: int
    last_ts: int
    rows: int
    missing_bars: int
    gaps: int


class GapOut(BaseModel):
    start: int
    end: int
    missing: int


class CoverageOut(BaseModel):
    series: SeriesOut
    gaps: list[GapOut]


class CandlesOut(BaseModel):
    exchange: str
    symbol: str
    timeframe: str
    ts: list[int]
    open: list[float]
    high: list[float]
    low: list[float]
    close: list[float]
    volume: list[float]
    group: int = Field(description="stored bars merged into one candle (1: as stored)")
    next_start: int | None = Field(description="start of the next page; null when this page reaches the end")


class PivotOut(BaseModel):
    label: str
    level: int
    kind: str
    price: float
    ts: int | None = Field(description="open time of the pivot bar, epoch ms")
    confirmed_ts: int | None = Field(description="close time of the confirming bar: when the pivot became known")


class ConfigurationOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str


class ModelOut(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())
    name: str
    id: str
    model_type: str
    metric_name: str
    metric: float
    created: str


class ModelDetailOut(ModelOut):
    online: dict[str, Any] | None = Field(None, description="serving version, staleness per symbol, promotions")


# Epoch milliseconds up to the year 9999: beyond it no store or datetime can hold the time (DuckDB refused it as a 500).
MAX_TS_MS = 253_402_300_799_999


class AnnotationIn(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    symbol: str
    timeframe: str = Field(pattern=TIMEFRAME_PATTERN)
    entry_ts: int = Field(ge=0, le=MAX_TS_MS, description="epoch ms of the entry bar's open")
    entry_price: float = Field(gt=0, allow_inf_nan=False)
    exit_ts: int | None = Field(None, ge=0, le=MAX_TS_MS)
    exit_price: float | None = Field(None, gt=0, allow_inf_nan=False)
    direction: Literal["LONG", "SHORT"] | None = None
    notes: str = ""
    tags: list[str] = []
    details: dict[str, Any] = {}


class AnnotationPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    expected_version: int | None = Field(None, description="optimistic locking: refuse when the stored version differs")
    symbol: str | None = None
    timeframe: str | None = None
    entry_ts: int | None = Field(None, ge=0, le=MAX_TS_MS)
    entry_price: float | None = Field(None, gt=0, allow_inf_nan=False)
    exit_ts: int | None = Field(None, ge=0, le=MAX_TS_MS)
    exit_price: float | None = Field(None, gt=0, allow_inf_nan=False)
    direction: Literal["LONG", "SHORT"] | None = None
    notes: str | None = None
    tags: list[str] | None = None
    details: dict[str, Any] | None = None


class AnnotationOut(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())
    id: str
    source: str
    symbol: str
    timeframe: str
    entry_ts: int
    entry_price: float
    notes: str
    tags: list[str]
    version: int


class BacktestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    exchange: str
    symbol: str
    timeframe: str = Field(pattern=TIMEFRAME_PATTERN)
    strategy: str = "liquidity_sweep"
    params: dict[str, Any] = {}
    start: int | None = None
    end: int | None = None
    fee_rate: float = Field(0.001, ge=0, le=0.1)
    slippage: float = Field(0.0005, ge=0, le=0.1)
    capital: float = Field(10_000.0, gt=0, le=1e12)


class JobOut(BaseModel):
    id: str
    kind: str
    status: Literal["queued", "running", "done", "failed"]
    request: dict[str, Any]
    created_ms: int
    finished_ms: int | None
    error: str | None


class JobResultOut(JobOut):
    result: dict[str, Any] | None


class RiskStateOut(BaseModel):
    audit: str
    active_trips: list[dict[str, Any]]
    trips: int
    resets: int
    entries: list[dict[str, Any]]


class PublishIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["candle", "pivot", "prediction", "decision", "order", "fill", "position", "breaker", "training"]
    payload: dict[str, Any] = {}


class PublishedOut(BaseModel):
    seq: int


class PromoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str = Field(min_length=1, description="checkpoint id to serve (see GET /api/models?name=NAME)")
    reason: str = "manual promotion (API)"


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = "manual rollback (API)"


class PromotionOut(BaseModel):
    name: str
    action: str
    version: str
    previous: str | None
    at_ms: int
    reason: str
    by: str
