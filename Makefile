# panacea-locust: `make demo` to see it work, `make test` to check it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help install demo test lint typecheck unit clickhouse browser prometheus bench clean

help:
	@echo "make demo   - set up .venv and run the smoke scenario against the reference API"
	@echo "make test   - install test needs (ClickHouse, Chromium too) and run lint, types and tests"
	@echo "make bench  - run the benchmarks under bench/ (not part of make test)"
	@echo "make clean  - remove .venv and caches (results/ is kept)"

$(STAMP): pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# always the embedded reference API on loopback, whatever PANACEA_HOST a shell exported
demo: install
	env -u PANACEA_HOST $(BIN)/panacea-locust run --scenario smoke

clickhouse:
	bash scripts/install-clickhouse.sh

# Debian's Chromium for the browser tests (Playwright drives /usr/bin/chromium; it never
# downloads a browser of its own)
browser:
	sh scripts/install-chromium.sh

# Debian's Prometheus for the live-metrics tests (they start their own server on loopback;
# the package's service is not left running)
prometheus:
	sh scripts/install-prometheus.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/vulture

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/python -m pytest -m "not e2e and not clickhouse and not browser"

test: install clickhouse browser prometheus lint typecheck
	$(BIN)/python -m pytest

bench: install
	@command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || \
		(apt-get update -qq && apt-get install -y -qq nginx-light wrk) || \
		echo "make bench: install nginx (Debian: nginx-light) to run the benchmarks"
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
