# Everything runs inside .venv, created on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export RAY_USAGE_STATS_ENABLED := 0

.PHONY: install dev study test test-fast lint chromium bench clean

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  echo "cannot create $(VENV) with $(PYTHON): on Debian or Ubuntu install python3-venv" \
	    "(sudo apt-get install python3-venv), or run make PYTHON=/path/to/python3.11" >&2; \
	  exit 1; }
	$(BIN)/pip install --upgrade pip

# torch first, pinned, so pip does not pick a newer build than the one tested. On Linux,
# PyPI's torch wheel bundles the CUDA libraries (gigabytes); a CPU-only machine gets the
# CPU build with: make study TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH_PIP_ARGS ?=
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install $(TORCH_PIP_ARGS) torch==2.13.0
	$(BIN)/pip install -e .
	touch $@

# the test and lint tools, pinned in pyproject.toml: only `make test`, `test-fast` and
# `lint` need them, and a new release of one cannot turn them red
$(VENV)/.dev-installed: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -e '.[dev,dashboard]'
	touch $@

install: $(VENV)/.installed

dev: $(VENV)/.dev-installed

study: install
	$(BIN)/actmix-study run
	@echo "The commands above run as they are after \`source $(VENV)/bin/activate\` (or prefix them with $(VENV)/bin/)."

lint: dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The browser tests drive Debian's headless Chromium through its chromedriver, at the paths
# tests/study/test_browser.py uses; installed only when missing, with sudo unless root.
chromium:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  command -v apt-get >/dev/null || { \
	    echo "no apt-get: install /usr/bin/chromium and /usr/bin/chromedriver" >&2; exit 1; }; \
	  sudo=; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi

# The whole suite, as CI runs it (.ci/run), with the slowest tests listed at the end.
test: lint chromium
	$(BIN)/pytest --durations=20

# Everything that needs no Ray, browser or cluster, doctests included: a few minutes.
test-fast: lint
	$(BIN)/pytest -m "not ray and not browser and not cluster" --durations=10

bench: install
	$(BIN)/python benchmarks/trainer.py

clean:
	rm -rf $(VENV) build *.egg-info
