# The two commands a new user needs: `make demo` (main job on the synthetic default) and
# `make test`. Both create or refresh .venv themselves.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo quick test test-slow test-all bench models-table clean-venv

$(STAMP): setup.cfg pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

# Full flow on the embedded synthetic cohort: training, conversion, C simulation, report.
demo: $(STAMP)
	$(PY) train_qkeras.py $(ARGS)

# Small smoke profile (a few minutes).
quick: $(STAMP)
	$(PY) train_qkeras.py --quick --out projects/quick --force $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -m "not slow" -q $(ARGS)

test-slow: $(STAMP)
	$(PY) -m pytest -m slow -q $(ARGS)

test-all: $(STAMP)
	$(PY) -m pytest -q $(ARGS)

# Regenerates the model table in README.md (builds, trains briefly, converts and compiles each model).
models-table: $(STAMP)
	$(PY) -m qcascade.models.summary --out docs/models.md --readme docs/design.md --bits-study

bench: $(STAMP)
	$(PY) -m bench.run_all --out BENCHMARKS.md

clean-venv:
	rm -rf $(VENV)
