# The two set-up commands of the README: `make run` and `make test`.
# Both create the virtual environment they need (.venv) on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint bench install migrate seed clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Run the service on the embedded default: SQLite in instance/, jobs inline,
## demo data seeded on first run (tokens printed then).
run: $(STAMP)
	$(BIN)/rems db upgrade
	$(BIN)/rems demo seed --if-empty
	REMS_BIND=127.0.0.1:$${PORT:-8000} $(BIN)/gunicorn -c config/gunicorn.py

## Run the whole test suite (SQLite always; PostgreSQL and Redis when reachable,
## mandatory when CI=true or REMS_REQUIRE_SERVICES=1), after the static checks.
test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## The static checks: import contracts, lint, format, types (all configured in pyproject.toml).
lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/mypy --strict workflows

## Benchmarks on the machine's PostgreSQL (bench/README.md); BENCH_ARGS=--quick for a short run.
bench: $(STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache .hypothesis
