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

# make bench SCALE=340000 [SHAPE=realistic] [BENCH_ARGS="--tree /tmp/old --label e2c31b9 --tree ."]:
# the offline pipeline at scale (bench/scale.py); without SCALE, the scenarios of bench/__main__.py.
bench: install
	$(BIN)/python -m bench $(if $(SCALE),scale --threads $(SCALE) $(if $(SHAPE),--shape $(SHAPE)) $(BENCH_ARGS))

clean:
	rm -rf $(VENV) build *.egg-info
