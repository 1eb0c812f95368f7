# lez: `make demo` runs the pipeline on the bundled demo scenario; `make test` runs the tests.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
SHARED ?= ../shared/data

.PHONY: help install kafka demo test test-unit test-integration test-e2e test-bench lint typecheck check bench-plates bench-pipeline services

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch/torchvision for easyocr, from PyPI (a large download the first time; pip caches it).
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[dev]'
	# Only for the PP-OCRv4 recogniser model file it ships; its own deps would add opencv-python.
	$(PY) -m pip install -q --no-deps rapidocr-onnxruntime==1.4.4
	touch $@

install: $(VENV)/.installed ## create ./.venv and install lez with its dependencies

demo: install ## run the embedded pipeline on fixtures/demo, print a summary, keep the console up
	$(VENV)/bin/lez run --scenario fixtures/demo

services: ## start what the tests need (PostgreSQL, Chromium) if it is not there
	bash scripts/test-services.sh

KAFKA_LIBS := var/kafka/libs
$(KAFKA_LIBS)/.copied: scripts/kafka/pom.xml
	mkdir -p $(KAFKA_LIBS)
	mvn -q -B -f scripts/kafka/pom.xml dependency:copy-dependencies -DoutputDirectory=$(abspath $(KAFKA_LIBS))
	touch $@

kafka: $(KAFKA_LIBS)/.copied ## Apache Kafka's jars from Maven Central into var/kafka/libs (the tests start brokers with java -cp)

# --strict-skips: a skip fails the run unless tests/allowed_skips.toml lists it (tests/skip_policy.py)
test: install services kafka ## all test tiers: unit, integration (real broker, SQLite + PostgreSQL), e2e
	$(PY) -m pytest -q --strict-skips

test-unit: install
	$(PY) -m pytest -q --strict-skips tests/unit

test-integration: install services kafka
	$(PY) -m pytest -q --strict-skips tests/integration

test-e2e: install services
	$(PY) -m pytest -q --strict-skips tests/e2e

lint: install ## ruff and the import contract (lint-imports: app above stages above core)
	$(VENV)/bin/ruff check lez camera_ingest plate_reader fidus_adapter fines tests
	$(VENV)/bin/lint-imports

typecheck: install ## mypy (strict)
	$(VENV)/bin/mypy

check: lint typecheck test ## everything CI needs

test-kafka-chaos: install services kafka ## lez chaos on a 3-node Apache Kafka cluster (not in make test yet)
	$(PY) -m pytest -q -m kafka_chaos tests/e2e

test-bench: install ## the tests marked bench (they read ../shared/data; not part of make test)
	$(PY) -m pytest -q -m bench

BENCH_RATE ?= 20
BENCH_SECONDS ?= 60
bench-pipeline: install ## open-loop load through the real stack on scenario-example (+ highest rate with p95 <= 2 s)
	$(VENV)/bin/lez bench-pipeline $(SHARED)/scenario-example --rate $(BENCH_RATE) --seconds $(BENCH_SECONDS) --report var/bench-pipeline.json --find-max

bench-plates: install ## plate reading accuracy and speed on ../shared/data
	$(PY) -m lez.app.bench_plates $(SHARED)

.PHONY: chaos
CHAOS_SCENARIO ?= ../shared/data/scenario-example
# Real OCR in both runs; CHAOS_FLAGS=--ground-truth-plates reads plates from frames.csv (faster).
CHAOS_FLAGS ?=
chaos: install ## replay a scenario while killing each worker and cutting the edge's link; compare with a clean run
	$(VENV)/bin/lez chaos $(CHAOS_SCENARIO) $(CHAOS_FLAGS)
