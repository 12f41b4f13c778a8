"""Two processes opening the same fresh Optuna storage at once both succeed (the first open, which creates Optuna's tables,
is serialised instead of failing with "table already exists")."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit


def _open(data_dir: str, barrier: object, results: object) -> None:
    import os

    os.environ["PIVOTAL_DATA_DIR"] = data_dir
    from pivotal.config import Settings
    from pivotal.optimize.study import open_storage

    barrier.wait()  # type: ignore[attr-defined]
    try:
        open_storage(Settings())
        results.put("ok")  # type: ignore[attr-defined]
    except Exception as exc:
        results.put(f"{type(exc).__name__}: {exc}")  # type: ignore[attr-defined]


def test_concurrent_first_open_of_the_study_storage(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    for round_ in range(3):
        folder = tmp_path / f"round{round_}"
        folder.mkdir()
        barrier, results = ctx.Barrier(3), ctx.Queue()
        procs = [ctx.Process(target=_open, args=(str(folder), barrier, results)) for _ in range(3)]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert outcomes == ["ok", "ok", "ok"], outcomes
