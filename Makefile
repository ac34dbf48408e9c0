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

.PHONY: venv report test test-fast lab bench sample clean-venv

$(BIN)/.installed: requirements.txt requirements-dev.txt requirements-peer.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -U pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-peer.txt \
	  || echo "WARNING: the ChannelAttribution peer could not be installed: its differential tests and bench rows will be skipped"
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

venv: $(BIN)/.installed

data/sample/raw/column_map.yaml: | venv
	$(BIN)/python -m abmkit sample --out data/sample --seed $(SAMPLE_SEED)

sample: data/sample/raw/column_map.yaml

ifeq ($(DATA),data/sample)
report: venv sample
	$(BIN)/python -m abmkit report --quarter $(QUARTER) --data $(DATA) --out reports $(REPORT_ARGS)
else
report: venv
	$(BIN)/python -m abmkit report --quarter $(QUARTER) --data $(DATA) $(if $(PRESET),--preset $(PRESET)) --out reports $(REPORT_ARGS)
endif

test: venv
	$(BIN)/python -m pytest -n 2 --dist loadfile -q -m "not slow"

test-slow: venv
	$(BIN)/python -m pytest -q -m slow

lab: venv
	$(BIN)/jupyter lab notebooks/

bench: venv
	mkdir -p bench/results
	for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
