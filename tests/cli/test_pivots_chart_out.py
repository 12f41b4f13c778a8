"""`pivotal pivots chart` (issue #9): it draws the --start/--end range it was given (merging bars into fewer candles
when there are too many), and writes under ./pivotal-out/pivots unless --out names a folder or a .png."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pivotal.cli.main import app

pytestmark = pytest.mark.realdata
runner = CliRunner()


def chart(shared_data: Path, *args: str) -> str:
    result = runner.invoke(app, ["pivots", "chart", "-i", str(shared_data / "coinbase" / "BTCUSD-4h.parquet"), *args])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_the_range_is_drawn_whole_and_written_under_pivotal_out(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    out = chart(shared_data, "--start", "2019-01-01", "--end", "2019-04-01")  # 540 bars: more than the old 500
    assert "drew 540 bars 2019-01-01T00:00 → 2019-03-31T20:00 UTC" in out and "1 candle" not in out
    folder = tmp_path / "pivotal-out" / "pivots"
    assert {p.name for p in folder.iterdir()} == {"BTCUSD-4h-pivots.png", "BTCUSD-4h-pivots.html", "plotly.min.js"}
    assert (folder / "BTCUSD-4h-pivots.html").stat().st_size < 1_000_000  # plotly.js sits beside it, once
    assert {p.name for p in tmp_path.iterdir()} <= {"pivotal-out", "pivotal-data"}  # nothing else in the current folder


def test_a_long_range_is_merged_into_fewer_candles(shared_data: Path, tmp_path: Path) -> None:
    out = chart(shared_data, "--start", "2017-01-01", "--end", "2021-01-01", "--out", str(tmp_path / "c"))  # 4 bars missing
    assert "drew 8762 bars 2017-01-01T00:00 → 2020-12-31T20:00 UTC; 1 candle = 6 bars" in out
    assert (tmp_path / "c" / "BTCUSD-4h-pivots.png").read_bytes()[:4] == b"\x89PNG"


def test_bars_still_limits_and_without_a_range_the_last_500_are_drawn(shared_data: Path, tmp_path: Path) -> None:
    assert "drew 100 bars" in chart(shared_data, "--start", "2019-01-01", "--bars", "100", "--out", str(tmp_path))
    assert "drew 500 bars" in chart(shared_data, "--out", str(tmp_path / "x.png"))
    assert (tmp_path / "x.png").exists() and (tmp_path / "x.html").exists()


def test_out_must_be_a_folder_or_a_png(shared_data: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["pivots", "chart", "-i", str(shared_data / "coinbase" / "BTCUSD-4h.parquet"),
                                 "--out", str(tmp_path / "x.jpg")])  # fmt: skip
    assert result.exit_code == 1 and "--out must be a folder or end in .png (got x.jpg)" in " ".join(result.output.split())


def test_compute_table_fits_80_columns(shared_data: Path) -> None:
    args = ["pivots", "compute", "-i", str(shared_data / "coinbase" / "BTCUSD-4h.parquet"), "--limit", "5"]
    result = runner.invoke(app, args, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80 and not any("…" in line for line in lines), result.output
    assert any("conf." in line for line in lines) and any("2025-10-28 04:00" in line for line in lines)
