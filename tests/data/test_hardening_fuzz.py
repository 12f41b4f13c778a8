"""Issue #9: bounded fuzzing of every importer over malformed CSV, Parquet, zip and JSON.

Properties, for any input: ``import_file`` returns a result (no exception escapes), an error is a known one (never
the dispatcher's "internal error" fallback, never more than one line), and a failed file leaves the store unchanged.
Bounded so the whole module takes a few seconds (max_examples per test below); hermetic, hand-written bars only.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pivotal.data.duckdb_store import DuckDBStore
from pivotal.data.importers import ImportOptions
from pivotal.data.importers.dispatch import INTERNAL_ERROR, import_file
from pivotal.data.store import MarketStore

pytestmark = pytest.mark.unit

# CI runs a fixed, small sample (derandomized: the same examples every run); PIVOTAL_FUZZ_EXAMPLES=2000 hunts longer.
EXAMPLES = int(os.environ.get("PIVOTAL_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize="PIVOTAL_FUZZ_EXAMPLES" not in os.environ,
)
T0 = 1_709_251_200_000  # 2024-03-01 00:00 UTC
MINUTE = 60_000
GOOD_ROWS = [[T0 + i * MINUTE, 100.0 + i, 101.5 + i, 99.5 + i, 101.0 + i, 1.5 + i] for i in range(3)]

# Cells that have broken parsers before: units, overflow, signs, NaN spellings, separators, quotes, unicode.
TRICKY = [
    "", " ", "nan", "NaN", "inf", "-inf", "1e400", "-0", "0", "1709251200", "1709251200000", "1709251200000000",
    "1709251200000000000", "99999999999999999999", "-60", "1709251200.0004", "12,5", '"', "'", "\x00", "é", "True",
    "2024-03-01T00:00:00Z", "2024-13-45", "0x10", "1_000",
]  # fmt: skip
cells = st.one_of(
    st.sampled_from(TRICKY),
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet='0123456789.-+eE,;" \tNa', max_size=12),
)


def kline_text(rows: list[list[object]]) -> str:
    return "".join(",".join(str(v) for v in [*row, 0, 0, 0, 0, 0, 0]) + "\n" for row in rows)


@contextmanager
def store_and_folder() -> Iterator[tuple[MarketStore, Path]]:
    with tempfile.TemporaryDirectory() as tmp:
        store = DuckDBStore(Path(tmp) / "fuzz.duckdb")
        try:
            yield store, Path(tmp)
        finally:
            store.close()


def snapshot(store: MarketStore) -> list[tuple[object, ...]]:
    return sorted((s.exchange, s.symbol, s.timeframe, s.first_ts, s.last_ts, s.rows) for s in store.series())


def check(store: MarketStore, path: Path, options: ImportOptions | None = None) -> None:
    """The fuzz property: a result, a known one-line error, and nothing written for a failed file."""
    before = snapshot(store)
    result = import_file(store, path, options or ImportOptions())
    assert result.status in ("ok", "error", "skipped"), result
    assert INTERNAL_ERROR not in result.message, result.message
    assert "\n" not in result.message, result.message
    if result.status != "ok":
        assert snapshot(store) == before, f"{result.message} but the store changed"
    else:
        assert result.rows_written == result.rows_read


def mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    raw = bytearray(data)
    for at, byte in edits:
        raw[at % len(raw)] = byte
    return bytes(raw[:cut] if cut is not None else raw)


edits = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6)
cuts = st.one_of(st.none(), st.integers(0, 400))


@FUZZ
@given(
    rows=st.lists(st.lists(cells, min_size=6, max_size=6), min_size=1, max_size=5),
    keep_good=st.booleans(),
    header=st.booleans(),
    extra=st.integers(-3, 2),
)
def test_fuzz_binance_kline_csv(rows: list[list[str]], keep_good: bool, header: bool, extra: int) -> None:
    body = [*GOOD_ROWS[:1], *rows, *GOOD_ROWS[1:]] if keep_good else rows
    text = kline_text(body)
    if extra < 0:  # ragged rows: too few columns
        text = "\n".join(line.rsplit(",", -extra)[0] for line in text.splitlines()) + "\n"
    elif extra > 0:
        text = text.replace("\n", ",7" * extra + "\n", 1)
    if header:
        text = "open_time,open,high,low,close,volume,close_time,qv,n,tb,tq,ignore\n" + text
    with store_and_folder() as (store, folder):
        path = folder / "BTCUSDT-1m-2024-03.csv"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        check(store, path)


@FUZZ
@given(edits=edits, cut=cuts, deflate=st.booleans())
def test_fuzz_damaged_zip(edits: list[tuple[int, int]], cut: int | None, deflate: bool) -> None:
    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        archive.writestr("BTCUSDT-1m-2024-03.csv", kline_text(GOOD_ROWS))
    with store_and_folder() as (store, folder):
        path = folder / "BTCUSDT-1m-2024-03.zip"
        path.write_bytes(mutate(buffer.getvalue(), edits, cut))
        check(store, path)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**80), 2**80) | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=7) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=30,
)


@FUZZ
@given(
    rows=st.lists(st.one_of(json_values, st.lists(json_values, min_size=6, max_size=6)), max_size=5),
    depth=st.sampled_from([0, 0, 0, 50, 5_000, 200_000]),
    edits=edits,
    mutate_text=st.booleans(),
)
def test_fuzz_freqtrade_json(rows: list[object], depth: int, edits: list[tuple[int, int]], mutate_text: bool) -> None:
    text = json.dumps([*GOOD_ROWS, *rows])
    if depth:
        text = "[" * depth + text + "]" * depth
    data = mutate(text.encode(), edits, None) if mutate_text else text.encode()
    with store_and_folder() as (store, folder):
        path = folder / "binance" / "BTC_USDT-1m.json"
        path.parent.mkdir()
        path.write_bytes(data)
        check(store, path)


def timestamp_arrays() -> st.SearchStrategy[pa.Array]:
    ints = st.lists(st.integers(-(2**63), 2**63 - 1), min_size=3, max_size=3)
    near = st.lists(st.integers(T0 - 10**6, T0 + 10**6), min_size=3, max_size=3)
    units = st.sampled_from(["s", "ms", "us", "ns"])
    return st.one_of(
        st.builds(lambda v: pa.array(v, pa.int64()), st.one_of(ints, near)),
        st.builds(lambda v, u: pa.array(v, pa.timestamp(u)), st.one_of(ints, near), units),
        st.builds(lambda v, u: pa.array(v, pa.timestamp(u, tz="UTC")), near, units),
        st.builds(lambda v: pa.array(v, pa.float64()), st.lists(st.floats(), min_size=3, max_size=3)),
        st.builds(lambda v: pa.array(v, pa.string()), st.lists(st.sampled_from(TRICKY), min_size=3, max_size=3)),
        st.builds(lambda v: pa.array(v, pa.int64()), st.lists(st.one_of(st.none(), st.just(T0)), min_size=3, max_size=3)),
        st.builds(lambda v: pa.array(v, pa.date32()), st.lists(st.integers(-(10**6), 10**6), min_size=3, max_size=3)),
        st.just(pa.array([True, False, True])),
    )


@FUZZ
@given(
    timestamp=timestamp_arrays(),
    close=st.lists(st.floats(), min_size=3, max_size=3),
    text_close=st.booleans(),
    drop=st.sampled_from([None, "open", "timestamp"]),
    edits=edits,
    damage=st.booleans(),
)
def test_fuzz_shared_parquet(
    timestamp: pa.Array, close: list[float], text_close: bool, drop: str | None, edits: list[tuple[int, int]], damage: bool
) -> None:
    columns: dict[str, pa.Array] = {
        "timestamp": timestamp,
        "open": pa.array([r[1] for r in GOOD_ROWS]),
        "high": pa.array([r[2] for r in GOOD_ROWS]),
        "low": pa.array([r[3] for r in GOOD_ROWS]),
        "close": pa.array([str(c) for c in close]) if text_close else pa.array(close),
        "volume": pa.array([r[5] for r in GOOD_ROWS]),
    }
    if drop:
        del columns[drop]
    with store_and_folder() as (store, folder):
        path = folder / "binance" / "BTCUSDT-1m.parquet"
        path.parent.mkdir()
        try:
            pq.write_table(pa.table(columns), path)
        except pa.ArrowInvalid:  # Parquet has no timestamp[s]: values that overflow as ms cannot even be written
            assume(False)
        if damage:
            path.write_bytes(mutate(path.read_bytes(), edits, None))
        check(store, path)


@FUZZ
@given(
    rows=st.lists(st.lists(cells, min_size=6, max_size=6), min_size=0, max_size=4),
    header=st.sampled_from(["ts,o,h,l,c,v", "", "x"]),
)
def test_fuzz_generic_csv(rows: list[list[str]], header: str) -> None:
    text = header + "\n" + "".join(",".join(r) + "\n" for r in rows)
    options = ImportOptions(fmt="csv", exchange="kraken", symbol="BTC/USD", timeframe="1m", mapping=MAPPING)
    with store_and_folder() as (store, folder):
        path = folder / "bars.csv"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        check(store, path, options)


MAPPING = {"ts": "ts", "open": "o", "high": "h", "low": "l", "close": "c", "volume": "v"}
