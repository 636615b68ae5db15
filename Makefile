# Two commands matter: `make demo` (generate -> load -> detect -> UI on the embedded store)
# and `make test` (the full suite, with a local Neo4j and Chromium set up first).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
TEST_WORKSPACE ?= .sybilscope-test
TEST_BOLT_PORT ?= 7697
PYTEST_ARGS ?=

.PHONY: demo test setup system-deps lint neo4j-test-start neo4j-test-stop bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,spark]'
	touch $(STAMP)

setup: $(STAMP)

# Java + Maven gather and run Neo4j (Java also runs Spark for engine = spark); Chromium drives the browser tests. All from Debian.
system-deps:
	@bash deploy/system-deps.sh

demo: setup system-deps
	$(BIN)/sybilscope demo

test: setup system-deps
	@set -euo pipefail; \
	neo() { SYBILSCOPE_NEO4J_BOLT_PORT=$(TEST_BOLT_PORT) SYBILSCOPE_NEO4J_HEAP=1g SYBILSCOPE_NEO4J_PAGECACHE=1g \
	        $(BIN)/sybilscope neo4j "$$@" --workspace $(TEST_WORKSPACE); }; \
	neo start; \
	trap 'neo stop >/dev/null || true' EXIT; \
	$(BIN)/ruff check app graph loaders tests bench; \
	$(BIN)/mypy; \
	SYBILSCOPE_TEST_BOLT_URI=bolt://127.0.0.1:$(TEST_BOLT_PORT) SYBILSCOPE_TEST_WORKSPACE=$(TEST_WORKSPACE) \
	SYBILSCOPE_TEST_BOLT_PORT=$(TEST_BOLT_PORT) $(BIN)/pytest -p no:cacheprovider $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check app graph loaders tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(TEST_WORKSPACE) test-artifacts
