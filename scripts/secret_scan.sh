#!/usr/bin/env bash
# Fails when detect-secrets finds anything that looks like a credential in the tracked tree.
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files | grep -vE '\.(parquet|png|lock)$' || true)
# shellcheck disable=SC2086
.venv/bin/detect-secrets scan $files | .venv/bin/python -c '
import json, sys
found = json.load(sys.stdin)["results"]
for path, hits in found.items():
    for h in hits:
        print(f"possible secret: {path}:{h[\"line_number\"]} ({h[\"type\"]})")
sys.exit(1 if found else 0)
'
echo "secret scan: clean"
