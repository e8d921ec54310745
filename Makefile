# recengine — developer commands. Everything runs in .venv (created by `make install`).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# CI sets TORCH_INDEX_URL to the CPU wheel index so the venv gets CPU torch, not the multi-GB CUDA build.
TORCH_INDEX_URL ?=
# Extra pytest arguments (CI: coverage).
PYTEST_ARGS ?=
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install demo serve test lint typecheck schema bench clean

$(STAMP): pyproject.toml tests/hardening/node/package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0 $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL))
	$(BIN)/pip install --quiet -e '.[dev]'
	cd tests/hardening/node && npm ci --no-audit --no-fund --loglevel=error
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the project with its dev extras

demo: $(STAMP) ## Embedded database + MovieLens + training, then serve GraphiQL on :8000
	$(BIN)/recengine demo

serve: $(STAMP) ## Serve the API with the current settings
	$(BIN)/recengine serve

test: $(STAMP) ## Install if needed, then run the whole test suite
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check app tests bench
	$(BIN)/ruff format --check app tests bench

typecheck: $(STAMP)
	$(BIN)/mypy app

bench: $(STAMP) ## Benchmark report at 10k and 100k items into bench-out/
	$(BIN)/recengine bench run --output bench-out

schema: $(STAMP) ## Re-export schema.graphql
	$(BIN)/recengine export-schema schema.graphql

clean:
	rm -rf $(VENV) .recengine
