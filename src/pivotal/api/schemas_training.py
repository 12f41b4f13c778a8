"""Pydantic models of the routes that train on annotations and replay models against them (``api.training_routes``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pivotal.api.schemas import TIMEFRAME_PATTERN

MODEL_REF = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*(/[A-Za-z0-9_.\-]+)?$"  # NAME or NAME/ID, never a path
MODEL_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$"


class AnnotationSelect(BaseModel):
    """Which manual annotations (each field empty = any): ``start <= entry_ts < end``."""

    model_config = ConfigDict(extra="forbid")
    symbol: str | None = Field(None, min_length=1, max_length=50)
    timeframe: str | None = Field(None, pattern=TIMEFRAME_PATTERN)
    tag: str | None = Field(None, min_length=1, max_length=100)
    start: int | None = Field(None, ge=0, description="epoch ms")
    end: int | None = Field(None, ge=0, description="epoch ms")


class TrainingJobIn(BaseModel):
    """Train ``model`` on the annotations: from its best checkpoint (or ``NAME/ID``), or a fresh ``kind`` model."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(..., pattern=MODEL_REF, max_length=120, description="checkpoint NAME or NAME/ID; with fresh: the new name")
    kind: Literal["cnn", "transformer"] = "cnn"
    fresh: bool = Field(False, description="train a new model instead of continuing a checkpoint")
    save_as: str | None = Field(None, pattern=MODEL_NAME, max_length=120, description="save the result under this name")
    exchange: str | None = Field(None, min_length=1, max_length=50)
    timeframes: list[str] | None = Field(
        None, min_length=1, max_length=6, description="fresh models: input windows, finest first (default: the annotations')"
    )
    window: int = Field(100, ge=2, le=1000, description="fresh models: bars per window")
    annotations: AnnotationSelect | None = Field(None, description="which manual annotations (default: all)")
    epochs: int = Field(5, ge=1, le=1000)
    batch_size: int = Field(32, ge=1, le=1024)
    steps_per_epoch: int | None = Field(None, ge=1, le=100_000)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    threads: int = Field(1, ge=1, le=64)


class TrainingJobOut(BaseModel):
    id: str
    status: Literal["queued", "running", "done", "failed", "stopped"]
    model: str
    kind: str
    fresh: bool
    parent: str | None
    step: int
    total_steps: int
    epoch: int
    epochs: int
    loss: float | None
    val_loss: float | None
    samples: int
    data: dict[str, Any] | None
    history: list[dict[str, float]]
    checkpoint: str | None
    error: str | None
    created_ms: int
    finished_ms: int | None


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str = Field(..., pattern=MODEL_REF, max_length=120)
    exchange: str | None = Field(None, min_length=1, max_length=50)
    symbol: str = Field(..., min_length=1, max_length=50)
    timeframe: str = Field(..., pattern=TIMEFRAME_PATTERN)
    start: int = Field(..., ge=0, description="epoch ms, inclusive (bar open times)")
    end: int = Field(..., ge=0, description="epoch ms, exclusive")
    speed: Literal[1, 2, 5, 10] = 1


class SpeedIn(BaseModel):
    speed: Literal[1, 2, 5, 10]


class ReplayOut(BaseModel):
    id: str
    status: Literal["computing", "playing", "paused", "completed", "stopped", "failed"]
    model: str
    checkpoint: str | None
    exchange: str
    symbol: str
    timeframe: str
    start: int
    end: int
    speed: int
    played: int
    total: int
    error: str | None
    created_ms: int


class ClassMetrics(BaseModel):
    precision: float | None
    recall: float | None
    f1: float | None
    support: int


class MetricsOut(BaseModel):
    n: int
    accuracy: float | None
    per_class: dict[str, ClassMetrics]
    macro_precision: float | None
    macro_recall: float | None
    macro_f1: float | None
    labels: list[str]
    confusion_matrix: list[list[int]] = Field(..., description="rows: annotated target, columns: predicted (labels order)")


class PredictionOut(BaseModel):
    ts_ms: int
    as_of: int
    timeframe: str
    close: float
    truth: str
    action: str | None
    confidence: float | None
    probabilities: dict[str, float] | None
    reason: str | None


class ReplayResultOut(ReplayOut):
    predictions: list[PredictionOut]
    metrics: MetricsOut
