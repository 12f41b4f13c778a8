"""Peak memory of importing one large Binance kline dump zip (run: .venv/bin/python benchmarks/bench_import_memory.py).

The zip is built at run time in a temp folder from real Binance BTC/USDT 1m bars of ../shared/data (the yearly Parquet
files, concatenated and written in the dump's 12-column CSV format, ~90 MB uncompressed; nothing is kept). Each import
runs in its own child process into a fresh DuckDB file; its peak RSS is read with
``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` in a small intermediate process (that figure is the largest child
so far, so every measurement gets a fresh parent). Modes, all measured in the same run:

- ``before``: the importers as they were before streaming (the git parent of the commit that added
  ``importers/streaming.py``, or ``--before-ref``), extracted into a temp folder: whole text, then a DataFrame of strings;
- ``whole``: today's code with ``ImportOptions(chunk_rows=0)`` (one chunk: the whole file, without the text copy);
- ``chunked``: today's code with the default chunk (``CHUNK_ROWS``);
- ``baseline``: the same child importing pivotal and opening the store, without importing the file.

The ratio before/chunked is printed, and the chunked peak above the baseline per stored row (the "bytes per row"
part of the bound in docs/ingest.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "binance"
NAME = "BTCUSDT-1m-2024-01"  # a dump name: the importer takes the series from it
STREAMING = "src/pivotal/data/importers/streaming.py"

WORKER = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from pivotal.data.duckdb_store import DuckDBStore
from pivotal.data.importers import ImportOptions, import_path
mode, zip_path, db = sys.argv[2], sys.argv[3], sys.argv[4]
store = DuckDBStore(db)
t0 = time.perf_counter()
rows = 0
if mode != "baseline":
    options = ImportOptions(chunk_rows=0) if mode == "whole" else ImportOptions()
    report = import_path(store, zip_path, options)
    assert report.ok, [f.message for f in report.files]
    rows = report.rows_written
seconds = time.perf_counter() - t0
stored = store.query("SELECT COUNT(*) FROM candle_bars")[0][0]
store.close()
print(json.dumps({"rows": rows, "stored": stored, "seconds": seconds}))
"""

# The intermediate process: runs one worker and reports RUSAGE_CHILDREN (KiB on Linux) for it alone.
MEASURE = """
import json, resource, subprocess, sys
out = subprocess.run(sys.argv[1:], capture_output=True, text=True)
if out.returncode:
    sys.exit(out.stderr)
result = json.loads(out.stdout.strip().splitlines()[-1])
result["peak_kib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps(result))
"""


def build_zip(folder: Path, target_mb: float) -> tuple[Path, int, int]:
    """A Binance kline dump zip of real 1m bars, ~``target_mb`` MB of CSV; returns (path, rows, CSV bytes)."""
    import numpy as np
    import pandas as pd

    pieces: list[pd.DataFrame] = []
    size = 0.0
    for year in range(2021, 2027):
        bars = pd.read_parquet(DATA / f"BTCUSDT-1m-{year}.parquet")
        ts = bars["timestamp"].to_numpy(np.int64)
        zeros = np.zeros(len(bars), np.int64)
        frame = pd.DataFrame(
            {
                "open_time": ts,
                **{k: bars[k].to_numpy(np.float64) for k in ("open", "high", "low", "close", "volume")},
                "close_time": ts + 59_999,
                "quote_volume": zeros,
                "count": zeros,
                "taker_buy_volume": zeros,
                "taker_buy_quote_volume": zeros,
                "ignore": zeros,
            }
        )
        pieces.append(frame)
        size += len(frame.to_csv(index=False, header=False, float_format="%.8f").encode()) / 1e6
        if size >= target_mb:
            break
    # Binance writes prices and volumes with 8 decimals ("42283.58000000"), as here
    text = pd.concat(pieces, ignore_index=True).to_csv(index=False, header=False, float_format="%.8f")
    keep = text[: int(target_mb * 1e6)]
    keep = keep[: keep.rfind("\n") + 1]
    path = folder / f"{NAME}.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{NAME}.csv", keep)
    return path, keep.count("\n"), len(keep.encode())


def before_ref() -> str:
    """The parent of the commit that added the streaming module: the importers as they were before."""
    added = subprocess.run(
        ["git", "log", "--diff-filter=A", "--format=%H", "--", STREAMING], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return f"{added[-1]}^" if added else "HEAD"


def extract_src(ref: str, folder: Path) -> Path:
    """``src/pivotal`` at ``ref``, unpacked under ``folder``; returns the folder to put on ``sys.path``."""
    archive = subprocess.run(["git", "archive", ref, "src/pivotal"], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder / "src"


def measure(src: Path, mode: str, zip_path: Path, db: Path) -> dict[str, float]:
    worker = [sys.executable, "-c", WORKER, str(src), mode, str(zip_path), str(db)]
    out = subprocess.run([sys.executable, "-c", MEASURE, *worker], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=88.0, help="uncompressed CSV size of the zip (default 88 MB)")
    parser.add_argument("--before-ref", default=None, help="git ref of the pre-streaming importers (default: found)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        zip_path, rows, csv_bytes = build_zip(folder, args.mb)
        ref = args.before_ref or before_ref()
        old_src = extract_src(ref, folder / "before")
        print(f"zip: {zip_path.stat().st_size / 1e6:.1f} MB holding {csv_bytes / 1e6:.1f} MB of CSV, {rows:,} real 1m bars")
        short = subprocess.run(["git", "rev-parse", "--short", ref], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        print(f"before = {ref} ({short})")
        results: dict[str, dict[str, float]] = {}
        for mode, src in (("baseline", ROOT / "src"), ("before", old_src), ("whole", ROOT / "src"), ("chunked", ROOT / "src")):
            results[mode] = r = measure(src, "chunked" if mode == "before" else mode, zip_path, folder / f"{mode}.duckdb")
            if mode != "baseline":
                assert r["rows"] == rows == r["stored"], (mode, r, rows)
            print(f"{mode:9s} peak RSS {r['peak_kib'] / 1024:7.0f} MiB   import {r['seconds']:6.2f} s   rows {int(r['rows']):,}")
        base = results["baseline"]["peak_kib"]
        chunked = results["chunked"]["peak_kib"]
        print(f"peak before / chunked: {results['before']['peak_kib'] / chunked:.2f}x")
        print(f"peak whole  / chunked: {results['whole']['peak_kib'] / chunked:.2f}x")
        above = {m: (results[m]["peak_kib"] - base) * 1024 / rows for m in ("before", "whole", "chunked")}
        print("above the baseline per row: " + ", ".join(f"{m} {v:.0f} B" for m, v in above.items()))


if __name__ == "__main__":
    main()
