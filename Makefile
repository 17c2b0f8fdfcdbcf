# The two commands a fresh machine needs: `make demo` and `make test`.
# Each creates .venv if it is missing and installs the project into it first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,plots,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/jaxbp demo

test: install
	$(BIN)/python -m pytest -q -n 2

lint: install
	$(BIN)/ruff format --check jaxbp tests experiments conftest.py
	$(BIN)/ruff check jaxbp tests experiments conftest.py

format: install
	$(BIN)/ruff format jaxbp tests experiments conftest.py
	$(BIN)/ruff check --fix jaxbp tests experiments conftest.py

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info
