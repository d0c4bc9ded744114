# Every target installs what it needs into .venv/ first, so a clean clone with only Python works.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/migrate demo

test: install
	$(BIN)/python -m pytest -q -n 2 -p no:cacheprovider

lint: install
	$(BIN)/ruff check migrator tests bench
	$(BIN)/ruff format --check migrator tests bench

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info
