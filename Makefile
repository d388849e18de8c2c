# The two set-up commands of the README. Each creates .venv and installs the project into it when
# setup.cfg or pyproject.toml changed, then runs its job.
#   make demo       sample digits -> flowio -> train (modern) -> evaluate -> use_model
#   make demo-legacy  the same with the legacy half
#   make test       the whole test suite (what .ci/run calls)
#   make test-fast  the quick subset, for iterating

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo demo-legacy test test-fast bench clean

venv: $(STAMP)

# ai-edge-litert has no wheel on some platforms: TensorFlow stays the fallback there.
$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,sample,lite]' || $(PY) -m pip install --quiet -e '.[dev,sample]'
	touch $@

# The main job on scikit-learn's digits at 32x32. --bn-decay 0.9: with only ~440 steps, BN's moving averages
# at the ResNets' 0.997 would still be far from the data's statistics when validation runs.
DEMO_TRAIN := --data tfrecords --image-size 32 --epochs 10 --batch-size 32 --lr 0.02 --bn-decay 0.9 --no-flip

demo: $(STAMP)
	$(PY) scripts/make_sample_data.py data --holdout 10 --holdout-dir samples
	$(PY) scripts/flowio.py data --out tfrecords
	$(PY) scripts/train.py --impl modern $(DEMO_TRAIN)
	$(PY) scripts/evaluate.py
	$(PY) scripts/use_model.py samples --top-k 3

demo-legacy: $(STAMP)
	$(PY) scripts/make_sample_data.py data --holdout 10 --holdout-dir samples
	$(PY) scripts/flowio.py data --out tfrecords
	$(PY) scripts/train.py --impl legacy $(DEMO_TRAIN)
	$(PY) scripts/evaluate.py
	$(PY) scripts/use_model.py samples --top-k 3

test: $(STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

bench: $(STAMP)
	$(PY) bench/run.py

clean:
	rm -rf data samples tfrecords runs .pytest_cache
