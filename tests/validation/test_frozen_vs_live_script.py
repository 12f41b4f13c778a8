"""``scripts/frozen_vs_live.py``, the frozen-vs-live comparison of the report: both arms through the runtime on real
bars, the paired tests, and the report rebuilt from the partial results (what a run cut short relies on)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from pivotal.data.loaders import load_candles_file
from pivotal.structure.types import PivotParams
from pivotal.training.labels import build_labels

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.realdata


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("frozen_vs_live", REPO / "scripts" / "frozen_vs_live.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["frozen_vs_live"] = module
    spec.loader.exec_module(module)
    return module


def test_pivot_hits_scores_each_as_of_against_the_next_settled_level_2_pivot(shared_data: Path) -> None:
    fvl = _script()
    bars = load_candles_file(shared_data / "binance" / "BTCUSDT-1m-2025.parquet", timeframe="1m",
                             start=1_747_713_600_000, end=1_747_713_600_000 + 1_000 * 60_000 - 1)  # fmt: skip
    params = PivotParams()
    labels = build_labels(bars, params)
    close = bars.ts + 60_000
    everywhere = {int(t): 1 for t in close} | {int(close[5]) + 1: 1}  # one as-of between two closes: not scored
    highs = fvl.pivot_hits(everywhere, bars, params)
    lows = fvl.pivot_hits({t: -1 for t in everywhere}, bars, params)
    settled = labels.known_at[:, 1] >= 0
    assert set(highs) == set(lows) == {int(t) for t in close[settled]}  # unsettled bars and off-close times left out
    assert 0 < sum(highs.values()) < len(highs)
    for t in highs:  # every scored bar is a hit for exactly one of the two kinds
        assert highs[t] + lows[t] == 1.0
    i = int(np.flatnonzero(settled)[0])
    assert highs[int(close[i])] == float(labels.kind[i, 1] > 0)
    assert fvl.pivot_hits({int(close[i]): 0}, bars, params) == {}  # no level-2 prediction: not scored


def _run(fvl: ModuleType, work: Path, *extra: str) -> dict[str, Any]:
    out = work / "result.json"
    argv = ["--start", "2025-05-20T04:00", "--days", "0.1", "--seed-days", "0.16666667", "--train-start", "2025-03-22",
            "--train-days", "0.5", "--train-steps", "5", "--timeframes", "1m,1h,1d",
            "--context-file", "1h=1h:binance/{stem}-1h-2018-2026.parquet",
            "--context-file", "1d=1h:binance/{stem}-1h-2018-2026.parquet", "--pacing", "pipelined", "--drain-every",
            "10", "--save-every-days", "0.05", "--n-boot", "200", "--work", str(work / "work"), "--out", str(out),
            *extra]  # fmt: skip
    assert fvl.main(argv) == 0
    return dict(json.loads(out.read_text()))


def test_both_arms_replay_the_same_bars_and_the_report_rebuilds_from_partials(shared_data: Path, tmp_path: Path) -> None:
    fvl = _script()
    got = _run(fvl, tmp_path, "--data", str(shared_data))
    assert got["complete"] is True
    assert got["days_compared"] == pytest.approx(0.1)
    frozen, live = got["arms"]["frozen"], got["arms"]["live"]
    assert frozen["bars"] == live["bars"] == 2 * 144  # 0.1 day of 1m bars, two symbols
    assert frozen["stats"]["enable_live_training"] is False and frozen["stats"]["pivot_samples"] == 0
    assert frozen["stats"]["trend_samples"] == 0 and frozen["promotions"] == 0 and frozen["refusals"] == 0
    (version,) = frozen["stats"]["predictions_by_version"]  # the frozen arm serves the starting checkpoint only
    assert version == frozen["checkpoint"] == live["checkpoint"]
    assert sum(live["stats"]["predictions_by_version"].values()) == frozen["stats"]["predictions"] == 288
    for symbol in ("BTC/USDT", "ETH/USDT"):
        acc = got["accuracy"][symbol]
        assert 0 < acc["n"] <= 144 and 0.0 <= acc["frozen"] <= 1.0 and 0.0 <= acc["live"] <= 1.0
    tests = got["tests"]
    assert set(tests) == {"next_L2_pivot_accuracy BTC/USDT", "next_L2_pivot_accuracy ETH/USDT", "after_fee_return_per_bar"}
    assert all(t["p_holm"] >= t["p"] for t in tests.values())
    (week,) = got["by_week"]  # 0.1 day: one block, the same bars as the whole
    for symbol in ("BTC/USDT", "ETH/USDT"):
        whole = got["accuracy"][symbol]
        assert week[symbol] == {"n": whole["n"], "frozen": pytest.approx(whole["frozen"]), "live": pytest.approx(whole["live"])}
    for arm in ("frozen", "live"):
        assert week["net_return"][arm] == pytest.approx(got["pnl"][arm]["net_return_mark_to_market"])
    again = _run(fvl, tmp_path, "--data", str(shared_data), "--report-only")  # the paired tests from the partial files
    assert again["tests"] == tests and again["accuracy"] == got["accuracy"] and again["pnl"] == got["pnl"]
