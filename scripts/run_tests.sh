#!/usr/bin/env bash
# The test command of the README. pytest's exit code 5 (no tests collected) counts as a failure here:
# a suite that runs nothing proves nothing.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
