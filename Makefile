PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest serve simulate bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

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

bench: $(STAMP)
	$(BIN)/python bench/ack_latency.py
	$(BIN)/python bench/sync_budget.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/schedule.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
