"""Issue #8: the evaluation plan and a data hash are on disk before the holdout fold is scored.

A failure is injected into the scoring of the holdout fold: the plan must already be there, naming the same data
(SHA-256), the folds with the holdout marked, the multiplicity correction and the primary comparison.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pivotal.training import pipeline
from pivotal.training.preregistration import PLAN_FILE, data_hash
from pivotal.validation.walkforward import WalkForwardSpec
from tests.models.real_samples import real_candles

pytestmark = pytest.mark.realdata
DAY = 86_400_000


class HoldoutScored(Exception):
    pass


def test_plan_and_data_hash_are_written_before_the_holdout_is_scored(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    candles = {("BTC/USDT", "1h"): real_candles(shared_data, 1300, offset=19_000)}
    spec = pipeline.RunSpec(
        "cnn",
        "binance",
        "BTC/USDT",
        ("1h",),
        epochs=1,
        n_boot=20,
        progress=False,
        walk_forward=WalkForwardSpec(20 * DAY, DAY, 8 * DAY),
        max_folds=2,
    )
    report = tmp_path / "report"
    seen: list[dict[str, Any] | None] = []
    scored = pipeline.evaluate_supervised

    def scoring(*args: Any, **kwargs: Any) -> Any:
        path = report / PLAN_FILE
        seen.append(json.loads(path.read_text()) if path.exists() else None)
        if len(seen) == 2:  # the second (last) fold is the holdout
            raise HoldoutScored
        return scored(*args, **kwargs)

    monkeypatch.setattr(pipeline, "evaluate_supervised", scoring)
    with pytest.raises(HoldoutScored):
        pipeline.run(spec, candles, report_dir=report)
    plan = seen[-1]
    assert plan is not None, "evaluation.json missing when the holdout scoring started"
    assert plan["data_sha256"] == data_hash(candles)
    assert plan["data_sha256"] != data_hash({("BTC/USDT", "1h"): real_candles(shared_data, 1300, offset=19_001)})
    assert [f["holdout"] for f in plan["folds"]] == [False, True]
    assert plan["multiplicity"]["method"] == "holm" and plan["multiplicity"]["alpha"] == 0.05
    assert plan["primary"] == {"target": "action", "metric": "accuracy", "baseline": "persistence", "alpha": 0.05}
    assert plan["config"]["symbol"] == "BTC/USDT" and plan["config"]["walk_forward"]["test_ms"] == 8 * DAY
    assert plan["written"] == "before the holdout fold is scored"
    holdout = plan["folds"][1]
    assert holdout["test"][0] > holdout["train"][1] and np.int64(holdout["test"][1]) > 0
