# The README's two commands: `make run` and `make test`. Both bootstrap .venv on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test test-unit test-integration test-e2e clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when the project's dependencies change.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/reviewbridge serve

# pytest runs every storage test twice: on SQLite and on PostgreSQL (TEST_DATABASE_URL).
test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest

test-unit: $(VENV)/.installed-dev
	$(BIN)/python -m pytest tests/unit

test-integration: $(VENV)/.installed-dev
	$(BIN)/python -m pytest tests/integration

test-e2e: $(VENV)/.installed-dev
	$(BIN)/python -m pytest tests/e2e

clean:
	rm -rf $(VENV) .pytest_cache
