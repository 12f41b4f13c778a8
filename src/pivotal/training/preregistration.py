"""Pre-registration: the evaluation plan and a hash of the data, written before the holdout fold is scored.

``evaluation.json`` in the report folder fixes, before any holdout number exists: the data (SHA-256 over every series'
bars), the folds, the baselines, the bootstrap settings, the multiplicity correction and the one primary comparison.
A reader can then check that the holdout result was not chosen after seeing it, and that a rerun used the same data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pivotal.data.candles import Candles

PLAN_FILE = "evaluation.json"
ALPHA = 0.05
BLOCK = 24  # moving-block length of the bootstrap (samples)
# Named in advance, one per model type: the single comparison read without multiplicity correction.
PRIMARY: dict[str, dict[str, Any]] = {
    "supervised": {"target": "action", "metric": "accuracy", "baseline": "persistence", "alpha": ALPHA},
    "dqn": {"target": "policy", "metric": "total_log_return", "baseline": "buy_and_hold", "alpha": ALPHA},
}
_COLUMNS = ("ts", "open", "high", "low", "close", "volume")


def data_hash(series: Mapping[tuple[str, str], Candles]) -> str:
    """SHA-256 over every series (sorted by key): its key, timeframe and the bytes of its six columns."""
    digest = hashlib.sha256()
    for key in sorted(series):
        candles = series[key]
        digest.update(f"{key[0]}|{key[1]}|{candles.timeframe}|{len(candles)}".encode())
        for name in _COLUMNS:
            column = np.ascontiguousarray(getattr(candles, name), dtype=np.int64 if name == "ts" else np.float64)
            digest.update(column.tobytes())
    return digest.hexdigest()


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in asdict(value).items()}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def write_plan(
    report_dir: Path,
    config: Any,
    folds: Sequence[dict[str, Any]],
    series: Mapping[tuple[str, str], Candles],
    primary: dict[str, Any],
    n_samples: int,
) -> Path:
    """Write ``evaluation.json`` (module doc) and return its path."""
    report_dir.mkdir(parents=True, exist_ok=True)
    plan = {
        "written": "before the holdout fold is scored",
        "data_sha256": data_hash(series),
        "data": {f"{sym} {tf}": [int(c.ts[0]), int(c.ts[-1]), len(c)] for (sym, tf), c in sorted(series.items()) if len(c)},
        "samples": int(n_samples),
        "config": _plain(config),
        "folds": _plain(list(folds)),
        "baselines": ["majority", "persistence", "random"],
        "bootstrap": {"kind": "moving block, percentile", "block": BLOCK, "p_value": "two-sided, twice the smaller tail"},
        "multiplicity": {
            "method": "holm",
            "alpha": ALPHA,
            "families": ["non-holdout folds' summary cells", "holdout fold's summary cells"],
        },
        "primary": primary,
    }
    path = report_dir / PLAN_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(plan, indent=2, sort_keys=True))
    tmp.replace(path)
    return path


def read_plan(report_dir: Path) -> dict[str, Any] | None:
    path = report_dir / PLAN_FILE
    return json.loads(path.read_text()) if path.exists() else None
