# Taskpipe: `make run` brings up the whole platform, `make test` runs the whole suite.
# Both work on a fresh checkout with nothing but Python 3.11+: uv is bootstrapped into
# .taskpipe/tools when it is not on PATH, and devstack finds, starts or embeds PostgreSQL/Redis.

SHELL := /bin/bash
UV_VERSION := 0.13.9
TOOLS := .taskpipe/tools
UV := $(shell command -v uv 2>/dev/null || echo $(TOOLS)/bin/uv)
PY := .venv/bin/python
# Local runs are development unless told otherwise (the settings default to production).
DEVSTACK := TASKPIPE_ENV=$${TASKPIPE_ENV:-development} $(PY) -m common.devstack run
PYTEST_ARGS ?=
USERS ?= 1000
SPAWN_RATE ?= 10
DURATION ?= 3m
LADDER ?= 250,500,1000,1500,2000
LADDER_DURATION ?= 2m
LOADTEST_ARGS ?=

.PHONY: help install run test lint format typecheck migrate loadtest loadtest-ladder clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(TOOLS)/bin/uv:
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --all-groups --compile-bytecode
	@touch $@

install: .venv/.synced ## create .venv with the locked dependencies

run: install ## API :8000, worker, beat, Flower :5555 and a mail catcher :1025, on local PG/Redis
	$(DEVSTACK) --migrate -- $(PY) -m honcho start -f Procfile

migrate: install ## apply migrations to the configured database
	$(DEVSTACK) --migrate -- true

lint: install ## ruff lint and format check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install ## apply ruff fixes and formatting
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

typecheck: install ## mypy --strict over api, common, worker
	$(PY) -m mypy

test: lint typecheck ## lint, type-check, then the whole suite with coverage (fails under 85 %)
	$(DEVSTACK) -- $(PY) -m pytest --cov --cov-report=term --cov-report=xml:.taskpipe/coverage.xml $(PYTEST_ARGS)

loadtest: install ## Locust, production mode: USERS=1000 SPAWN_RATE=10 DURATION=3m (report in loadtests/reports/)
	$(PY) -m loadtests.run --users $(USERS) --spawn-rate $(SPAWN_RATE) --duration $(DURATION) $(LOADTEST_ARGS)

loadtest-ladder: install ## one run per user count in LADDER, and a PNG of p95 and RPS against users
	$(PY) -m loadtests.run --ladder $(LADDER) --spawn-rate $(SPAWN_RATE) --duration $(LADDER_DURATION) $(LOADTEST_ARGS)

clean: ## remove the venv, tools and local data
	rm -rf .venv .taskpipe .mypy_cache .ruff_cache .pytest_cache
