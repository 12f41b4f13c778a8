# Two entry points: `make demo` (install what the demo needs, import ../shared/data, backtest a strategy with charts)
# and `make test` (install with the dev, cluster and compare extras that CI needs, lint, tests).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED_DATA ?= ../shared/data
DEMO_OUT ?= pivotal-out/demo

.PHONY: install install-dev demo test test-unit lint bench

# Two stamps: the demo needs only the package's own dependencies; lint, tests and benchmarks need the extras.
$(BIN)/.installed-demo: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

$(BIN)/.installed-dev: $(BIN)/.installed-demo
	$(BIN)/pip install -q -e '.[dev,cluster,compare]'
	touch $@

install: $(BIN)/.installed-demo

install-dev: $(BIN)/.installed-dev

# LIQUIDITY SWEEP V3 with its default parameters on 9.5 years of Coinbase BTC/USD 4h bars, beside buy-and-hold;
# summary.json, trades.csv, equity.png and equity.html go to $(DEMO_OUT).
demo: install
	$(BIN)/pivotal data import $(SHARED_DATA)
	$(BIN)/pivotal backtest --strategy liquidity_sweep -e coinbase -s BTC/USD -t 4h --out $(DEMO_OUT)

lint: install-dev
	$(BIN)/ruff check .
	bash scripts/secret_scan.sh
	$(BIN)/lint-imports
	$(BIN)/mypy

test: lint
	bash scripts/run_tests.sh

test-unit: install-dev
	bash scripts/run_tests.sh -m unit

bench: install-dev
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done
