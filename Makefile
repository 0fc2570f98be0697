# `make demo` and `make test` do all set-up on a fresh machine: a virtualenv with the toolkit and its extras.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# A CPU build of torch avoids a multi-GB CUDA download: from a folder of wheels (TORCH_WHEELS, by default the one
# beside the checkout when present) or an index (TORCH_INDEX, e.g. https://download.pytorch.org/whl/cpu);
# PyPI is the fallback.
TORCH_WHEELS ?= ../shared/wheels
TORCH_INDEX ?=
TORCH_WHEEL := $(firstword $(wildcard $(TORCH_WHEELS)/torch-*+cpu-*.whl))

.PHONY: setup demo test lint
setup: $(VENV)/.installed

# PYTHONWARNINGS=ignore: setuptools' notice about editable installs is not for users.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(if $(TORCH_WHEEL),$(BIN)/pip install -q $(TORCH_WHEEL))
	$(if $(TORCH_INDEX),$(BIN)/pip install -q torch --index-url $(TORCH_INDEX))
	PYTHONWARNINGS=ignore $(BIN)/pip install -q -e '.[export,ray,dev]'
	touch $@

demo: setup
	$(BIN)/opensearch-kit demo

test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check .
