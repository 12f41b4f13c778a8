# Two entry points: `make demo` (install + main job on the embedded DuckDB store) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED_DATA ?= ../shared/data

.PHONY: install demo test test-unit lint bench

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,cluster,compare]'
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/pivotal data import $(SHARED_DATA)
	$(BIN)/pivotal data info

lint: install
	$(BIN)/ruff check .
	bash scripts/secret_scan.sh
	$(BIN)/lint-imports
	$(BIN)/mypy

test: lint
	bash scripts/run_tests.sh

test-unit: install
	bash scripts/run_tests.sh -m unit

bench: install
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done
