#!/usr/bin/env bash
# Sets up .venv with the test extras from this repo's own files (versions pinned by
# constraints.txt), runs the linter (ruff.toml), then the test suite.
# Arguments go to pytest (e.g. ./run_tests.sh -x tests/test_faults.py).
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
.venv/bin/python -m ruff check --quiet .
exec .venv/bin/python -m pytest "$@"
