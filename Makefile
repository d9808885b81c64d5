# eventstrata — the two set-up commands are `make run` and `make test` (see README "Set-up").
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_INTEGRATION_FLAGS ?=

.PHONY: venv deps deps-test lint test test-unit test-integration run bench chaos

## venv: create .venv and install the product with its test extras and the benchmark project
## (bench/, its own pyproject.toml); re-runs when either pyproject.toml changes
venv: $(STAMP)

$(STAMP): pyproject.toml bench/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[test]' -e ./bench
	@touch $(STAMP)

## deps: redis-server (apt-get when missing and root) and the Kafka 4.1.1 jars (Maven Central -> ~/.cache/eventstrata)
deps: venv
	$(BIN)/eventstrata dev fetch

## lint: ruff + mypy --strict
lint: venv
	$(BIN)/ruff check src workers tests bench
	$(BIN)/mypy src workers bench/eventstrata_bench

test-unit: venv
	$(BIN)/pytest -q tests/unit bench/tests --durations=15

## deps-test: deps + SeaweedFS (the S3-compatible server of the archive tests), built with Go
## from the Go module proxy into ~/.cache/eventstrata/bin once (~5 min of CPU), and Debian's chromium
## (apt-get, when root) for the console's browser tests
deps-test: venv
	$(BIN)/eventstrata dev fetch --s3 --browser

## test-integration: real Kafka + Redis (+ Redis Cluster) + SeaweedFS, started by the fixtures unless
## EVENTSTRATA_KAFKA_BOOTSTRAP / EVENTSTRATA_REDIS_URL point at existing ones
test-integration: venv deps-test
	$(BIN)/pytest tests/integration --durations=15 $(PYTEST_INTEGRATION_FLAGS)

## test: everything `.ci/run` runs
test: venv deps-test lint
	$(BIN)/pytest -q tests/unit bench/tests --durations=15
	$(BIN)/pytest tests/integration --durations=15 $(PYTEST_INTEGRATION_FLAGS)

## run: the local stack in the foreground (Kafka, Redis, workers, API on :8080); Ctrl-C stops it
run: venv deps
	EVENTSTRATA_API_PORT=$${EVENTSTRATA_API_PORT:-8080} $(BIN)/eventstrata dev up --tour

## bench: the benchmark (results under bench/results): bench extras, wrk + PostgreSQL via apt-get when root,
## vegeta (open-loop load) built with `go install` into ~/.cache/eventstrata/bin when Go is present
VEGETA_MODULE := github.com/tsenart/vegeta/v12@v12.12.0
VEGETA_BIN := $${XDG_CACHE_HOME:-$$HOME/.cache}/eventstrata/bin
bench: venv deps-test
	@if ! command -v vegeta >/dev/null && [ ! -x "$(VEGETA_BIN)/vegeta" ] && command -v go >/dev/null; then \
	  GOBIN="$(VEGETA_BIN)" go install $(VEGETA_MODULE); fi
	@if [ "$$(id -u)" = 0 ] && ! { command -v wrk >/dev/null && command -v redis-benchmark >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk postgresql redis-tools >/dev/null; fi
	$(BIN)/python -m eventstrata_bench

## chaos: the long chaos suite (faults under a steady load, every process real); the table goes to
## bench/results/chaos.md (the short version runs in `make test`: tests/integration/test_chaos.py)
chaos: venv deps
	$(BIN)/python tests/integration/chaos_support.py --long --out bench/results/chaos.md
