# The front door: `make run` starts the exporter on a demo database, `make test` runs every test.
# Both install what they need first (a virtualenv in .venv, Debian's Prometheus binaries).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO := demo
# This machine only, as the README says; `make run LISTEN=:9333` serves every interface (the flag's default).
LISTEN ?= 127.0.0.1:9333

.PHONY: run test test-fast lint setup tools demo bench clean lock

$(BIN)/activate-stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/activate-stamp

# Real prometheus, promtool, alertmanager and amtool for the end-to-end tests (Debian packages).
tools:
	@bash scripts/install-tools.sh

$(DEMO)/db/sites.db: | $(BIN)/activate-stamp
	$(BIN)/pipeline-exporter demo-db $(DEMO)/db/sites.db --sites 20000 --files-dir $(DEMO)

demo: $(DEMO)/db/sites.db

run: $(BIN)/activate-stamp $(DEMO)/db/sites.db
	$(BIN)/pipeline-exporter \
		--database.url sqlite:///$(DEMO)/db/sites.db \
		--collector.coverage.file $(DEMO)/coverage/coverage-summary.json \
		--collector.e2e.file $(DEMO)/test-results/e2e-junit.xml \
		--web.listen-address $(LISTEN)

test: $(BIN)/activate-stamp tools
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The tests that start no process and need no server: well under a minute.
test-fast: $(BIN)/activate-stamp
	$(BIN)/python -m pytest -m "not e2e" -q $(PYTEST_ARGS)

# ruff (lint and import order) and mypy, as configured in pyproject.toml.
lint: $(BIN)/activate-stamp
	$(BIN)/ruff check .
	$(BIN)/mypy

# requirements.lock, the image's pinned dependencies: rerun after changing them in pyproject.toml.
lock:
	PYTHON=$(PYTHON) bash scripts/lock.sh

bench: $(BIN)/activate-stamp
	$(BIN)/python bench/bench_perf.py

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache
