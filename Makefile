# Two commands on a fresh machine: `make report` and `make test` (see README).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
QUARTER ?= 2026Q3
DATA ?= data/sample
PRESET ?=
SAMPLE_SEED ?= 7
REPORT_ARGS ?=
LAB_ARGS ?=
PIP := $(BIN)/python -m pip install -q --disable-pip-version-check
# two stamps: `make report` installs the runtime only; `make test` adds the test tools
# (and the optional GPL peer) on top, so `make report` then `make test` installs just that part
RUNTIME := $(VENV)/.runtime-installed
DEV := $(VENV)/.dev-installed

.PHONY: venv runtime report test test-fast test-slow lab bench sample clean-venv

# the kit, its notebooks and the report: pinned requirements.txt, then abmkit itself
# (editable, --no-deps: its dependencies are exactly the pins above)
$(RUNTIME): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(PIP) -U pip "setuptools>=68"
	$(PIP) -r requirements.txt
	$(PIP) --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

# test and bench tools, plus the ChannelAttribution peer (compiled from source; optional)
$(DEV): requirements-dev.txt requirements-peer.txt | $(RUNTIME)
	$(PIP) -r requirements-dev.txt
	$(PIP) -r requirements-peer.txt \
	  || echo "WARNING: the ChannelAttribution peer could not be installed: its differential tests and bench rows will be skipped"
	touch $@

runtime: $(RUNTIME)

# the full development environment (runtime + tests + peer)
venv: $(DEV)

data/sample/raw/column_map.yaml: | $(RUNTIME)
	$(BIN)/python -m abmkit sample --out data/sample --seed $(SAMPLE_SEED)

sample: data/sample/raw/column_map.yaml

ifeq ($(DATA),data/sample)
report: $(RUNTIME) sample
	$(BIN)/python -m abmkit report --quarter $(QUARTER) --data $(DATA) --out reports $(REPORT_ARGS)
else
report: $(RUNTIME)
	$(BIN)/python -m abmkit report --quarter $(QUARTER) --data $(DATA) $(if $(PRESET),--preset $(PRESET)) --out reports $(REPORT_ARGS)
endif

test: $(DEV)
	$(BIN)/python -m pytest -n 2 --dist loadfile -q -m "not slow"

# the suite without the notebook-executing tests (about half the time)
test-fast: $(DEV)
	$(BIN)/python -m pytest -n 2 --dist loadfile -q -m "not slow and not notebook"

test-slow: $(DEV)
	$(BIN)/python -m pytest -q -m slow

# as root (a container) jupyter refuses to start without --allow-root
lab: $(RUNTIME)
	$(BIN)/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

# bench-only peers (polars) on top of the test tools
$(VENV)/.bench-installed: requirements-bench.txt | $(DEV)
	$(PIP) -r requirements-bench.txt
	touch $@

bench: $(VENV)/.bench-installed
	mkdir -p bench/results
	for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
