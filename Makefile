# The two commands of the README: `make demo` (the main job on the embedded defaults) and `make test`.
# Both create the virtual environment on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
TINY   := models/tiny-llama
LOCK   := constraints/workbench.txt
# torch first, so that a machine's local CPU wheel is used and nothing pulls the CUDA build;
# on a GPU machine: make install TORCH="torch==2.13.0 --index-url <your CUDA wheel index>"
# (the lock pins torch==2.13.0 without a local label, so a +cpu or +cuXXX build of it matches)
TORCH  ?= torch==2.13.0

.PHONY: install demo test lint lab lock clean-runs

install: $(STAMP)

# the exact tested set: pyproject's ranges resolved under the lock (docs/install.md)
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c $(LOCK) $(TORCH)
	$(BIN)/pip install -q -c $(LOCK) -e '.[all,dev]'
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

# after a deliberate upgrade in .venv: write its set as the new lock (the project itself left out)
lock: install
	{ sed -n '1,/^# torch is written/p' $(LOCK); \
	  $(BIN)/pip freeze --all --exclude-editable | grep -v '^#' | grep -vi '^workbench[=@ ]' | grep -v '^pip==' \
	  | sed -E 's/^(torch==[^+]*)\+.*/\1/'; } > $(LOCK).new && mv $(LOCK).new $(LOCK)

clean-runs:
	rm -rf .workbench studies/*.db mlruns/*.db mlruns/artifacts
