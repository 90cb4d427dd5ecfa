# lvlm: every target installs what it needs into .venv first (idempotent).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help install install-cluster demo study-plan bench-train test test-fast lint format clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --compile -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install lvlm with dev tools

demo: $(STAMP)  ## the miniature study end to end: data, base, 4 conditions + LLaVA-style, eval, report (CPU, ~11 min)
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(PY) study.py experiments/mini

study-plan: $(STAMP)  ## paper A's study plan on GPU nodes (what would run; runs nothing)
	$(PY) study.py experiments/paper_a --dry-run

install-cluster: $(STAMP)  ## Hydra joblib + submitit launchers for study.py --launcher
	$(PY) -m pip install --quiet -e '.[dev,cluster]'

bench-train: $(STAMP)  ## training benchmark: padding, tokens/s vs matmul peak, gradient checkpointing
	$(PY) benchmarks/bench_train.py

# Tests run in TEST_WORKERS pytest-xdist processes (default 2, one per core of the reference machine), each
# with one torch/OpenMP thread: two 2-thread torch processes on 2 cores spin against each other and run
# many times slower than either alone. TEST_WORKERS=0 runs them in this one process.
TEST_WORKERS ?= 2
TEST_ENV := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 WANDB_MODE=offline OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
PYTEST := $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

test: $(STAMP)  ## lint, then the whole test suite (what CI runs)
	$(VENV)/bin/ruff check --quiet .
	$(TEST_ENV) $(PYTEST)

test-fast: $(STAMP)  ## tests without the slow ones
	$(TEST_ENV) $(PYTEST) -m "not slow"

lint: $(STAMP)  ## ruff check + format check
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: $(STAMP)  ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .

clean:  ## remove run outputs and caches (keeps .venv)
	rm -rf outputs/train outputs/multirun outputs/evaluate outputs/study outputs/report .cache .pytest_cache .ruff_cache
