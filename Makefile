# Leadflow — `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Serving needs only Leadflow and its dependencies; the dev tools (pytest, Playwright,
# mypy, ruff...) are for `make test` and `make lint`. A dev install serves too.
SERVE_STAMP := $(VENV)/.installed-serve

.DEFAULT_GOAL := help
.PHONY: help install serve worker test lint fmt check-migrations bench-intake bench-pipeline bench-dedup bench-backtest clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[1m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP) $(SERVE_STAMP)

$(SERVE_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $(SERVE_STAMP)

install: $(STAMP) ## Create the virtualenv in .venv with Leadflow and its dev tools

serve: $(SERVE_STAMP) ## Run Leadflow on http://127.0.0.1:8000 (embedded PostgreSQL + demo config unless configured)
	$(BIN)/leadflow serve $(ARGS)

worker: $(SERVE_STAMP) ## Run a worker process only
	$(BIN)/leadflow worker $(ARGS)

test: $(STAMP) ## Run the whole test suite (machine's PostgreSQL/Redis if LEADFLOW_TEST_* set, else embedded)
	$(BIN)/pytest

lint: $(STAMP) ## ruff (lint + format check) and mypy --strict
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

fmt: $(STAMP) ## Format and auto-fix with ruff
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

check-migrations: $(STAMP) ## Fail if the models and the migrations disagree (alembic check)
	$(BIN)/leadflow migrate --check

bench-intake: $(STAMP) ## Intake vs a bare durable FastAPI endpoint (one INSERT + COMMIT), 32 and 64 connections
	$(BIN)/python -m bench.intake

bench-pipeline: $(STAMP) ## Leads/s (1 and 2 workers), latency at 50/s, recovery after a 30 s outage
	$(BIN)/python -m bench.pipeline
	$(BIN)/python -m bench.outage

bench-dedup: $(STAMP) ## Pairwise precision, recall, F1 of leadflow dedup vs Splink (fake_1000, FEBRL3, FEBRL4)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench.dedup_quality
	$(BIN)/python -m bench.dedup_lookup

bench-backtest: $(STAMP) ## Seconds for leadflow backtest on 100,000 generated leads (target < 10 s); appends to bench/RESULTS.md
	$(BIN)/python -m bench.backtest --record

clean: ## Remove the virtualenv and caches (local data lives in LEADFLOW_DATA_DIR)
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
