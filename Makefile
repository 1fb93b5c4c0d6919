# Two entry points on a fresh machine: `make book` and `make test`. Both create the virtual environment
# on first use (and again whenever requirements.txt or pyproject.toml change).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Offline machines read datasets from ../shared/data (see README); a user's LOOPY_EDU_DATA wins.
ifneq ($(wildcard ../shared/data),)
export LOOPY_EDU_DATA ?= $(abspath ../shared/data)
endif
# CUDA kernels run on a real GPU when there is one, otherwise in Numba's CUDA simulator.
export NUMBA_ENABLE_CUDASIM ?= $(if $(shell nvidia-smi -L 2>/dev/null),0,1)
export PYTHONHASHSEED ?= 0
# The book's matrices are small: one BLAS thread per process avoids oversubscribing a 2-core machine.
export OPENBLAS_NUM_THREADS ?= 1

.PHONY: book test unit book-strict bench clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

book: $(STAMP)
	$(BIN)/jupyter-book build .

# The whole suite: unit, property and CUDA-simulator tests, then the book build, which executes every
# chapter and lab from a fresh kernel and treats any Sphinx warning as an error.
test: unit book-strict

unit: $(STAMP)
	$(BIN)/python -m pytest

book-strict: $(STAMP)
	$(BIN)/jupyter-book build . --warningiserror --keep-going

bench: $(STAMP)
	$(BIN)/python -m loopy_edu.bench all

clean:
	rm -rf _build .pytest_cache .hypothesis
