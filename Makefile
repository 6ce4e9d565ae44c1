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

.PHONY: setup run test lint clean

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

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check src tasks flows tests
	$(BIN)/ruff format --check src tasks flows tests

clean:
	rm -rf artifacts .prefect .pytest_cache
