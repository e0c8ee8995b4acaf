# Crypto Price Server: the developer entry points (GNU make).
#
#   make run      create .venv, install, serve on http://127.0.0.1:8000 (embedded defaults)
#   make test     the whole test suite (needs the PostgreSQL and Redis described in README.md)
#
# Override any variable on the command line: make run PORT=9000 WORKERS=2

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
VENV ?= .venv
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 1
PYTEST_ARGS ?=

BIN := $(VENV)/bin
# Written after a successful install; the install runs again only when pyproject.toml
# is newer than it (or the venv is new).
STAMP := $(VENV)/.installed
APP := interfaces.http.app:create_app

export AERICH_NO_TORTOISE_V1_WARNING := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help install run test migrate lint format bench clean clean-data

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) \
		| awk 'BEGIN { FS = ":.*## " } { printf "  make %-11s %s\n", $$1, $$2 }'

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is needed, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev]'
	@touch $@

install: $(STAMP) ## create .venv and install the project with its dev tools

run: $(STAMP) ## serve on HOST:PORT (embedded PostgreSQL and cache unless DATABASE_URL/REDIS_URL are set)
	$(BIN)/sanic $(APP) --factory --host $(HOST) --port $(PORT) --workers $(WORKERS)

test: $(STAMP) ## run the whole test suite (PYTEST_ARGS="-x -k name" to narrow it)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

migrate: $(STAMP) ## apply the aerich migrations to DATABASE_URL
	@if [ -z "$${DATABASE_URL:-}" ]; then \
		echo "make migrate: set DATABASE_URL=postgres://user:password@host:5432/dbname" \
			"(the embedded database of 'make run' is migrated by the server itself)" >&2; \
		exit 1; \
	fi
	$(BIN)/aerich -c aerich.ini upgrade

lint: $(STAMP) ## ruff check and ruff format --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP) ## run every bench/*.py (those not starting with _) as a module
	@shopt -s nullglob; scripts=(bench/[!_]*.py); \
	if (( $${#scripts[@]} == 0 )); then echo "no benchmarks: bench/*.py not found"; exit 0; fi; \
	for script in "$${scripts[@]}"; do \
		module="bench.$$(basename "$$script" .py)"; \
		echo "==> python -m $$module"; \
		$(BIN)/python -m "$$module"; \
	done

clean: ## remove .venv, build output and caches (keeps data/)
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
	find . -path ./data -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

clean-data: ## remove data/: the embedded database and the generated dev JWT secret
	rm -rf data
