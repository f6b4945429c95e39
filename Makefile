# wq: fine-grained parallel processing on Kubernetes. `make` lists the targets.
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec
.DEFAULT_GOAL := help

# Pinned tool versions: `make tools` builds them into ./bin with `go install`.
HELM_VERSION ?= v3.19.0
KIND_VERSION ?= v0.30.0
KUBERNETES_VERSION ?= v1.34.1

BIN := $(CURDIR)/bin
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
export PATH := $(BIN):$(VENV)/bin:$(PATH)
export GOBIN := $(BIN)

PY_SOURCES := images/worker/src tests bench

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} \
	  /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2 } \
	  /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

$(VENV)/.installed: images/worker/pyproject.toml requirements-dev.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt -e images/worker
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## Create .venv with the wq package (editable) and the test tools.

.PHONY: lint
lint: venv ## Lint and type-check: ruff check, ruff format --check, mypy --strict.
	$(PY) -m ruff check $(PY_SOURCES)
	$(PY) -m ruff format --check $(PY_SOURCES)
	$(PY) -m mypy images/worker/src/wq

.PHONY: fmt
fmt: venv ## Format and auto-fix Python sources.
	$(PY) -m ruff format $(PY_SOURCES)
	$(PY) -m ruff check --fix $(PY_SOURCES)

.PHONY: test-unit
test-unit: venv ## Unit, property and fault-injection tests against a real redis-server.
	$(PY) -m pytest tests/unit

.PHONY: test-fast
test-fast: lint test-unit ## Every test that needs no cluster.

.PHONY: test
test: test-fast ## Every test.

##@ Benchmark

.PHONY: bench
bench: venv ## Per-item overhead vs the docs' client and redis-benchmark's ceiling.
	$(PY) bench/throughput.py --out bench/results
