PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCK   := requirements.lock
# Extra pip-compile options for `make lock`: LOCK_FLAGS=--upgrade, or LOCK_FLAGS='--upgrade-package aiohttp'.
LOCK_FLAGS ?=

.PHONY: demo test lint typecheck pytest serve simulate dev bench lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Exactly the locked versions, each file checked against its hash (pip, and the setuptools that builds the
# project, included); then the project itself, built with that setuptools and without resolving anything.
$(STAMP): $(LOCK) pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Re-resolve pyproject.toml (runtime and dev) into the lock: pins with every file's hash, for Python 3.11 on
# Linux, as CI runs. Without LOCK_FLAGS, pins that still fit are kept.
lock: $(STAMP)
	@$(BIN)/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) or sys.platform != "linux")' \
		|| { echo "make lock: the lock is for Python 3.11 on Linux (make clean, then PYTHON=python3.11)" >&2; exit 1; }
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe \
		--all-build-deps --extra dev --strip-extras --no-emit-index-url --no-emit-find-links --newline lf \
		$(LOCK_FLAGS) --output-file $(LOCK) pyproject.toml

demo: $(STAMP)
	$(BIN)/python -m bot.demo

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy bot commands

pytest: $(STAMP)
	$(BIN)/pytest -q

serve: $(STAMP)
	$(BIN)/onboarding-bot serve

simulate: $(STAMP)
	$(BIN)/onboarding-bot simulate

# The simulators and the bot together, and the local console to try it in a browser (the URL is printed).
dev: $(STAMP)
	$(BIN)/onboarding-bot simulate --with-bot

bench: $(STAMP)
	$(BIN)/python bench/ack_latency.py
	$(BIN)/python bench/sync_budget.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/schedule.py
	$(BIN)/python bench/reliability.py
	$(BIN)/python bench/alert_storm.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
