# The two commands: `make run` (whole stack on embedded defaults) and `make test` (the suite).
# Both create .venv and install on first use, from the hash-checked lock requirements/dev.txt; later runs reuse
# it (re-installing only when the lock or setup.cfg changes). `make lock` refreshes the locks from setup.cfg.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_WORKERS ?= auto
# Production (install_requires) and development/CI (+ the test, dev and embedded extras) locks: exact versions
# and sha256 hashes, build requirements included so the project itself installs without build isolation.
BASE_LOCK := requirements/base.txt
DEV_LOCK := requirements/dev.txt

.PHONY: install lock run test lint bench migrate check-compose clean

# pip check catches a setup.cfg requirement the lock does not hold yet (then: make lock).
# setup.py and the C source: an edit rebuilds the extension (pip install -e builds it in place).
$(STAMP): $(DEV_LOCK) setup.cfg setup.py pyproject.toml domain/algorithms/parsing/_xmlscan.c
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r $(DEV_LOCK)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m pip check || { echo "$(DEV_LOCK) does not satisfy setup.cfg: run 'make lock'" >&2; exit 1; }
	touch $(STAMP)

install: $(STAMP)

# Existing pins are kept unless setup.cfg rules them out; LOCK_ARGS=--upgrade (or --upgrade-package NAME) moves
# them to the newest releases. The dev lock is constrained to the base pins, so both install the same versions.
# Index and find-links options are left out: the locks hold only pins and hashes, whatever pip.conf says.
PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make lock" $(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
	--strip-extras --all-build-deps --no-emit-index-url --no-emit-find-links --no-emit-trusted-host $(LOCK_ARGS)

lock:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	test -x $(VENV)/bin/pip-compile || $(PY) -m pip install --quiet pip-tools
	$(PIP_COMPILE) --output-file $(BASE_LOCK) setup.cfg
	$(PIP_COMPILE) --extra test --extra dev --extra embedded --constraint $(BASE_LOCK) --output-file $(DEV_LOCK) setup.cfg
	{ echo "# Production lock (Dockerfile): setup.cfg's install_requires and build requirements, pinned with hashes."; \
	  cat $(BASE_LOCK); } > $(BASE_LOCK).tmp && mv $(BASE_LOCK).tmp $(BASE_LOCK)
	{ echo "# Development and CI lock (make install): base.txt's pins plus the test, dev and embedded extras."; \
	  cat $(DEV_LOCK); } > $(DEV_LOCK).tmp && mv $(DEV_LOCK).tmp $(DEV_LOCK)

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
