# `make demo` and `make test` do all set-up on a fresh machine: a virtualenv with the toolkit and its extras.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# A CPU build of torch beside the checkout avoids a multi-GB CUDA download; PyPI is the fallback.
TORCH_WHEELS := ../shared/wheels
TORCH_FROM_SHARED := $(wildcard $(TORCH_WHEELS)/torch-2.13.0+cpu-*.whl)

.PHONY: setup demo test lint
setup: $(VENV)/.installed

# PYTHONWARNINGS=ignore: setuptools' notice about editable installs is not for users.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(if $(TORCH_FROM_SHARED),$(BIN)/pip install -q --find-links $(TORCH_WHEELS) torch==2.13.0+cpu)
	PYTHONWARNINGS=ignore $(BIN)/pip install -q -e '.[export,ray,dev]'
	touch $@

demo: setup
	$(BIN)/opensearch-kit demo

test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check .
