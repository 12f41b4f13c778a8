"""Faults that printed tracebacks now print one line (what, where, the fix): an unreachable PostgreSQL, an unknown
store backend, a full disk during an import (nothing half-written), an incompatible DuckDB file."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pivotal.cli.common import console, err_console
from pivotal.cli.main import app
from pivotal.config import Settings
from pivotal.core.errors import StoreUnavailable
from pivotal.data.backends import open_store
from pivotal.data.duckdb_store import DuckDBStore

pytestmark = pytest.mark.unit

runner = CliRunner()
CSV = "ts,open,high,low,close,volume\n1704067200000,10,11,9,10.5,3\n1704070800000,10.5,12,10,11,4\n"


@pytest.fixture(autouse=True)
def wide_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """The error console wraps at 80 columns without a terminal; the messages are single lines."""
    monkeypatch.setattr(err_console, "_width", 400)
    monkeypatch.setattr(console, "_width", 400)


def _one_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in output, output
    return lines[0]


def test_an_unreachable_postgres_is_one_line_without_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIVOTAL_STORE", "postgres")
    monkeypatch.setenv("PIVOTAL_POSTGRES_DSN", "postgresql://trader:hunter2@127.0.0.1:1/test")  # pragma: allowlist secret
    for args in (["data", "info"], ["data", "verify"], ["data", "gaps"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1
        line = _one_line(result.output)
        assert line.startswith("error: cannot reach PostgreSQL at postgresql://trader:***@127.0.0.1:1/test: ")
        assert "fix: start the server or correct PIVOTAL_POSTGRES_DSN" in line and "hunter2" not in result.output
    with pytest.raises(StoreUnavailable):
        open_store(Settings())


def test_an_unknown_store_backend_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIVOTAL_STORE", "mysql")
    result = runner.invoke(app, ["data", "info"])
    assert result.exit_code == 1
    line = _one_line(result.output)
    assert line.startswith("error: invalid setting store") and "'mysql'" in line and "duckdb" in line and "postgres" in line
    option = runner.invoke(app, ["data", "info", "--store", "mysql"])
    assert option.exit_code == 2 and "duckdb, postgres" in option.output and "Traceback" not in option.output


def test_a_full_disk_during_an_import_writes_nothing_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(self: DuckDBStore, candles: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(DuckDBStore, "_write_candles", disk_full)
    csv = tmp_path / "bars.csv"
    csv.write_text(CSV)
    args = ["data", "import", str(csv), "--format", "csv", "--exchange", "binance", "--symbol", "BTC/USDT", "--timeframe", "1h"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "disk full while writing to DuckDBStore(" in result.output
    from pivotal.data.importers import ImportOptions
    from pivotal.services.data import import_files

    report = import_files(Settings(), [csv], ImportOptions("csv", "binance", "BTC/USDT", "1h"))
    [failed] = report.files
    assert failed.status == "error" and failed.rows_written == 0
    assert failed.message.endswith(
        "nothing of this batch was written; fix: free space on that disk (or move the data directory) and run the same "
        "command again"
    )
    monkeypatch.undo()
    store = open_store(Settings())
    assert store.series() == []
    store.close()


def test_duckdb_reporting_a_full_disk_is_the_same_one_line(tmp_path: Path) -> None:
    import duckdb

    store = DuckDBStore(tmp_path / "s.duckdb")
    try:
        assert store._disk_full(duckdb.IOException('Could not write file "x": No space left on device'))
        assert not store._disk_full(duckdb.IOException("some other IO error"))
        with pytest.raises(OSError, match=r"disk full while writing to DuckDBStore\(.*free space") as info:
            store._guard_disk(OSError(errno.ENOSPC, "No space left on device"))
        assert info.value.errno == errno.ENOSPC
    finally:
        store.close()


def test_an_incompatible_duckdb_file_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import duckdb

    data_dir = tmp_path / "d"
    data_dir.mkdir()
    con = duckdb.connect(str(data_dir / "pivotal.duckdb"))
    con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    con.execute("INSERT INTO meta VALUES ('schema_version', '99')")
    con.close()
    monkeypatch.setenv("PIVOTAL_DATA_DIR", str(data_dir))
    result = runner.invoke(app, ["data", "info"])
    assert result.exit_code == 1
    assert "was written by an incompatible pivotal version" in _one_line(result.output)
