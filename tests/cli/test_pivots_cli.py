"""`pivotal pivots compute|chart` on real Binance bars: outputs agree with wms_batch, charts are written, errors are clear."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pivotal.cli.main import app
from pivotal.config import Settings
from pivotal.data.backends import open_store
from pivotal.data.candles import Candles
from pivotal.structure.pivots import wms_batch
from pivotal.structure.types import PivotParams

runner = CliRunner()
HOUR = 3_600_000


@pytest.fixture(scope="module")
def eth_file(shared_data: Path) -> Path:
    return shared_data / "binance" / "ETHUSDT-1h.parquet"


@pytest.fixture(scope="module")
def eth_frame(eth_file: Path) -> pd.DataFrame:
    return pd.read_parquet(eth_file)


def _expected(frame: pd.DataFrame, params: PivotParams):  # type: ignore[no-untyped-def]
    return wms_batch(high=frame["high"], low=frame["low"], open=frame["open"], close=frame["close"], params=params)


def test_json_equals_wms_batch(eth_file: Path, eth_frame: pd.DataFrame) -> None:
    result = runner.invoke(app, ["pivots", "compute", "--input", str(eth_file), "--k", "1", "--levels", "4", "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    expected = _expected(eth_frame, PivotParams(k=1, levels=4))
    assert doc["timeframe"] == "1h" and doc["bars"] == len(eth_frame) and doc["params"]["k"] == 1
    assert [(d["level"], d["kind"]) for d in doc["levels"]] == [(lv, kd) for lv in range(1, 5) for kd in ("H", "L")]
    ts = eth_frame["timestamp"].to_numpy()
    for d in doc["levels"]:
        arr = expected.get(d["level"], d["kind"])
        assert [tuple(p) for p in d["pivots"]] == arr.as_tuples()
        assert d["ts"] == ts[arr.index].tolist()
        assert d["confirmed_ts"] == (ts[arr.confirmed_at] + HOUR).tolist()


def test_csv_has_every_pivot_once(eth_file: Path, eth_frame: pd.DataFrame, tmp_path: Path) -> None:
    out = tmp_path / "pivots.csv"
    args = ["pivots", "compute", "-i", str(eth_file), "--tie", "strict", "--skip-inside", "--format", "csv", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    expected = _expected(eth_frame, PivotParams(tie="strict", skip_inside=True))
    got = {(int(r["level"]), r["kind"], int(r["index"]), float(r["price"]), int(r["confirmed_at"])) for r in rows}
    want = {(lv, kd, *t) for lv in range(1, 6) for kd in ("H", "L") for t in expected.get(lv, kd).as_tuples()}
    assert got == want and len(rows) == len(want)
    assert [int(r["confirmed_at"]) for r in rows] == sorted(int(r["confirmed_at"]) for r in rows)  # emission order
    assert rows[0]["time"].endswith("Z") and int(rows[0]["lag_bars"]) >= 2


def test_table_from_a_stored_series(eth_frame: pd.DataFrame) -> None:
    store = open_store(Settings())  # the test's private data dir (conftest)
    store.write_candles(Candles.from_frame(eth_frame, "binance", "ETH/USDT", "1h"), source="test")
    store.close()
    args = ["pivots", "compute", "-e", "binance", "-s", "ETH/USDT", "-t", "1h", "--start", "2018-07-01", "--limit", "5"]
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    window = eth_frame[eth_frame["timestamp"] >= 1530403200000]
    expected = _expected(window, PivotParams())
    total = sum(len(expected.get(lv, kd)) for lv in range(1, 6) for kd in ("H", "L"))
    assert f"last 5 of {total} pivots" in result.stdout
    l1 = f"│ L1    │ {len(expected.get(1, 'H'))} │ {len(expected.get(1, 'L'))} │"
    assert l1.replace(" ", "") in result.stdout.replace(" ", "")


def test_update_persists_pivots_once(eth_frame: pd.DataFrame) -> None:
    store = open_store(Settings())
    store.write_candles(Candles.from_frame(eth_frame, "binance", "ETH/USDT", "1h"), source="test")
    store.close()
    args = ["pivots", "update", "-e", "binance", "-s", "ETH/USDT", "-t", "1h", "--levels", "3"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    expected = _expected(eth_frame, PivotParams(levels=3))
    total = sum(len(expected.get(lv, kd)) for lv in range(1, 4) for kd in ("H", "L"))
    assert f"{total} new pivots (L1H {len(expected.get(1, 'H'))}," in " ".join(first.output.split())
    again = runner.invoke(app, args)
    assert "0 new pivots (none)" in again.output


def test_chart_writes_png_and_html(eth_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "charts" / "eth.png"
    result = runner.invoke(app, ["pivots", "chart", "-i", str(eth_file), "--bars", "150", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000
    html = out.with_suffix(".html").read_text()
    assert "L2H" in html and "L2H trend" in html and "plotly" in html.lower()


@pytest.mark.parametrize("command", ["compute", "chart"])
def test_empty_range_is_a_clear_error(eth_file: Path, tmp_path: Path, command: str) -> None:
    args = ["pivots", command, "-i", str(eth_file), "--start", "2030-01-01", "--end", "2030-02-01"]
    if command == "chart":
        args += ["--out", str(tmp_path / "empty.png")]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "no bars in" in result.output and "between --start 2030-01-01 and --end 2030-02-01" in " ".join(result.output.split())
    assert not (tmp_path / "empty.png").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "nope.parquet"], "nope.parquet: file not found"),
        (["-e", "binance"], "name a stored series with --exchange, --symbol and --timeframe"),
        (["-e", "binance", "-s", "BTC/USDT", "-t", "7m"], "unknown timeframe '7m'"),
        (["-e", "binance", "-s", "BTC/USDT", "-t", "1h"], "no stored candles for binance BTC/USDT 1h"),
    ],
)
def test_clear_errors(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["pivots", "compute", *args])
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())


def flat(output: str) -> str:
    """The output without any whitespace: rich wraps long lines anywhere, also inside a path (the tmp path's length
    varies from run to run)."""
    return "".join(output.split())


def test_bad_file_rows_are_named(tmp_path: Path, eth_frame: pd.DataFrame) -> None:
    bad = eth_frame.head(30).copy()
    bad.loc[17, "low"] = bad.loc[17, "high"] + 1  # high < low in row 17
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    result = runner.invoke(app, ["pivots", "compute", "-i", str(path)])
    assert result.exit_code == 1
    assert "bad.csv:row17,field'low'" in flat(result.output)
    no_close = tmp_path / "no_close.csv"
    bad.drop(columns=["close"]).to_csv(no_close, index=False)
    result = runner.invoke(app, ["pivots", "compute", "-i", str(no_close)])
    assert "missingcolumn(s)close" in flat(result.output)
    seconds = tmp_path / "seconds.csv"
    eth_frame.head(5).assign(timestamp=lambda f: f["timestamp"] // 1000).to_csv(seconds, index=False)
    result = runner.invoke(app, ["pivots", "compute", "-i", str(seconds)])
    assert result.exit_code == 0 and "seconds.csv(5bars)" in flat(result.output)  # s read as `data import` does
    assert np.all(eth_frame["timestamp"].diff().dropna() > 0)
