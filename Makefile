# The two commands a fresh machine needs: `make demo` and `make test`.
# Each creates .venv if it is missing and installs the project into it first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORE := $(VENV)/.installed-core
FULL := $(VENV)/.installed-full

.PHONY: install demo test test-lowest lint format docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The demo needs only the core (jax, jaxlib, optax); the tests add their extras.
$(CORE): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(CORE)

$(FULL): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,plots,dev,docs]"
	touch $(FULL) $(CORE)

install: $(FULL)

demo: $(CORE)
	$(BIN)/jaxbp demo

test: $(FULL)
	$(BIN)/python -m pytest -q -n 2 --durations=25

# The whole suite (but the PyTorch comparisons) on exactly the lowest versions that
# pyproject.toml declares, in a venv of its own, so the declared range cannot rot.
LOWEST := .venv-lowest
$(LOWEST)/.installed: pyproject.toml .ci/lowest_requirements.py
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install --quiet --upgrade pip
	$(PYTHON) .ci/lowest_requirements.py --skip torch > $(LOWEST)/requirements.txt
	$(LOWEST)/bin/python -m pip install --quiet -r $(LOWEST)/requirements.txt
	$(LOWEST)/bin/python -m pip install --quiet --no-deps -e .
	touch $@

test-lowest: $(LOWEST)/.installed
	$(LOWEST)/bin/python -m pytest -q -n 2 -p no:cacheprovider

lint: $(FULL)
	$(BIN)/ruff format --check jaxbp tests experiments conftest.py docs_hooks.py
	$(BIN)/ruff check jaxbp tests experiments conftest.py docs_hooks.py

format: $(FULL)
	$(BIN)/ruff format jaxbp tests experiments conftest.py
	$(BIN)/ruff check --fix jaxbp tests experiments conftest.py

# The API reference site in site/, from the docstrings; any warning (a broken link or
# cross-reference, a public name on no page or without a docstring) fails the build.
docs: $(FULL)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) $(LOWEST) .pytest_cache build dist site *.egg-info
