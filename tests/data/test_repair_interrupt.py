"""Ctrl-C during an import of large real files: one line saying what was imported and what was not; the file in
progress is rolled back (each file is one transaction), so every stored series is whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pivotal.data import store_owner
from pivotal.data.duckdb_store import DuckDBStore

pytestmark = pytest.mark.realdata

REPO = Path(__file__).resolve().parents[2]
FILES = [f"{coin}USDT-1m-{year}.parquet" for coin in ("BTC", "ETH") for year in range(2021, 2026)]  # 1.6 M bars


def test_ctrl_c_during_an_import_says_what_was_and_was_not_imported(shared_data: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {**os.environ, "PIVOTAL_DATA_DIR": str(data_dir), "PIVOTAL_CONFIG": str(tmp_path / "none.toml"), "COLUMNS": "400"}
    paths = [str(shared_data / "binance" / name) for name in FILES]
    proc = subprocess.Popen(
        [sys.executable, "-m", "pivotal.cli.main", "data", "import", *paths],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )
    owner = store_owner.owner_path(data_dir / "pivotal.duckdb")
    deadline = time.monotonic() + 60
    while not owner.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)  # the owner file appears once the import has opened the store
    assert proc.poll() is None, "the import finished before it could be interrupted"
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err
    assert "Traceback" not in out + err and "Aborted" not in out + err
    [line] = [line for line in err.splitlines() if line.startswith("error:")]
    assert line.startswith("error: interrupted: ") and "not imported (" in line
    assert "the file in progress was rolled back); run the same command again to import the rest" in line
    imported = int(line.split("interrupted: ")[1].split(" file(s)")[0])
    assert imported < len(FILES) and f"{len(FILES) - imported} not imported" in line
    store = DuckDBStore(data_dir / "pivotal.duckdb")
    try:
        stored = {s.symbol: s.rows for s in store.series()}
        expected = sum(pq.ParquetFile(p).metadata.num_rows for p in paths[:imported])
        assert sum(stored.values()) == expected  # whole files only
    finally:
        store.close()
