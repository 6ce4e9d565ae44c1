# sentiment-lora: `make run` runs the pipeline end to end, `make test` runs the tests.
# Both create .venv and install the pinned dependencies first (torch stays on the CPU wheel:
# every pip call passes -c constraints.txt).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt
SHARED_SST2 := $(abspath ../shared/data/sst2)
ARGS ?=

export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

STACK := $(BIN)/python scripts/prefect_stack.py
# Database of the stack's server: `make stack DB=postgres` (or SENTIMENT_LORA_DB=postgres); the
# PostgreSQL port: DB_PORT=... (or SENTIMENT_LORA_DB_PORT; default 5433, else a free one).
DB ?= $(or $(SENTIMENT_LORA_DB),sqlite)
STACK_DB_ARGS := --db $(DB) $(if $(DB_PORT),--db-port $(DB_PORT))
STACK_DB_DEPS := $(if $(filter postgres,$(DB)),postgres)

.PHONY: setup run test e2e lint docs clean browser postgres server deploy stack stack-down

setup: $(VENV)/.installed data/sst2/train.tsv

$(VENV)/.installed: requirements.txt constraints.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements.txt
	$(PIP) --no-deps -e .
	@touch $@

# SST-2: link the local mirror when there is one, else download glue/sst2 from the hub.
data/sst2/train.tsv: | $(VENV)/.installed
	@mkdir -p data
	@if [ -f "$(SHARED_SST2)/train.tsv" ]; then \
		ln -sfn "$(SHARED_SST2)" data/sst2 && echo "data/sst2 -> $(SHARED_SST2)"; \
	else \
		$(BIN)/sentiment-lora fetch-data data/sst2; \
	fi

run: setup
	$(BIN)/python flows/full.py $(ARGS)

test: setup browser postgres
	$(BIN)/python -m pytest -q

# Only the end-to-end tests: a real Prefect server, pools, deployments, workers and a browser.
e2e: setup browser postgres
	$(BIN)/python -m pytest -q tests/e2e

# Headless Chromium for the Prefect UI test (Debian package; Playwright cannot download one here).
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

# PostgreSQL (Debian package) for `make stack DB=postgres` and tests/e2e/test_postgres.py.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		(apt-get update -qq && apt-get install -y -qq postgresql >/dev/null)

# Local Prefect stack (SQLite under .prefect/, bound to 127.0.0.1:4200). `make stack` = server +
# pools + deployments + one worker per pool + report server; `make stack-down` stops it (and the
# PostgreSQL cluster under .prefect/postgres that `make stack DB=postgres` started).
server: setup $(STACK_DB_DEPS)
	$(STACK) server $(STACK_DB_ARGS)
deploy: setup
	$(STACK) deploy
	$(STACK) workers
stack: setup $(STACK_DB_DEPS)
	$(STACK) up $(STACK_DB_ARGS)
stack-down:
	$(STACK) down

# The option tables of docs/configuration.md, generated from the configuration models.
docs: setup
	$(BIN)/python -m sentiment_lora.option_docs

lint: setup
	$(BIN)/ruff check src tasks flows tests
	$(BIN)/ruff format --check src tasks flows tests

clean:
	rm -rf artifacts .prefect .pytest_cache

.PHONY: bench bench-quick
bench: setup
	$(BIN)/python bench/run_bench.py $(BENCH_ARGS)
bench-quick: setup
	$(BIN)/python bench/run_bench.py --quick
