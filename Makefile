# aftershock: the two front-door commands are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
PY     := $(VENV)/bin/python
PYTEST := $(VENV)/bin/python -m pytest

.PHONY: help venv unit lint e2e test demo clean

help:
	@echo "make demo            testbed up, sample app deployed, suite run, report shown"
	@echo "make test            every test tier: lint, unit, e2e (brings the testbed up)"
	@echo "make unit | lint | e2e"
	@echo "make testbed-up | testbed-down | testbed-status | testbed-import IMAGE=app.tar"
	@echo "make image           build the suite's image (Dockerfile) and import it into the testbed"
	@echo "make browser         Debian's chromium, for the HTML report's browser test"
	@echo "make postgres        install PostgreSQL for the history store's tests (e2e tier)"

# The venv is rebuilt when the dependency pins change.
$(VENV)/.installed: pyproject.toml requirements.lock
	@test -x $(PY) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.lock
	$(VENV)/bin/pip install -q --no-deps -e .
	@touch $@

venv: $(VENV)/.installed

unit: venv pushgateway
	$(PY) tests/run_tier.py unit -- tests/unit

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

e2e: venv testbed-up postgres
	$(PY) tests/run_tier.py e2e -- tests/e2e -m e2e --durations=30

test: lint unit e2e

clean:
	rm -rf $(VENV) results .mypy_cache .ruff_cache .pytest_cache

include testbed/testbed.mk
include demo.mk
include image.mk
include pushgateway.mk
include browser.mk
include postgres.mk
