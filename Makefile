# The two commands: `make run` (whole stack on embedded defaults) and `make test` (the suite).
# Both create .venv and install on first use; later runs reuse it (re-installing only when setup.cfg changes).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_WORKERS ?= auto

.PHONY: install run test lint bench migrate check-compose clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e ".[test,dev,embedded]"
	touch $(STAMP)

install: $(STAMP)

run: install
	$(PY) -m devstack.stack

test: install
	$(PY) -m pytest -n $(TEST_WORKERS) -q $(PYTEST_ARGS)

# Style, the layers (.importlinter: who may import whom, no cycles) and types.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy webapp tasks domain models config devstack

bench: install
	$(PY) bench/run_all.py

migrate: install
	$(VENV)/bin/flask --app webapp db-upgrade

clean:
	rm -rf $(VENV) .data .pytest_cache
