# The two commands of the README: `make run` sets up and runs the platform (embedded mode),
# `make test` sets up and runs every check and test. Both start from nothing but Python 3.11+.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# pytest runs in parallel processes, a test file per process (pytest-xdist): servers are started
# per file or per process, and most tests wait on them, so more processes than cores pays off.
PYTEST_WORKERS ?= 3

.PHONY: run test lint typecheck pytest bench clean services web web-test browser

# The dashboard (web/): built into the package, where `gpucloud serve` finds it and hatch ships it.
WEB_DIST := src/gpucloud/webapp/dist/index.html
WEB_DEPS := web/node_modules/.package-lock.json
WEB_SRC := $(shell find web/src web/scripts -type f ! -name '*.test.*' 2>/dev/null) \
	web/index.html web/vite.config.ts web/tsconfig.json web/package.json

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	@$(MAKE) --no-print-directory web || echo "warning: the dashboard could not be built (Node.js 20 + npm needed); serving the API only"
	$(VENV)/bin/gpucloud serve

$(WEB_DEPS): web/package.json web/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: install Node.js 20 to build the dashboard"; exit 1; }
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $(WEB_DEPS)

$(WEB_DIST): $(WEB_DEPS) $(WEB_SRC)
	cd web && npm run --silent build
	touch $(WEB_DIST)

web: $(WEB_DIST)

web-test: $(WEB_DEPS) $(STAMP)
	cd web && npm run --silent typecheck && npm test --silent

browser:
	@bash scripts/browser.sh

services:
	@bash scripts/services.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP) services
	$(VENV)/bin/pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadfile --durations=30 $(PYTEST_ARGS)

test: lint typecheck web-test web browser pytest

bench: $(STAMP)
	$(PY) bench/gateway_overhead.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
