"""Fail when detect-secrets finds anything that looks like a credential in the tracked tree."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SKIP_SUFFIXES = {".parquet", ".png", ".lock", ".zip", ".feather"}


def main() -> int:
    root = Path(__file__).resolve().parents[1]
    tracked = subprocess.run(["git", "ls-files"], cwd=root, check=True, capture_output=True, text=True).stdout.split()
    files = [f for f in tracked if Path(f).suffix not in SKIP_SUFFIXES]
    scan = subprocess.run(
        [str(Path(sys.executable).parent / "detect-secrets"), "scan", *files],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    )
    found = json.loads(scan.stdout)["results"]
    for path, hits in found.items():
        for hit in hits:
            print(f"possible secret: {path}:{hit['line_number']} ({hit['type']})")
    if found:
        return 1
    print(f"secret scan: {len(files)} files clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
