"""ModelOutput / BaseDataInput value types: JSON round trips, validation messages, shape errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pivotal.data.candles import Candles
from pivotal.models.io import BaseDataInput, ModelOutput, PivotPrediction, ShapeError, check_shape

PROBS = {"BUY": 0.6, "SELL": 0.1, "HOLD": 0.3}


def output(**changes: object) -> ModelOutput:
    fields: dict[str, object] = {
        "model_type": "cnn",
        "model_name": "cnn_small",
        "symbol": "ETH/USDT",
        "timestamp": 1_735_689_600_000,
        "confidence": 0.6,
        "action": "BUY",
        "action_probabilities": PROBS,
        "direction_vector": 0.4,
        "direction_confidence": 0.7,
        "pivots": (PivotPrediction(1, "H", 0.0021, 3.5, 0.8), PivotPrediction(2, "L", -0.011, 17.0, 0.4)),
        "hidden_states": {"conv": np.arange(6, dtype=np.float32).reshape(2, 3), "gru": np.array([0.5, -1.25])},
        "metadata": {"checkpoint": "epoch-3", "data_span": [1, 2]},
    }
    fields.update(changes)
    return ModelOutput(**fields)  # type: ignore[arg-type]


def test_json_round_trip_without_hidden_states() -> None:
    original = output()
    text = original.to_json()
    assert "hidden_states" not in json.loads(text)
    back = ModelOutput.from_json(text)
    assert back == original  # hidden states are excluded from equality
    assert back.hidden_states is None
    assert back.pivots[1] == PivotPrediction(2, "L", -0.011, 17.0, 0.4)


def test_json_round_trip_with_hidden_states_is_bit_exact() -> None:
    original = output()
    back = ModelOutput.from_json(original.to_json(include_hidden=True))
    assert back.hidden_states is not None and original.hidden_states is not None
    for name, array in original.hidden_states.items():
        assert back.hidden_states[name].dtype == array.dtype
        assert np.array_equal(back.hidden_states[name], array)


def test_predictions_dict_has_the_design_fields() -> None:
    predictions = output().predictions
    assert predictions["action"] == "BUY" and predictions["action_confidence"] == 0.6
    assert predictions["probabilities"] == PROBS
    assert predictions["direction_vector"] == 0.4 and predictions["direction_confidence"] == 0.7
    assert predictions["pivot_points"][0] == {
        "level": 1,
        "kind": "H",
        "price_offset": 0.0021,
        "bars_until": 3.5,
        "confidence": 0.8,
    }


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"action": "LONG"}, "action must be one of"),
        ({"confidence": 1.2}, r"ModelOutput.confidence must be in \[0, 1\] \(got 1.2\)"),
        ({"direction_vector": -1.5}, r"direction_vector must be in \[-1, 1\]"),
        ({"action_probabilities": {"BUY": 0.5, "SELL": 0.5}}, "needs exactly the keys"),
        ({"action_probabilities": {"BUY": 0.5, "SELL": 0.4, "HOLD": 0.3}}, "sum to 1"),
    ],
)
def test_invalid_outputs_are_refused_with_the_field_named(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        output(**changes)


def test_numpy_metadata_is_written_as_plain_json() -> None:
    meta = {"val_loss": np.float32(0.25), "epoch": np.int64(3), "curve": np.array([1.0, 0.5])}
    back = ModelOutput.from_json(output(metadata=meta).to_json())
    assert back.metadata == {"val_loss": 0.25, "epoch": 3, "curve": [1.0, 0.5]}
    with pytest.raises(TypeError, match="metadata value of type object is not JSON serialisable"):
        output(metadata={"x": object()}).to_json()


def test_pivot_predictions_must_be_finite() -> None:
    with pytest.raises(ValueError, match=r"price_offset of level 2 must be finite \(got nan\)"):
        PivotPrediction(2, "H", float("nan"), 3.0)
    with pytest.raises(ValueError, match="bars_until of level 1 must be finite and >= 0"):
        PivotPrediction(1, "L", 0.01, -1.0)


def test_incomplete_json_names_the_missing_fields() -> None:
    with pytest.raises(ValueError, match=r"lacks field\(s\) \['confidence', 'action'\]"):
        ModelOutput.from_dict({"model_type": "cnn", "model_name": "x", "symbol": "s", "timestamp": 1})


def test_shape_error_states_expected_and_actual() -> None:
    check_shape("x", np.zeros((2, 3)), (2, 3))
    with pytest.raises(ShapeError, match=r"windows: expected shape \(4, 300, 11\), got \(4, 299, 11\)"):
        check_shape("windows", np.zeros((4, 299, 11)), (4, 300, 11))


def test_window_lookup_defaults_to_primary_symbol_and_names_what_exists() -> None:
    candles = Candles.empty("binance", "ETH/USDT", "1m")
    inp = BaseDataInput("ETH/USDT", 0, {("ETH/USDT", "1m"): candles})
    assert inp.window("1m") is candles
    with pytest.raises(KeyError, match="no 1h window for ETH/USDT"):
        inp.window("1h")
