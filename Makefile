# Newcomer commands: `make run` builds a dataset from the embedded sample,
# `make test` runs the suite. Both set up .venv first when it is missing.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
SAMPLE := data/sample/uploads
SAMPLE_STAMP := data/sample/.generated
OUT ?= out
CONFIG ?= configs/default.yaml
PYTEST_ARGS ?=

.PHONY: setup sample run test lint bench clean

$(INSTALLED): setup.py constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $@

setup: $(INSTALLED)

$(SAMPLE_STAMP): $(INSTALLED) pipelines/make_sample.py pipelines/sample_audio.py
	rm -rf $(SAMPLE)
	$(BIN)/python -m pipelines.make_sample --out $(SAMPLE)
	touch $@

sample: $(SAMPLE_STAMP)

run: $(SAMPLE_STAMP)
	$(BIN)/python -m pipelines.build_dataset --uploads $(SAMPLE) --output $(OUT) \
	  --config $(CONFIG)

test: $(INSTALLED)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(INSTALLED)
	mkdir -p bench
	$(BIN)/python -m pipelines.bench_metrics --out bench/metrics.json

lint: $(INSTALLED)
	$(BIN)/ruff check pipelines transforms schemas tests setup.py

clean:
	rm -rf $(OUT) data bench build *.egg-info .pytest_cache
