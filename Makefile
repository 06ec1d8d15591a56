# Two commands do all set-up on a fresh machine with Python 3.11, make and apt:
#   make run   - create .venv, install pinned dependencies, start the dashboard on 127.0.0.1:8501
#   make test  - the same set-up, then lint, format check, type check and the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8501
# The browser tests drive Debian's chromium (never a downloaded browser); make test installs it.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: setup run test test-fast lint typecheck pytest wheel-check bench bench-load clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,chem,export,ray]'
	touch $(STAMP)

run: setup
	$(BIN)/python -m scales_viz_app.ui.launch --server.address 127.0.0.1 --server.port $(PORT)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) apt-get install -y -qq chromium

pytest: setup $(CHROMIUM)
	$(BIN)/python -m pytest -q

# The wheel installed into a new virtual environment and run from outside the checkout.
wheel-check: setup
	PYTHON=$(BIN)/python bash tests/installed/check.sh

test: lint typecheck pytest wheel-check

# The quick loop while working: lint, types and every test not marked slow or gpu.
test-fast: lint typecheck
	$(BIN)/python -m pytest -q -m "not slow and not gpu"

bench: setup
	$(BIN)/python bench/bench_scales.py
	$(BIN)/python bench/bench_models.py
	$(BIN)/python bench/bench_slices.py
	$(BIN)/python bench/bench_projection.py

# 10 browser sessions against one server (a few minutes; needs chromium, like make test).
bench-load: setup $(CHROMIUM)
	$(BIN)/python bench/bench_load.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
