# Taskpipe: `make run` brings up the whole platform, `make test` runs the whole suite.
# Both work on a fresh checkout with nothing but Python 3.11+: uv is bootstrapped into
# .taskpipe/tools when it is not on PATH, and devstack finds, starts or embeds PostgreSQL/Redis.
# DEVSTACK_OPTIONS="--embedded always" runs them on the embedded servers (as CI does for
# `make test-servers`).

SHELL := /bin/bash
UV_VERSION := 0.13.9
TOOLS := .taskpipe/tools
UV := $(shell command -v uv 2>/dev/null || echo $(TOOLS)/bin/uv)
PY := .venv/bin/python
DEVSTACK_OPTIONS ?=
DEVSTACK := $(PY) -m devstack run $(DEVSTACK_OPTIONS)
PYTEST_ARGS ?=
USERS ?= 1000
SPAWN_RATE ?= 10
DURATION ?= 3m
LADDER ?= 250,500,1000,1500,2000
LADDER_DURATION ?= 2m
LOADTEST_ARGS ?=

.PHONY: help install run test test-servers test-drills lint format typecheck migrate loadtest loadtest-ladder compose-smoke clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' \
		'{ names[NR] = $$1; texts[NR] = $$2; if (length($$1) > width) width = length($$1) } \
		END { for (i = 1; i <= NR; i++) printf "  %-*s  %s\n", width, names[i], texts[i] }'

$(TOOLS)/bin/uv:
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --all-groups --compile-bytecode
	@touch $@

# What running needs and no more (the runtime, honcho, the mail catcher, embedded servers);
# --inexact keeps whatever `make install` added.
.venv/.synced-run: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --inexact --no-default-groups --group run --group embedded --compile-bytecode
	@touch $@

install: .venv/.synced ## create .venv with every locked dependency (tests, linters, Locust too)

run: .venv/.synced-run ## API :8000, worker, beat, Flower :5555, mail catcher :1025; Ctrl-C stops
	@$(PY) -m devstack up $(DEVSTACK_OPTIONS)

migrate: install ## apply migrations to the configured database
	$(DEVSTACK) --migrate -- true

lint: install ## ruff lint and format check; import rules (.importlinter)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	.venv/bin/lint-imports --no-cache

format: install ## apply ruff fixes and formatting
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

typecheck: install ## mypy --strict over api, common, worker, devstack
	$(PY) -m mypy

test: lint typecheck ## lint, type-check, then the whole suite with coverage (fails under 85 %)
	$(DEVSTACK) -- $(PY) -m pytest --cov --cov-report=term --cov-report=xml:.taskpipe/coverage.xml $(PYTEST_ARGS)

test-servers: install ## the tests that talk to PostgreSQL and Redis (integration, contract, e2e), no lint or coverage
	$(DEVSTACK) -- $(PY) -m pytest tests/integration tests/contract tests/e2e $(PYTEST_ARGS)

test-drills: install ## outage drills against real processes (Redis, PostgreSQL, worker kills, SMTP) and schemathesis; a few minutes
	TASKPIPE_DRILLS=1 $(DEVSTACK) -- $(PY) -m pytest tests/drills $(PYTEST_ARGS)

loadtest: install ## Locust, production mode: USERS=1000 SPAWN_RATE=10 DURATION=3m (report in loadtests/reports/)
	$(PY) -m loadtests.run --users $(USERS) --spawn-rate $(SPAWN_RATE) --duration $(DURATION) $(LOADTEST_ARGS)

loadtest-ladder: install ## one run per user count in LADDER, and a PNG of p95 and RPS against users
	$(PY) -m loadtests.run --ladder $(LADDER) --spawn-rate $(SPAWN_RATE) --duration $(LADDER_DURATION) $(LOADTEST_ARGS)

compose-smoke: install ## build the image, run the compose stack, drive a smoke scenario, tear down (Docker)
	$(PY) -m deploy.smoke

clean: ## remove the venv, tools and local data (embedded servers, make run's heartbeats)
	rm -rf .venv .taskpipe .mypy_cache .ruff_cache .pytest_cache
