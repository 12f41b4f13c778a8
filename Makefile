# Two entry points: `make demo` (install what the demo needs, import ../shared/data, replay a strategy and a model)
# and `make test` (install with the dev, cluster and compare extras that CI needs, lint, tests).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SHARED_DATA ?= ../shared/data
DEMO_OUT ?= pivotal-out/demo

.PHONY: install install-dev demo dashboard test test-unit lint bench web-vendor

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

# A replay a trader can watch (pivotal run, the trading node under the risk engine): SMA cross on Binance BTC/USDT and
# ETH/USDT 1h in one portfolio (docs/examples/demo.toml), then a small CNN through the orchestrator on BTC/USDT bars it
# never saw (docs/examples/demo-model.toml; trained first when its checkpoint is missing, about a minute on 2 CPU
# cores). Status and summary on the terminal; trades.csv, summary.json and the charts go to $(DEMO_OUT)/<run>.
# It ends in the browser: the model's replay behind the HTTP API and the dashboard (as make dashboard), whose address
# and token it prints; Ctrl-C stops the server.
DEMO_MODEL ?= demo-cnn
demo: install
	$(BIN)/pivotal data import $(SHARED_DATA)
	$(BIN)/pivotal run --config docs/examples/demo.toml --out $(DEMO_OUT)/sma_cross
	@$(BIN)/pivotal models show $(DEMO_MODEL) > /dev/null 2>&1 || echo "no $(DEMO_MODEL) checkpoint yet: training a small CNN on BTC/USDT 1h, June 2023 to May 2024 (about a minute on 2 CPU cores, once)"
	$(BIN)/pivotal models show $(DEMO_MODEL) > /dev/null 2>&1 || $(BIN)/pivotal train --model cnn --name $(DEMO_MODEL) -e binance -s BTC/USDT -t 1h --epochs 2 --walk-forward 300/1/60 --folds 1 --start 2023-06-01 --end 2024-06-01 --threads 2
	$(BIN)/pivotal run --config docs/examples/demo-model.toml --out $(DEMO_OUT)/model
	@echo "the dashboard and the annotation tool: open the addresses below (their #token part unlocks the controls; Ctrl-C stops)"
	$(BIN)/pivotal serve --run docs/examples/demo-model.toml --speed 3600

# The model's replay (docs/examples/demo-model.toml: the CNN through the orchestrator under the risk engine) behind the
# HTTP API and the browser dashboard at http://127.0.0.1:8765/ (after `make demo`, which imports the data and trains
# the model): candles and pivots on four synchronized panes, the model's predictions and actions, trades, PnL, the
# risk state; "start inference" replays the model over the chart with live training. Serves until Ctrl-C.
dashboard: install
	@echo "the dashboard and the annotation tool: open the addresses below (their #token part unlocks the controls; Ctrl-C stops)"
	$(BIN)/pivotal serve --run docs/examples/demo-model.toml --speed 3600

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

# Re-copy the dashboard's chart library (lightweight-charts, pinned in web/package-lock.json) and its licence into
# src/pivotal/api/static/vendor/ (needs npm; the copies are committed, so serving and CI need no npm or internet).
web-vendor:
	sh web/vendor.sh
