# The two commands of the README: `make demo` (the main job on the embedded defaults) and `make test`.
# Both create the virtual environment on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
TINY   := models/tiny-llama
# torch first, so that a machine's local CPU wheel is used and nothing pulls the CUDA build;
# on a GPU machine: make install TORCH="torch==2.13.0 --index-url <your CUDA wheel index>"
TORCH  ?= torch==2.13.0

.PHONY: install demo test lint lab clean-runs

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

$(TINY)/config.json: | $(STAMP)
	$(BIN)/workbench make-tiny-model $(TINY)

demo: install $(TINY)/config.json
	$(BIN)/workbench tune studies/quickstart.yaml

test: install
	$(BIN)/ruff check workbench tests benchmarks scripts
	$(BIN)/pytest -q

lab: install $(TINY)/config.json
	$(BIN)/workbench lab

lint: install
	$(BIN)/ruff check workbench tests benchmarks scripts
	$(BIN)/ruff format --check workbench tests benchmarks scripts

clean-runs:
	rm -rf .workbench studies/*.db mlruns/*.db mlruns/artifacts
