# The two set-up commands of the README: `make run` and `make test`.
# Both create the virtual environment they need (.venv) on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# make test: pytest-xdist workers (2 fits the 2-core CI machine; PYTEST_WORKERS=0 runs serially).
PYTEST_WORKERS ?= 2
TEST_DATABASE_URL := $(or $(REMS_TEST_DATABASE_URL),postgresql+psycopg://postgres@127.0.0.1:5432/test)
TEST_REDIS_URL := $(or $(REMS_TEST_REDIS_URL),redis://127.0.0.1:6379/0)
SERVICES_REQUIRED := $(or $(filter true True TRUE,$(CI)),$(filter 1,$(REMS_REQUIRE_SERVICES)))
HIDE_PASSWORD := sed -E 's|://([^:/@]*):[^@/]*@|://\1:***@|'

.PHONY: run test lint docs bench install migrate seed clean browser

$(STAMP): pyproject.toml
	@echo "Installing the service and its tools into $(VENV)/ (first run, or pyproject.toml changed)..."
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

## Run the service on the embedded default: SQLite in instance/ (one file per REMS_ENV), jobs
## inline, demo data seeded on first run (its tokens printed then, framed, before the server starts).
run: $(STAMP)
	@$(BIN)/rems db upgrade >/dev/null
	@$(BIN)/rems demo seed --if-empty --output text
	@REMS_BIND=$${REMS_BIND:-127.0.0.1:$${PORT:-8000}} $(BIN)/gunicorn -c config/gunicorn.py

## Run the whole test suite (SQLite always; PostgreSQL and Redis when reachable,
## mandatory when CI=true or REMS_REQUIRE_SERVICES=1), after the static checks.
test: lint browser
	@echo "make test: SQLite always; PostgreSQL $(TEST_DATABASE_URL) and Redis $(TEST_REDIS_URL)" | $(HIDE_PASSWORD)
	@echo "  $(if $(SERVICES_REQUIRED),mandatory (CI=true or REMS_REQUIRE_SERVICES=1): unreachable fails the run,optional: tests needing them are skipped when unreachable (REMS_REQUIRE_SERVICES=1 makes them mandatory)); $(PYTEST_WORKERS) xdist workers (PYTEST_WORKERS)"
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

## The browser of tests/browser (the portal in real Chromium): Debian's chromium package,
## installed with apt-get when missing and run as root (CI); otherwise a note, and those
## tests skip (with CI=true or REMS_REQUIRE_SERVICES=1 they fail instead).
browser:
	@if command -v chromium >/dev/null 2>&1 || [ -n "$$REMS_CHROMIUM" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "Installing Debian's chromium for the browser tests (apt-get install chromium)..."; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
	  echo "Chromium is not installed: the browser tests need Debian's chromium (sudo apt-get install chromium)."; \
	fi

## The static checks: import contracts, lint, format, types (all configured in pyproject.toml).
lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/mypy --strict workflows

## Regenerate docs/rules.md (the rules reference) from the code; a test fails while it differs.
docs: $(STAMP)
	$(BIN)/python -m tools.rules_reference > docs/rules.md.tmp && mv docs/rules.md.tmp docs/rules.md

## Benchmarks on the machine's PostgreSQL (bench/README.md); BENCH_ARGS=--quick for a short run.
bench: $(STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache .hypothesis
