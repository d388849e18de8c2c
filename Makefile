# The two set-up commands of the README. Each creates .venv and installs the project into it when
# setup.cfg or pyproject.toml changed, then runs its job.
#   make demo       sample digits -> flowio -> train (modern) -> evaluate -> use_model
#   make demo-legacy  the same with the legacy half
#   make demo-keras3  the same with the keras3 half (BACKEND=jax for JAX; tensorflow by default)
#   make test       the whole test suite (what .ci/run calls)
#   make test-fast  the quick subset, for iterating

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo demo-legacy demo-keras3 test test-fast bench clean

venv: $(STAMP)

# ai-edge-litert has no wheel on some platforms: TensorFlow stays the fallback there.
$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,sample,lite]' || $(PY) -m pip install --quiet -e '.[dev,sample]'
	touch $@

# The main job on scikit-learn's digits at 32x32 (~440 steps: BN's statistics for validation come from precise BN,
# train.py's default, not from moving averages at the ResNets' decay 0.997).
DEMO_TRAIN := --data tfrecords --image-size 32 --epochs 10 --batch-size 32 --lr 0.02 --no-flip

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

BACKEND ?= tensorflow
demo-keras3: $(STAMP)
	$(PY) scripts/make_sample_data.py data --holdout 10 --holdout-dir samples
	$(PY) scripts/flowio.py data --out tfrecords
	$(PY) scripts/train.py --impl keras3 --keras-backend $(BACKEND) $(DEMO_TRAIN) --run-dir runs/keras3-$(BACKEND)
	$(PY) scripts/evaluate.py --keras-backend $(BACKEND)
	$(PY) scripts/use_model.py samples --top-k 3

# Two pytest workers (pytest-xdist), each taking whole test files (their module fixtures made once): most tests
# wait on a subprocess or run small graphs on one core, so two share the machine's two cores. Each worker has its
# own session, so each trains the shared tiny runs when one of its files needs them.
PYTEST := $(PY) -m pytest -n 2 --dist loadfile

test: $(STAMP)
	$(PYTEST)

test-fast: $(STAMP)
	$(PYTEST) -m "not slow"

bench: $(STAMP)
	$(PY) bench/run.py

clean:
	rm -rf data samples tfrecords runs .pytest_cache
