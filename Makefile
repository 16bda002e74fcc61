# Two commands on a fresh machine: `make demo` and `make test`.
# Both create .venv and install the pinned dependencies from requirements.lock first.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed

.PHONY: install system-deps demo test lint typecheck pytest audit mlflow-ui lock clean bench-env bench-lock serving-env serving-lock

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

# The OS packages the tests start (PostgreSQL server for the decision store, Chromium for the console
# tests, driven by Playwright without a browser download of its own, Java 17 for the Spark master and
# workers), a CJK font for charts with Chinese labels, and the HTTP benchmark's load generator. Needs root and apt-get; without them the tests that need
# these say they skipped (CI sets SCORING_REQUIRE_SYSTEM_DEPS=1 so that they fail instead).
SYSTEM_PACKAGES := postgresql wrk fonts-wqy-microhei chromium openjdk-17-jre-headless
system-deps:
	@if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
		echo "system-deps: not root or no apt-get; install $(SYSTEM_PACKAGES) yourself"; \
	elif ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v wrk >/dev/null 2>&1 \
		&& [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] && command -v chromium >/dev/null 2>&1 \
		&& command -v java >/dev/null 2>&1; then \
		echo "system-deps: $(SYSTEM_PACKAGES) present"; \
	else \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES); \
	fi

demo: $(STAMP)
	$(BIN)/scoring demo

test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests notebooks benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports
	@# security lint at medium severity; each string-built SQL is bound or marked `# nosec B608 # why`.
	@# bandit warns on stderr about marks on strings that span lines: kept in .bandit.log unless it fails
	$(BIN)/bandit -q -r src -ll 2>.bandit.log || { cat .bandit.log; exit 1; }

# Known vulnerabilities of the locked dependencies (pip-audit asks the registry's vulnerability
# service; --strict fails when a dependency could not be checked). Not part of `make test`: these
# machines cannot reach that service (see docs/reliability.md).
audit: $(STAMP)
	$(BIN)/pip-audit --strict --disable-pip --no-deps -r requirements.lock --vulnerability-service pypi

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

mlflow-ui: $(STAMP)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow/mlflow.db --host 127.0.0.1 --port 5000

# Re-resolve the pinned versions (needs the registry; commit the result).
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra spark --python-version 3.11 -o requirements.lock

# The scorecard benchmark's own environment (optbinning, toad, scorecardpy and interpret; see benchmarks/scorecards.in).
BENCH := .venv-bench
bench-env: $(BENCH)/.installed

$(BENCH)/.installed: benchmarks/scorecards.lock $(STAMP)
	test -x $(BENCH)/bin/python || $(PYTHON) -m venv $(BENCH)
	$(BIN)/uv pip sync --quiet --python $(BENCH)/bin/python benchmarks/scorecards.lock
	touch $@

# The serving benchmark's MLServer, in an environment of its own (see benchmarks/serving.in).
SERVING := .venv-serving
serving-env: $(SERVING)/.installed

$(SERVING)/.installed: benchmarks/serving.lock $(STAMP)
	test -x $(SERVING)/bin/python || $(PYTHON) -m venv $(SERVING)
	$(BIN)/uv pip sync --quiet --python $(SERVING)/bin/python benchmarks/serving.lock
	touch $@

serving-lock: $(STAMP)
	cd benchmarks && ../$(BIN)/uv pip compile serving.in --python-version 3.11 -o serving.lock

bench-lock: $(STAMP)
	cd benchmarks && ../$(BIN)/uv pip compile scorecards.in --python-version 3.11 -o scorecards.lock

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
