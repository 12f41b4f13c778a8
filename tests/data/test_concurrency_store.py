"""Two real processes on one embedded DuckDB store: the second gets one line naming the holder ("the store is busy:
pivotal data import (pid N) holds ...; wait ... or use PostgreSQL"), never DuckDB's lock traceback; stale owner files
are ignored; a transient store (optimize) holds the file only while it reads or writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pivotal.config import Settings
from pivotal.data import store_owner
from pivotal.data.backends import open_store
from pivotal.data.candles import Candles
from pivotal.data.duckdb_store import DuckDBStore

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
HOLDER = """
import sys, duckdb
path, mode = sys.argv[1], sys.argv[2]
sys.argv = ["pivotal", "data", "import", "big.parquet"]  # what the owner file should name
if mode == "store":
    from pivotal.data.duckdb_store import DuckDBStore
    held = DuckDBStore(path)
else:
    held = duckdb.connect(path)  # a holder that writes no owner file
print("ready", flush=True)
sys.stdin.readline()
held.close()
"""


def _env(data_dir: Path) -> dict[str, str]:
    # COLUMNS: rich wraps stderr at 80 columns when not a terminal; the message itself is one line.
    return {**os.environ, "PIVOTAL_DATA_DIR": str(data_dir), "PIVOTAL_CONFIG": str(data_dir / "none.toml"), "COLUMNS": "400"}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    store = DuckDBStore(folder / "pivotal.duckdb")  # the settings' default file name
    ts = 1_704_067_200_000 + 60_000 * np.arange(3, dtype=np.int64)
    store.write_candles(Candles(ts, np.ones(3), np.ones(3), np.ones(3), np.ones(3), np.ones(3), "binance", "BTC/USDT", "1m"))
    store.close()
    return folder


@pytest.fixture
def holder(data_dir: Path, request: pytest.FixtureRequest) -> Iterator[subprocess.Popen[str]]:
    mode = getattr(request, "param", "store")
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(data_dir / "pivotal.duckdb"), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=_env(data_dir),
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    yield proc
    if proc.poll() is None:
        proc.communicate("\n", timeout=30)


def _pivotal(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pivotal.cli.main", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=_env(data_dir), timeout=120)


def test_info_and_a_second_import_during_an_import_get_one_line_naming_the_holder(
    data_dir: Path, holder: subprocess.Popen[str], tmp_path: Path
) -> None:
    csv = tmp_path / "bars.csv"
    csv.write_text("ts,open,high,low,close,volume\n1704067200000,1,1,1,1,1\n")
    expected = f"error: the store is busy: pivotal data import (pid {holder.pid}) holds {data_dir / 'pivotal.duckdb'}; wait"
    for args in (
        ["data", "info"],
        ["data", "import", str(csv), "--format", "csv", "--exchange", "binance", "--symbol", "X/USDT", "--timeframe", "1m"],
    ):
        result = _pivotal(data_dir, *args)
        assert result.returncode == 1, result.stderr
        assert result.stderr.strip().startswith(expected), result.stderr
        assert "use PostgreSQL" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr + result.stdout


def test_the_store_is_free_again_once_the_holder_is_done(data_dir: Path, holder: subprocess.Popen[str]) -> None:
    holder.communicate("\n", timeout=30)
    result = _pivotal(data_dir, "data", "info", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["candles"][0]["rows"] == 3
    assert not store_owner.owner_path(data_dir / "pivotal.duckdb").exists()  # removed by the holder's close


@pytest.mark.parametrize("holder", ["raw"], indirect=True)
def test_a_stale_owner_file_is_ignored_and_duckdbs_pid_named(data_dir: Path, holder: subprocess.Popen[str]) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    owner = store_owner.owner_path(data_dir / "pivotal.duckdb")
    owner.write_text(json.dumps({"pid": int(dead.stdout), "command": "pivotal optimize", "since": 0}))
    result = _pivotal(data_dir, "data", "info")
    assert result.returncode == 1
    assert f"the store is busy: another process (pid {holder.pid}) holds" in result.stderr
    assert "optimize" not in result.stderr and "Traceback" not in result.stderr


def test_a_stale_owner_file_does_not_block_opening(data_dir: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    owner = store_owner.owner_path(data_dir / "pivotal.duckdb")
    owner.write_text(json.dumps({"pid": int(dead.stdout), "command": "pivotal optimize", "since": 0}))
    store = DuckDBStore(data_dir / "pivotal.duckdb")
    assert json.loads(owner.read_text())["pid"] == os.getpid()
    second = DuckDBStore(data_dir / "pivotal.duckdb")  # same process: shares the file and the claim
    second.close()
    assert owner.exists()
    store.close()
    assert not owner.exists()


def test_a_transient_store_lets_another_process_in_between_calls(data_dir: Path) -> None:
    """What `optimize` uses: the file is open only during each call, so `data info` runs while the job lives."""
    settings = Settings(data_dir=data_dir)
    job_store = open_store(settings, transient=True)
    assert [s.rows for s in job_store.series()] == [3]
    with job_store.transaction() as tx:  # type: ignore[attr-defined]
        assert tx.query("SELECT COUNT(*) FROM candle_bars") == [(3,)]
    result = _pivotal(data_dir, "data", "info", "--json")
    assert result.returncode == 0, result.stderr
    assert len(job_store.candles("binance", "BTC/USDT", "1m")) == 3
    job_store.close()


def test_a_transient_store_reads_plain_attributes_and_refuses_missing_ones(data_dir: Path) -> None:
    """Repositories probe stores with ``getattr(store, name, None)``: a plain attribute is a value, a missing one is
    ``None`` — never a function standing in for it (that broke every optimize run)."""
    job_store = open_store(Settings(data_dir=data_dir), transient=True)
    assert getattr(job_store, "legacy_state_schema", None) is None
    assert getattr(job_store, "no_such_thing", "absent") == "absent"
    assert callable(job_store.series)
