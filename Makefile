# The two set-up commands of the README. Each creates .venv and installs the project into it when
# setup.cfg or pyproject.toml changed, then runs its job.
#   make demo       sample digits -> flowio -> (train -> evaluate -> use_model as they land)
#   make test       the whole test suite (what .ci/run calls)
#   make test-fast  the quick subset, for iterating

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-fast bench clean

venv: $(STAMP)

# ai-edge-litert has no wheel on some platforms: TensorFlow stays the fallback there.
$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,sample,lite]' || $(PY) -m pip install --quiet -e '.[dev,sample]'
	touch $@

demo: $(STAMP)
	$(PY) scripts/make_sample_data.py data
	$(PY) scripts/flowio.py data --out tfrecords

test: $(STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

bench: $(STAMP)
	$(PY) bench/flowio_bench.py

clean:
	rm -rf data tfrecords runs .pytest_cache
