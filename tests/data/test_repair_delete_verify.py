"""`pivotal data delete` and `pivotal data verify`: repairing a store without SQL, on both backends.

Broken rows are put in with raw SQL (what earlier releases, bugs or hand edits leave behind); validation keeps them
out of every normal write.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pivotal.cli.common import console
from pivotal.cli.main import app
from pivotal.config import Settings
from pivotal.data.backends import open_store
from pivotal.data.candles import Candles
from pivotal.data.store import MarketStore
from pivotal.data.trades import Trades
from tests.stores import BACKENDS, POSTGRES_DSN

pytestmark = pytest.mark.unit

H = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
runner = CliRunner()


def _bars(n: int, start: int = T0, symbol: str = "BTC/USDT") -> Candles:
    ts = start + H * np.arange(n, dtype=np.int64)
    close = 100.0 + np.arange(n, dtype=np.float64)
    return Candles(ts, close - 0.5, close + 1.0, close - 1.0, close, np.full(n, 2.0), "binance", symbol, "1h")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The CLI and the services on DuckDB (the test's data dir) or on a fresh PostgreSQL schema (dropped after)."""
    if request.param == "duckdb":
        yield "duckdb"
        return
    schema = f"pivotal_test_{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("PIVOTAL_STORE", "postgres")
    monkeypatch.setenv("PIVOTAL_POSTGRES_DSN", POSTGRES_DSN)
    monkeypatch.setenv("PIVOTAL_POSTGRES_SCHEMA", schema)
    yield "postgres"
    store = open_store(Settings())
    store.drop_schema()  # type: ignore[attr-defined]
    store.close()


def _store() -> MarketStore:
    return open_store(Settings())


def _series_id(store: MarketStore) -> int:
    return int(store.query("SELECT id FROM candle_series WHERE symbol = 'BTC/USDT' AND timeframe = '1h'")[0][0])


def test_a_sound_store_verifies_clean(backend: str) -> None:
    store = _store()
    store.write_candles(_bars(48), "t")
    store.close()
    result = runner.invoke(app, ["data", "verify"])
    assert result.exit_code == 0, result.output
    assert "OK: 1 series checked, no problems." in result.output


def test_verify_reports_each_broken_invariant_and_exits_1(backend: str) -> None:
    store = _store()
    store.write_candles(_bars(10), "t")
    sid = _series_id(store)
    insert = "INSERT INTO candle_bars (series_id, ts, open, high, low, close, volume) VALUES (?, ?, ?, ?, ?, ?, ?)"
    store.execute(insert, [sid, T0 + 20 * H + 1, 10.0, 11.0, 9.0, 10.0, 1.0])  # off the 1h grid
    store.execute(insert, [sid, T0 + 21 * H, 10.0, 9.5, 9.0, 10.0, 1.0])  # high below open and close
    store.execute(insert, [sid, T0 + 22 * H, 10.0, 11.0, 9.0, 10.0, -3.0])  # negative volume
    store.execute(insert, [sid, T0 * 1000, 10.0, 11.0, 9.0, 10.0, 1.0])  # a µs timestamp read as ms
    store.close()
    result = runner.invoke(app, ["data", "verify"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert any(line.startswith("binance/BTC/USDT/1h: open times off the 1h grid: 1 row(s)") for line in lines)
    assert any("high below open or close: 1 row(s)" in line and "high 9.5" in line for line in lines)
    assert any("volume not finite >= 0: 1 row(s)" in line and "-3.0" in line for line in lines)
    assert any("open times outside 2009-01-01 .. now + 1 day: 1 row(s)" in line and str(T0 * 1000) in line for line in lines)
    assert "4 problem(s) in 1 series" in result.output and "pivotal data delete" in result.output
    assert "Traceback" not in result.output


def test_duplicate_bars_break_the_gap_ledger_and_verify_says_so(tmp_path: Path) -> None:
    """DuckDB keeps the bar key in the write path (no PRIMARY KEY): a duplicate put in by hand is found."""
    store = _store()
    store.write_candles(_bars(5), "t")
    sid = _series_id(store)
    store.execute("INSERT INTO candle_bars VALUES (?, ?, 1, 2, 0.5, 1, 1)", [sid, T0 + H])
    problems = store.verify()  # type: ignore[attr-defined]
    store.close()
    assert [(p.check, p.count) for p in problems] == [("duplicate open times", 1), ("gap ledger inconsistent", 1)]
    assert "ledger says rows/gaps/missing 6/0/-1, distinct bars give 5/0/0" in problems[1].example


def test_delete_a_range_then_the_series(backend: str) -> None:
    store = _store()
    store.write_candles(_bars(48), "t")
    store.write_candles(_bars(24, symbol="ETH/USDT"), "t")
    store.close()
    args = ["data", "delete", "-e", "binance", "-s", "BTC/USDT", "-t", "1h"]
    result = runner.invoke(app, [*args, "--start", str(T0 + 10 * H), "--end", str(T0 + 20 * H), "--yes"])
    assert result.exit_code == 0, result.output
    assert "Deleted 10 bars of binance BTC/USDT 1h from 2024-01-01 10:00:00 to 2024-01-01 20:00:00" in result.output
    store = _store()
    left = store.candles("binance", "BTC/USDT", "1h").ts
    assert left.tolist() == [T0 + i * H for i in range(48) if not 10 <= i < 20]
    assert [(g.start, g.missing) for g in store.gaps("binance", "BTC/USDT", "1h")] == [(T0 + 10 * H, 10)]
    store.close()
    whole = runner.invoke(app, [*args, "--yes"])
    assert whole.exit_code == 0 and "Deleted 38 bars of binance BTC/USDT 1h." in whole.output
    store = _store()
    assert [(s.symbol, s.rows) for s in store.series()] == [("ETH/USDT", 24)]  # the other series untouched
    store.write_candles(_bars(3), "t")  # re-import after a delete is plain
    assert len(store.candles("binance", "BTC/USDT", "1h")) == 3
    store.close()


def test_delete_asks_first_and_a_no_keeps_everything(backend: str) -> None:
    store = _store()
    store.write_candles(_bars(12), "t")
    store.close()
    result = runner.invoke(app, ["data", "delete", "-e", "binance", "-s", "BTC/USDT", "-t", "1h"], input="n\n")
    assert result.exit_code == 1
    assert "Delete 12 bars of binance BTC/USDT 1h? [y/N]" in result.output and "not deleted" in result.output
    store = _store()
    assert len(store.candles("binance", "BTC/USDT", "1h")) == 12
    store.close()


def test_delete_of_a_series_not_stored_names_what_is(backend: str) -> None:
    store = _store()
    store.write_candles(_bars(2), "t")
    store.close()
    result = runner.invoke(app, ["data", "delete", "-e", "binance", "-s", "BTCUSDT", "-t", "1h", "--yes"])
    assert result.exit_code == 1
    assert "no stored series binance BTCUSDT 1h; stored: binance BTC/USDT 1h" in result.output
    assert "Traceback" not in result.output


def test_the_1000x_timestamp_series_is_repaired_without_sql(backend: str) -> None:
    """The critical import bug of issue 9 left ms*1000 times: verify finds them, delete removes just those."""
    store = _store()
    store.write_candles(_bars(24), "t")
    sid = _series_id(store)
    for i in range(3):
        store.execute("INSERT INTO candle_bars VALUES (?, ?, 1, 2, 0.5, 1, 1)", [sid, (T0 + i * H) * 1000])
    store.close()
    assert runner.invoke(app, ["data", "verify"]).exit_code == 1
    cut = str(T0 + 1000 * 86_400_000)  # far past the real bars, far before the bad ones
    result = runner.invoke(app, ["data", "delete", "-e", "binance", "-s", "BTC/USDT", "-t", "1h", "--start", cut, "-y"])
    assert result.exit_code == 0 and "Deleted 3 bars" in result.output
    assert runner.invoke(app, ["data", "verify"]).exit_code == 0


def test_info_lists_trades_and_depth_fits_80_columns_and_has_json(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "_width", 80)
    store = _store()
    store.write_candles(_bars(100), "t")
    ts = T0 + np.arange(5, dtype=np.int64) * 1000
    store.write_trades(
        Trades(ts, np.arange(5, dtype=np.int64) + 7, np.full(5, 100.5), np.full(5, 0.1), np.zeros(5, bool), "binance", "BTC/USDT")
    )
    import pandas as pd

    snapshot = pd.DataFrame(
        {"local_ts_ns": [T0 * 1_000_000] * 4, "event_ts_ms": [T0] * 4, "last_update_id": [11] * 4,
         "side": ["bid", "bid", "ask", "ask"], "level": [0, 1, 0, 1], "price": [99.0, 98.0, 101.0, 102.0],
         "qty": [1.0, 2.0, 1.0, 2.0]}
    )  # fmt: skip
    store.write_depth_snapshot("binance", "BTC/USDT", snapshot)
    store.close()
    result = runner.invoke(app, ["data", "info"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in result.output
    assert any(
        line.split() == ["BTC/USDT", "1h", "2024-01-01", "00:00", "2024-01-05", "03:00", "100", "0", "0"] for line in lines
    )
    assert any(line.split() == ["trades", "BTC/USDT", "2024-01-01", "00:00", "2024-01-01", "00:00", "5"] for line in lines)
    assert any(
        line.split() == ["snapshots", "BTC/USDT", "2024-01-01", "00:00", "2024-01-01", "00:00", "1", "4"] for line in lines
    )
    piped = runner.invoke(app, ["data", "info", "--json"])
    assert piped.exit_code == 0 and len(piped.output.strip().splitlines()) == 1  # not a terminal: one line
    doc = json.loads(piped.output)
    assert doc["candles"][0] | {} == {
        "exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1h", "first_ts": T0, "last_ts": T0 + 99 * H, "rows": 100,
        "missing_bars": 0, "gaps": 0, "first": "2024-01-01T00:00:00Z", "last": "2024-01-05T03:00:00Z",
    }  # fmt: skip
    assert [(t["count"], t["rows"], t["first_ts"]) for t in doc["trades"]] == [(5, 5, T0)]
    assert [(d["count"], d["rows"], d["first_ts"]) for d in doc["depth_snapshots"]] == [(1, 4, T0)]
    assert doc["depth_updates"] == []
