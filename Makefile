# Newcomer commands: `make run` builds a dataset from the embedded sample,
# `make test` runs the suite. Both set up .venv first when it is missing.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
BENCH_INSTALLED := $(VENV)/.bench-installed
SAMPLE := data/sample/uploads
SAMPLE_STAMP := data/sample/.generated
OUT ?= out
CONFIG ?= configs/default.yaml
PYTEST_ARGS ?=
PROJECT ?=
REGION ?=
BUCKET ?=
UPLOADS ?= gs://$(BUCKET)/uploads
DATASETS ?= gs://$(BUCKET)/datasets
BUILD_ID ?= $(shell date -u +%Y%m%dT%H%M%SZ)
NIGHTLY_OUT ?= $(OUT)/nightly
NIGHTLY_CONFIG ?= configs/nightly.yaml
WITHDRAWALS ?=
HOURS ?= 2
SCALING_HOURS ?= 0.5,2,8

.PHONY: setup sample run nightly test lint bench bench-dedup bench-throughput bench-scaling \
  fuzz fuzz-long clean dataflow template

$(INSTALLED): setup.py constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $@

setup: $(INSTALLED)

# The benchmarks' extra (imageio-ffmpeg) on top of the test environment.
$(BENCH_INSTALLED): $(INSTALLED)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test,bench]"
	touch $@

$(SAMPLE_STAMP): $(INSTALLED) pipelines/make_sample.py pipelines/sample_audio.py
	rm -rf $(SAMPLE)
	$(BIN)/python -m pipelines.make_sample --out $(SAMPLE)
	touch $@

sample: $(SAMPLE_STAMP)

run: $(SAMPLE_STAMP)
	$(BIN)/python -m pipelines.build_dataset --uploads $(SAMPLE) --output $(OUT) \
	  --config $(CONFIG)

# The incremental build of tonight (see README, Nightly builds); UPLOADS defaults to the sample.
nightly: UPLOADS = $(SAMPLE)
nightly: $(SAMPLE_STAMP)
	$(BIN)/python -m pipelines.nightly --uploads $(UPLOADS) --output $(NIGHTLY_OUT) \
	  --config $(NIGHTLY_CONFIG) $(if $(WITHDRAWALS),--set nightly.withdrawals=$(WITHDRAWALS))

test: $(INSTALLED)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(BENCH_INSTALLED)
	mkdir -p bench
	$(BIN)/python -m pipelines.bench_metrics --out bench/metrics.json
	$(BIN)/python -m pipelines.bench_nightly --out bench/nightly.json
	$(BIN)/python -m pipelines.bench_throughput --hours $(HOURS) --out bench/throughput.json

# Throughput alone, e.g. make bench-throughput HOURS=0.5 (corpora are kept in bench/corpus).
bench-throughput: $(BENCH_INSTALLED)
	mkdir -p bench
	$(BIN)/python -m pipelines.bench_throughput --hours $(HOURS) --out bench/throughput.json

# Cost per audio hour at several corpus sizes (the 8 h corpus takes a while to generate).
bench-scaling: $(BENCH_INSTALLED)
	mkdir -p bench
	$(BIN)/python -m pipelines.bench_throughput --hours $(SCALING_HOURS) --skip librosa,datasets \
	  --out bench/scaling.json

bench-dedup: $(INSTALLED)
	mkdir -p bench
	$(BIN)/python -m pipelines.bench_dedup --out bench/dedup.json

# Hostile uploads through the whole build (README, Reliability); FUZZ_COUNT uploads at least.
FUZZ_COUNT ?= 1000
FUZZ_RUNS ?= 200000
fuzz: $(INSTALLED)
	$(BIN)/python -m pipelines.fuzz_build --work fuzz --count $(FUZZ_COUNT)

# The coverage-guided fuzzers (atheris) of decoding and sidecar parsing, for longer.
fuzz-long: $(INSTALLED)
	$(BIN)/python -m tests.fuzz.atheris_targets --target decode -atheris_runs=$(FUZZ_RUNS)
	$(BIN)/python -m tests.fuzz.atheris_targets --target sidecar -atheris_runs=$(FUZZ_RUNS)

lint: $(INSTALLED)
	$(BIN)/ruff check pipelines transforms schemas tests deploy setup.py

dataflow: $(INSTALLED)
	@test -n "$(PROJECT)" -a -n "$(REGION)" -a -n "$(BUCKET)" || \
	  { echo 'usage: make dataflow PROJECT=... REGION=... BUCKET=...' >&2; exit 2; }
	$(BIN)/python -m pipelines.build_dataset --runner_config configs/dataflow.yaml \
	  --uploads $(UPLOADS) --output $(DATASETS) --build_id $(BUILD_ID) --config $(CONFIG) \
	  --project $(PROJECT) --region $(REGION) \
	  --temp_location gs://$(BUCKET)/tmp --staging_location gs://$(BUCKET)/staging

template:
	PROJECT=$(PROJECT) REGION=$(REGION) BUCKET=$(BUCKET) deploy/build_template.sh

clean:
	rm -rf $(OUT) data bench fuzz build *.egg-info .pytest_cache
