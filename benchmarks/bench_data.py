"""Data-lake benchmark (run: .venv/bin/python benchmarks/bench_data.py [--quick]).

Real Binance spot candles from ../shared/data: the BTC/ETH/SOL USDT 1m yearly files 2021-2026 (2.31 M bars). To reach
a store of >= 10 M candles they are **replicated** under extra symbol names ("BTC1/USDT", ...: the same real bars
again); the output says how many rows are replicas. 4h and 1d series are resampled from the real 1h files (complete
buckets only). ``--quick``: BTC+ETH 2024-2025, no replicas. Each figure is compared with a reference measured in the
same run:

- ingest into DuckDB (``DuckDBStore.write_candles``: validation, integer series id, no PK index) vs the obvious design,
  ``INSERT ... ON CONFLICT`` into a table with PRIMARY KEY (exchange, symbol, timeframe, ts), on a fifth of the batches;
- ingest into PostgreSQL (validation + binary COPY) vs psycopg ``executemany`` INSERTs (20 k rows);
- as-of windows (ETH/USDT + reference BTC/USDT, 1m/1h/4h/1d x 300 bars, random t over the ETH 1m span, gaps included)
  via ``AsOfCache`` and via one SQL query per series, vs reading each whole series and filtering it with numpy;
- resample 1m -> 1h vs ``pandas.DataFrame.resample``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import psycopg

from pivotal.core.timeframes import timeframe_ms
from pivotal.data import sql
from pivotal.data.asof import NO_AGE_LIMIT, AsOfCache, asof_windows
from pivotal.data.candles import Candles
from pivotal.data.duckdb_store import DuckDBStore
from pivotal.data.postgres_store import PostgresStore
from pivotal.data.resample import resample

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance"
DSN = "postgresql://postgres@127.0.0.1:5432/test"
BASES = ("BTC", "ETH", "SOL")
TIMEFRAMES = ("1m", "1h", "4h", "1d")
WINDOW = 300
INGEST_GOAL_ROWS_PER_S = 2e6
ASOF_GOAL_MS = 2.0
PK = ("exchange", "symbol", "timeframe", "ts")
# The obvious design, as the ingest reference: one table keyed by the three strings and ts, upserted with ON CONFLICT.
PK_REFERENCE_DDL = """CREATE TABLE candles_pk (exchange TEXT, symbol TEXT, timeframe TEXT, ts BIGINT, open DOUBLE,
    high DOUBLE, low DOUBLE, close DOUBLE, volume DOUBLE, PRIMARY KEY (exchange, symbol, timeframe, ts))"""


def real_1m(base: str, years: range) -> list[Candles]:
    files = [DATA / f"{base}USDT-1m-{year}.parquet" for year in years]
    return [Candles.from_frame(pd.read_parquet(f), "binance", f"{base}/USDT", "1m") for f in files if f.exists()]


def real_higher(base: str) -> list[Candles]:
    """Real 1h bars, plus 4h and 1d resampled from them (complete buckets only)."""
    [hourly_file] = DATA.glob(f"{base}USDT-1h-20*.parquet")
    hourly = Candles.from_frame(pd.read_parquet(hourly_file), "binance", f"{base}/USDT", "1h")
    return [hourly, resample(hourly, "4h")[0], resample(hourly, "1d")[0]]


def renamed(candles: Candles, symbol: str) -> Candles:
    return Candles(
        candles.ts, candles.open, candles.high, candles.low, candles.close, candles.volume, "binance", symbol, candles.timeframe
    )


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def latencies_ms(fn: Callable[[int], object], times: np.ndarray) -> np.ndarray:
    out = np.empty(len(times))
    for i, t in enumerate(times):
        start = time.perf_counter()
        fn(int(t))
        out[i] = (time.perf_counter() - start) * 1000
    return out


class Report:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []

    def add(self, what: str, value: str, reference: str, ratio: str) -> None:
        self.rows.append((what, value, reference, ratio))
        print(f"  {what}: {value}  (reference {reference}; ratio {ratio})", flush=True)

    def print(self) -> None:
        widths = [max(len(r[i]) for r in [*self.rows, ("measure", "ours", "reference", "ratio")]) for i in range(4)]
        line = "  ".join(f"{{:<{w}}}" for w in widths)
        print("\n" + line.format("measure", "ours", "reference", "ratio"))
        print(line.format(*("-" * w for w in widths)))
        for row in self.rows:
            print(line.format(*row))


def bench_duckdb_ingest(path: Path, batches: list[Candles], report: Report) -> DuckDBStore:
    store = DuckDBStore(path)
    rows = sum(len(b) for b in batches)
    ours = timed(lambda: [store.write_candles(b) for b in batches])
    reference_batches = batches[: max(1, len(batches) // 5)]
    ref_rows = sum(len(b) for b in reference_batches)
    con = duckdb.connect(str(path.with_name("pk-reference.duckdb")))
    con.execute(PK_REFERENCE_DDL)
    upsert = sql.upsert("candles_pk", (*PK, *sql.BAR_VALUES), PK, sql.BAR_VALUES, "SELECT ?, ?, ?, * FROM b")

    def reference() -> None:
        for b in reference_batches:
            con.register("b", b.to_arrow())
            con.execute(upsert, [b.exchange, b.symbol, b.timeframe])

    ref = timed(reference)
    con.close()
    ours_rate, ref_rate = rows / ours, ref_rows / ref
    goal = "meets" if ours_rate >= INGEST_GOAL_ROWS_PER_S else "misses"
    report.add(
        f"DuckDB ingest, {rows / 1e6:.2f} M rows ({goal} goal 2 M/s)",
        f"{ours_rate / 1e6:.2f} M rows/s",
        f"PK ON CONFLICT {ref_rate / 1e6:.2f} M rows/s",
        f"{ours_rate / ref_rate:.1f}x",
    )
    again = timed(lambda: store.write_candles(batches[0]))
    report.add("DuckDB re-import (all rows replaced)", f"{len(batches[0]) / again / 1e6:.2f} M rows/s", "-", "-")
    return store


def bench_postgres_ingest(batches: list[Candles], report: Report) -> None:
    store = PostgresStore(DSN, f"pivotal_bench_{uuid.uuid4().hex[:10]}")
    try:
        rows = sum(len(b) for b in batches)
        ours = timed(lambda: [store.write_candles(b) for b in batches])
        sample = batches[0].slice(0, 20_000)
        records = [
            (999_999, *row) for row in zip(*(getattr(sample, f).tolist() for f in sql.BAR_COLUMNS.split(", ")), strict=True)
        ]
        insert = f"INSERT INTO candle_bars VALUES ({', '.join(['%s'] * 7)}) ON CONFLICT DO NOTHING"
        with psycopg.connect(DSN) as con:
            con.execute(f"SET search_path TO {store.schema}")
            ref = timed(lambda: con.cursor().executemany(insert, records))
        timescale = "hypertables" if store.timescale else "plain tables (no timescaledb here)"
        report.add(
            f"PostgreSQL ingest, {rows / 1e6:.2f} M rows, {timescale}",
            f"{rows / ours / 1e6:.2f} M rows/s",
            f"executemany {len(sample) / ref / 1e3:.0f} k rows/s",
            f"{(rows / ours) / (len(sample) / ref):.1f}x",
        )
    finally:
        store.drop_schema()
        store.close()


def bench_asof(store: DuckDBStore, t_range: tuple[int, int], probes: int, report: Report) -> None:
    rng = np.random.default_rng(1)
    times = rng.integers(t_range[0], t_range[1], size=probes)
    symbols, reference = ["ETH/USDT"], "BTC/USDT"
    cache = AsOfCache(store)
    # Random probe times fall into the real data's gaps too: measure retrieval, not the staleness refusal.
    args = (WINDOW, reference, NO_AGE_LIMIT)
    load = timed(lambda: cache.windows("binance", symbols, TIMEFRAMES, int(times[0]), *args))
    cached = latencies_ms(lambda t: cache.windows("binance", symbols, TIMEFRAMES, t, *args), times)
    sql_path = latencies_ms(lambda t: asof_windows(store, "binance", symbols, TIMEFRAMES, t, *args), times[:60])

    def naive(t: int) -> None:
        for symbol in (*symbols, reference):
            for tf in TIMEFRAMES:
                bars = store.candles("binance", symbol, tf)  # the whole series, then a numpy filter
                closed = np.flatnonzero(bars.ts + timeframe_ms(tf) <= t)[-WINDOW:]
                _ = bars.close[closed]

    naive_ms = latencies_ms(naive, times[:5])
    ref = float(np.median(naive_ms))
    for label, values in (("AsOfCache (numpy searchsorted)", cached), ("SQL, one query per series", sql_path)):
        median, p99 = float(np.median(values)), float(np.percentile(values, 99))
        goal = "meets" if median <= ASOF_GOAL_MS else "misses"
        report.add(
            f"as-of 8 windows x {WINDOW}: {label} ({goal} goal 2 ms)",
            f"median {median:.3f} ms, p99 {p99:.3f} ms",
            f"naive full read {ref:.1f} ms",
            f"{ref / median:.0f}x",
        )
    report.add("AsOfCache first load of the 8 series", f"{load * 1000:.0f} ms", "-", "-")


def bench_resample(batches: list[Candles], report: Report) -> None:
    rows = sum(len(b) for b in batches)
    ours = timed(lambda: [resample(b, "1h") for b in batches])

    def pandas_reference() -> None:
        for b in batches:
            frame = b.to_frame().set_index(pd.to_datetime(b.ts, unit="ms"))
            frame.resample("1h").agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})

    ref = timed(pandas_reference)
    report.add(
        f"resample 1m -> 1h, {rows / 1e6:.2f} M real bars",
        f"{rows / ours / 1e6:.1f} M bars/s",
        f"pandas.resample {rows / ref / 1e6:.1f} M bars/s",
        f"{ref / ours:.1f}x",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="BTC+ETH 2024-2025 only, no replicas, fewer probes")
    args = parser.parse_args()
    years = range(2024, 2026) if args.quick else range(2021, 2027)
    bases = BASES[:2] if args.quick else BASES
    replicas = 0 if args.quick else 4
    real = [b for base in bases for b in real_1m(base, years)]
    higher = [b for base in bases for b in real_higher(base)]
    copies = [renamed(b, f"{b.symbol.split('/')[0]}{k}/USDT") for k in range(1, replicas + 1) for b in real]
    batches = [*real, *higher, *copies]
    total, replica_rows = sum(len(b) for b in batches), sum(len(b) for b in copies)
    print(
        f"store: {total / 1e6:.2f} M candles ({replica_rows / 1e6:.2f} M of them replicas of real bars under extra symbol names)"
    )
    print("machine: shared with other engineers' jobs; absolute figures are noisy, ratios are measured in the same run")
    report = Report()
    with tempfile.TemporaryDirectory() as tmp:
        store = bench_duckdb_ingest(Path(tmp) / "bench.duckdb", batches, report)
        eth_minutes = store.candles("binance", "ETH/USDT", "1m")
        bench_asof(store, (int(eth_minutes.ts[0]), int(eth_minutes.ts[-1])), 300 if args.quick else 2000, report)
        store.close()
    bench_postgres_ingest(real if not args.quick else real[:1], report)
    bench_resample(real, report)
    report.print()


if __name__ == "__main__":
    main()
