# The README's two commands: `make run` and `make test`. Both bootstrap .venv on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run lint typecheck test test-unit test-integration test-e2e test-browser reliability demo bench clean

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

# Local by default; HOST=0.0.0.0 to listen on every interface. Without Trustoo tokens of your own,
# the README's demo tokens are used so that its curl example works.
HOST ?= 127.0.0.1
DEMO_PUBLIC_TOKEN  := demo-public-token
DEMO_PRIVATE_TOKEN := demo-private-token

run: $(VENV)/.installed
	@[ -n "$$TRUSTOO_PUBLIC_TOKEN" ] || echo "make run: using the README's demo Trustoo tokens (set TRUSTOO_PUBLIC_TOKEN and TRUSTOO_PRIVATE_TOKEN for a real shop)"
	TRUSTOO_PUBLIC_TOKEN="$${TRUSTOO_PUBLIC_TOKEN:-$(DEMO_PUBLIC_TOKEN)}" \
	TRUSTOO_PRIVATE_TOKEN="$${TRUSTOO_PRIVATE_TOKEN:-$(DEMO_PRIVATE_TOKEN)}" \
	$(BIN)/reviewbridge serve --host $(HOST)

LINTED := app connectors tests bench migrations

# ruff's linter (the rule set in pyproject.toml) and its formatter, in check mode.
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

# mypy on the pure core and the connectors (the files are listed in pyproject.toml).
typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

# pytest runs every storage test twice: on SQLite and on PostgreSQL (TEST_DATABASE_URL).
test: lint typecheck
	$(BIN)/python -m pytest

test-unit: $(VENV)/.installed-dev
	$(BIN)/python -m pytest tests/unit

test-integration: $(VENV)/.installed-dev
	$(BIN)/python -m pytest tests/integration

test-e2e: $(VENV)/.installed-dev
	$(BIN)/python -m pytest tests/e2e

# The admin page in headless Chromium (Debian's /usr/bin/chromium; never `playwright install`).
# Screenshots of every page land in build/screenshots/ (BROWSER_SCREENSHOTS_DIR to change it).
test-browser: $(VENV)/.installed-dev
	$(BIN)/python -m pytest tests/browser

# The reliability scenarios R1-R6 at full size (make test runs them reduced), with their figures.
reliability: $(VENV)/.installed-dev
	RELIABILITY_SCALE=full $(BIN)/python -m pytest tests/reliability -s

# The commercetools emulator, `reviewbridge serve` against it, signed webhooks, what landed.
demo: $(VENV)/.installed-dev
	$(BIN)/python -m tests.demo

# Benchmarks: each prints its figures, then one table of every goal, met or missed and why (see bench/).
bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache
