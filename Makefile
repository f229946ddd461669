# Set-up and entry points. Every target creates .venv on first use; re-running is a no-op
# unless pyproject.toml or constraints.txt changed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
STAMP := $(VENV)/.installed
TORCH_PIN := $(VENV)/torch-constraint.txt

# The data directory: GLOSS_DATA_DIR if set, else ../shared/data beside a checkout, else the cache.
export GLOSS_DATA_DIR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup test test-all test-cluster demo lint clean chromium slurm

setup: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch first: keep an importable torch (a user's CUDA build), else install torch==$(TORCH_VERSION);
# then pin whatever is there so no later install swaps it. The pin is the distribution's public
# version (PEP 440: the part before "+"): `torch==2.13.0` is satisfied by the installed 2.13.0+cpu
# or +cu130, whereas a local label such as "+cu130" names a version no index serves.
$(TORCH_PIN): | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(BIN)/python -c "from importlib.metadata import version; print('torch==' + version('torch').split('+')[0])" > $@

$(STAMP): pyproject.toml constraints.txt $(TORCH_PIN)
	$(BIN)/python -m pip install --quiet -c constraints.txt -c $(TORCH_PIN) -e ".[dev]"
	touch $@

# The report test renders HTML in headless Chromium (Debian's package, installed when missing).
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  ($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium)

test: $(STAMP) chromium
	$(BIN)/python -m pytest -q

test-all: $(STAMP) chromium
	$(BIN)/python -m pytest -q -m ""

# The SLURM test runs a one-node SLURM cluster on localhost (Debian's packages, installed when missing).
slurm:
	@command -v slurmctld >/dev/null 2>&1 || [ -x /usr/sbin/slurmctld ] || \
	  ($(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq slurm-wlm munge)

# Multi-node clusters in network namespaces (needs root: ip netns, unshare, nsenter), SLURM on
# localhost, chaos at scale and whole studies run several times: minutes each, run by CI after
# `make test`.
test-cluster: $(STAMP) slurm
	$(BIN)/python -m pytest -q -m "cluster or chaos or faults or studies"

demo: $(STAMP)
	$(BIN)/gloss run demo

# Every benchmark once on tiny inputs (seconds each; results in bench/results/*_smoke.json, never
# the real ones), so that none of them rots. The bench extra brings `accelerate` for the Hugging
# Face Trainer arm of bench.input_pipeline, which smoke runs keep.
BENCH_STAMP := $(VENV)/.bench-installed

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -c $(TORCH_PIN) -e ".[dev,bench]"
	touch $@

.PHONY: bench-smoke
bench-smoke: $(BENCH_STAMP)
	$(BIN)/python -m bench.analysis_load --smoke
	$(BIN)/python -m bench.frozen_grid --smoke
	$(BIN)/python -m bench.gloss_overhead --smoke
	$(BIN)/python -m bench.gloss_scaling --smoke
	$(BIN)/python -m bench.input_pipeline --smoke
	$(BIN)/python -m bench.ray_overhead --smoke
	$(BIN)/python -m bench.search_efficiency --smoke
	$(BIN)/python -m bench.gpu --smoke
	$(BIN)/python -m bench.checkpoint_bytes --smoke
	$(BIN)/python -m bench.checkpoint_time --smoke
	$(BIN)/python -m bench.test_scoring --smoke
	$(BIN)/python -m bench.fidelity_correlation --smoke
	$(BIN)/python -m bench.gpu_hours --smoke
	$(BIN)/python -m bench.pair_batches --smoke
	$(BIN)/python -m bench.length_grouping --smoke

lint: $(STAMP)
	$(BIN)/ruff check common study trainables analysis tests bench

clean:
	rm -rf $(VENV) .pytest_cache
