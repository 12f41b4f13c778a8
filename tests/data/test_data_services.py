"""``pivotal.services.data``: import, coverage, gaps and export as plain functions over the configured store."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pivotal.config import Settings
from pivotal.core.errors import DataNotFound, UserInputError
from pivotal.data.candles import Candles
from pivotal.data.importers import ImportOptions
from pivotal.data.importers.generic_csv import parse_mapping
from pivotal.data.loaders import BarsError, load_candles_file
from pivotal.services import data as service

pytestmark = pytest.mark.unit

HOUR = 3_600_000
T0 = 1_704_067_200_000
# Hand-written 1h bars with one missing bar (index 3): not market data.
TS = [T0, T0 + HOUR, T0 + 2 * HOUR, T0 + 4 * HOUR, T0 + 5 * HOUR]


def _csv(tmp_path: Path) -> Path:
    frame = pd.DataFrame(
        {"ts": TS, "open": [10, 11, 12, 13, 14], "high": [11, 12, 13, 14, 15], "low": [9, 10, 11, 12, 13],
         "close": [11, 12, 13, 14, 15], "volume": [1, 2, 3, 4, 5]}
    )  # fmt: skip
    path = tmp_path / "bars.csv"
    frame.to_csv(path, index=False)
    return path


def test_import_then_coverage_gaps_and_export(tmp_path: Path) -> None:
    settings = Settings()  # the test's private data dir (conftest)
    options = ImportOptions("csv", "binance", "BTC/USDT", "1h", parse_mapping(None))
    seen: list[str] = []
    report = service.import_files(settings, [_csv(tmp_path)], options, lambda r: seen.append(r.status))
    assert report.ok and report.rows_written == 5 and seen == ["ok"]
    [info] = service.series(settings)
    assert (info.exchange, info.symbol, info.timeframe, info.rows, info.missing_bars) == ("binance", "BTC/USDT", "1h", 5, 1)
    [(found, gaps)] = service.gaps(settings, symbol="BTC/USDT")
    assert found == info and [(g.start, g.end, g.missing) for g in gaps] == [(T0 + 3 * HOUR, T0 + 4 * HOUR, 1)]
    out = tmp_path / "out.parquet"
    written = service.export(settings, "binance", "BTC/USDT", "1h", out, start=T0 + HOUR, end=T0 + 5 * HOUR)
    assert written.ts.tolist() == TS[1:4]
    back = load_candles_file(out, exchange="binance", symbol="BTC/USDT")  # the export reads back through the loader
    assert back.equals(written) and back.timeframe == "1h" and isinstance(back, Candles)


def test_errors_are_one_line(tmp_path: Path) -> None:
    settings = Settings()
    with pytest.raises(UserInputError, match=r"^unknown --format 'xml'; use one of auto, shared"):
        service.import_files(settings, [tmp_path], ImportOptions("xml"))
    with pytest.raises(UserInputError, match=r"nope: no such file or folder$"):
        service.import_files(settings, [tmp_path / "nope"], ImportOptions())
    with pytest.raises(DataNotFound, match=r"^no stored series match the filter; see `pivotal data info`"):
        service.gaps(settings, symbol="BTC/USDT")
    with pytest.raises(DataNotFound, match=r"^no stored candles for binance BTC/USDT 1h: the store is empty; import first"):
        service.export(settings, "binance", "BTC/USDT", "1h", tmp_path / "x.parquet")
    with pytest.raises(BarsError, match=r"^unknown timeframe '7m'"):
        service.export(settings, "binance", "BTC/USDT", "7m", tmp_path / "x.parquet")
    with pytest.raises(UserInputError, match=r"^unknown timeframe '1H'"):
        service.download(settings, "binance", ["BTC/USDT"], "1H", T0)
    assert not (tmp_path / "x.parquet").exists()
