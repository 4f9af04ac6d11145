# Everything runs from a virtual environment in .venv, made on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install run test coverage lint format bench chaos fuzz clean

install: $(INSTALLED)

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --editable '.[dev]'
	touch $(INSTALLED)

run: install  ## serve on SQLite (taskfarm.db here); the first start prints a login
	$(BIN)/taskfarm serve

test: install  ## every test, two at a time, against the PostgreSQL and Redis named in tests/conftest.py; fails below the coverage floor
	rm -f .coverage .coverage.*
	$(BIN)/pytest -n 2 --cov --cov-report=term

coverage: test  ## the same, then a page per module in htmlcov/
	$(BIN)/coverage html --quiet
	@echo "branch coverage by module: htmlcov/index.html"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fuzz: install  ## the generated-request test of the OpenAPI document, with many more examples
	TASKFARM_FUZZ_EXAMPLES=$${TASKFARM_FUZZ_EXAMPLES:-1000} $(BIN)/pytest tests/integration/test_openapi.py

bench: install bench/.venv-old/.installed  ## benchmarks, not part of test: tables and plots in bench/results/
	$(BIN)/python -m pip install --quiet -r bench/requirements.txt
	command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(BIN)/python -m bench.run_all

chaos: install  ## three server hosts behind HAProxy through crashes and outages: bench/results/chaos-*.txt
	$(BIN)/python -m pip install --quiet -r bench/requirements.txt
	$(BIN)/python -m chaos

bench/.venv-old/.installed: bench/requirements-old.txt  ## the old taskfarm 0.4.0, the benchmarks' baseline
	$(PYTHON) -m venv bench/.venv-old
	bench/.venv-old/bin/python -m pip install --quiet -r bench/requirements-old.txt
	touch $@

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .import_linter_cache \
		.coverage .coverage.* htmlcov
