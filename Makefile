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

.PHONY: book test unit boundscheck wheel-check book-strict book-check assets bench clean

# The pages load MathJax, require.js and the widget manager from the build itself, so that the book
# reads offline: npm installs the versions pinned in book/_assets/package-lock.json (never committed).
ASSETS := book/_assets/node_modules/.installed
# Kernels that execute the book read book/_ipython: figures as 2x ("retina") PNGs.
BOOK_ENV := IPYTHONDIR=$(CURDIR)/book/_ipython

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(ASSETS): book/_assets/package.json book/_assets/package-lock.json
	cd book/_assets && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

assets: $(ASSETS)

book: $(STAMP) $(ASSETS)
	$(BOOK_ENV) $(BIN)/jupyter-book build .

# The whole suite: unit, property and CUDA-simulator tests, the kernel tests again under Numba's bounds
# checking, the install of the wheel outside the repository, then the book build, which executes every chapter and lab from a fresh kernel and treats
# any Sphinx warning as an error, and last the check that the built pages need no network.
test: unit boundscheck wheel-check book-strict
	$(MAKE) --no-print-directory book-check

# Two pytest worker processes (pytest-xdist): the suite is CPU-bound, and CI has two cores.
unit: $(STAMP)
	$(BIN)/python -m pytest -n 2

# The compiled kernels' tests again with Numba's bounds checking on (its own cache, since cached
# code was compiled without the checks): an out-of-range index raises instead of corrupting memory.
# The CUDA tests are left out here: in the simulator every index is already checked by NumPy, and
# the unit stage ran them.
BOUNDSCHECK_TESTS := $(addprefix tests/test_,mlp rnn rtrl rflo lstm linear perceptron synapses \
                     optim contract feedback_alignment loopy loopy_rflo plasticity sorn \
                     online_readout bench halting sln sln_lateral sln_wide sln_conv)
boundscheck: $(STAMP)
	NUMBA_BOUNDSCHECK=1 NUMBA_CACHE_DIR=$(CURDIR)/.numba_boundscheck \
		$(BIN)/python -m pytest -q -n 2 -p no:cacheprovider -k "not cuda" \
		$(addsuffix .py,$(BOUNDSCHECK_TESTS))

# Builds the wheel, installs it into a throwaway virtual environment (registry dependencies only, no
# numba-cuda) and runs README.md's python examples from outside the repository; see the script.
wheel-check: $(STAMP)
	$(BIN)/python tools/check_wheel.py

book-strict: $(STAMP) $(ASSETS)
	$(BOOK_ENV) $(BIN)/jupyter-book build . --warningiserror --keep-going

# Reads the finished build (fails if there is none): no page loads a script or a stylesheet from
# another host, MathJax and the widget manager come from _static (tests/test_built_book.py).
book-check: $(STAMP)
	LOOPY_EDU_BUILT_BOOK=_build/html $(BIN)/python -m pytest -q tests/test_built_book.py

bench: $(STAMP)
	$(BIN)/python -m loopy_edu.bench all

clean:
	rm -rf _build .pytest_cache .hypothesis .numba_boundscheck
