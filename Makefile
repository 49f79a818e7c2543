# Two commands on a fresh machine with Python 3.11 and pip: `make test` and `make demo`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv test test-fast demo clean

venv: $(VENV)/.installed

# CPU-only machines get the CPU build of torch (PyPI's Linux wheel is the CUDA one, several GB), from PyTorch's
# CPU index; machines with an NVIDIA driver, or an empty TORCH_CPU_INDEX (a GPU cluster's login node), keep pip's
# default (CUDA) build.
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	if ! command -v nvidia-smi >/dev/null 2>&1 && [ -n "$(TORCH_CPU_INDEX)" ]; then \
		$(BIN)/pip install --quiet torch==2.13.0 --index-url $(TORCH_CPU_INDEX); fi
	$(BIN)/pip install --quiet -e '.[test]'
	# bpnet-lite for the tests against its own wrappers; without its peak-calling and conversion extras.
	$(BIN)/pip install --quiet --no-deps bpnet-lite==1.1.0
	# gReLU and enformer-pytorch for the tests on their models; without gReLU's training stack (wandb,
	# lightning, ...): what their model modules import is in the test extra (einops, transformers, polars).
	$(BIN)/pip install --quiet --no-deps grelu==1.1.0 enformer-pytorch==0.8.12
	touch $@

test: venv
	$(BIN)/python -m pytest

test-fast: venv
	$(BIN)/python -m pytest -m 'not slow'

# The whole workflow on the embedded default config (simulated genome) with the local profile.
demo: venv
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --profile workflow/profiles/default

clean:
	rm -rf $(VENV) results .pytest_cache
