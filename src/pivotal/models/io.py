"""Standard model input/output, re-exported for model code (defined in ``pivotal.features.model_io``; ``ACTIONS`` and
``Action`` are ``pivotal.core.vocabulary``'s)."""

from pivotal.features.model_io import (
    ACTIONS,
    Action,
    BaseDataInput,
    ModelOutput,
    PivotPrediction,
    ShapeError,
    WindowKey,
    check_shape,
)

__all__ = [
    "ACTIONS",
    "Action",
    "BaseDataInput",
    "ModelOutput",
    "PivotPrediction",
    "ShapeError",
    "WindowKey",
    "check_shape",
]
