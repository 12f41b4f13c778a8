#!/usr/bin/env bash
# Fails when detect-secrets finds anything that looks like a credential in the tracked tree.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python scripts/secret_scan.py
