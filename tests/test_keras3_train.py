"""The keras3 half as a user runs it, on each backend: ``train.py --impl keras3 --keras-backend B`` with slim's
recipe (rmsprop, moving averages, label smoothing), its run directory, prediction on the other backend and from
the exports, and conversion to and from the other halves. The runs are conftest's ``keras3_runs`` (one per
backend, shared with tests/test_faults.py's kill test, which kills them at seeded moments and resumes them);
each command is a real process, so each backend is its own. Marked slow: make test's, not make test-fast's.
"""

import json
import os

import h5py
import numpy as np
import pytest

from helpers import (BATCH, KERAS3_BACKENDS, QUIET_TF, assert_user_error, event_tags, read_run, run_script,
                     train_args)

pytestmark = pytest.mark.slow

STEPS_PER_EPOCH = 36 // BATCH  # the tiny records: 48 images, a quarter held out
ENV = {**os.environ, **QUIET_TF, "TF_DETERMINISTIC_OPS": "1"}


@pytest.mark.parametrize("backend", KERAS3_BACKENDS)
def test_a_keras3_run_has_the_run_directory_and_records_its_backend(keras3_runs, backend):
    run_dir = keras3_runs[backend]
    run = read_run(run_dir)
    assert run["impl"] == "keras3" and run["keras_backend"] == backend and run["state"] == "complete"
    assert [e["step"] for e in run["epochs"]] == [STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH]
    assert run["hyper"]["moving_average_decay"] == 0.9 and run["hyper"]["optimizer"] == "rmsprop"
    assert all(np.isfinite(e["loss"]) for e in run["epochs"])
    files = sorted(os.listdir(run_dir))
    for name in ("best.h5", "last.keras", "logs", "run.json", "labels.txt", "curves.png", "model.tflite",
                 "saved_model"):
        assert name in files
    assert "backup.weights.h5" not in files and not any(f.startswith(".tmp-") for f in files)
    assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"} <= event_tags(run_dir / "logs/train")
    assert {"epoch_loss", "epoch_accuracy"} <= event_tags(run_dir / "logs/validation")
    with h5py.File(run_dir / "best.h5", "r") as f:  # keyed by layer name: tf_keras's layout, not Keras 3's
        assert "layer1__block_1__conv1" in f.attrs["layer_names"].astype(str)


def predictions(run_dir, *args):
    proc = run_script("use_model.py", "--run-dir", run_dir, "--json", "--top-k", 3, *args, env=ENV)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout)["results"]
    return {r["path"]: {p["class"]: p["probability"] for p in r["predictions"]} for r in results}


@pytest.mark.parametrize("backend", KERAS3_BACKENDS)
def test_the_other_backend_and_the_litert_export_predict_what_the_run_learnt(keras3_runs, tiny, backend):
    """A run trained on one backend, predicted by Keras 3 on the other and by its model.tflite (the weights by
    name in the TensorFlow model, modern/export.py): the same probabilities within LiteRT's 1e-4."""
    other = next(b for b in KERAS3_BACKENDS if b != backend)
    images = sorted(str(p) for p in (tiny[0] / "square").iterdir())[:4]
    native = predictions(keras3_runs[backend], "--backend", "native", "--keras-backend", other, *images)
    lite = predictions(keras3_runs[backend], "--backend", "litert", *images)
    assert native.keys() == lite.keys() == set(images)
    worst = max(abs(native[i][c] - lite[i][c]) for i in images for c in native[i])
    assert worst < 1e-4, worst


def test_keras_backend_is_refused_for_the_other_halves(tiny, tmp_path):
    proc = run_script("train.py", *train_args("modern", tiny[1], tmp_path / "run", "--keras-backend", "jax"), env=ENV)
    assert_user_error(proc, "--keras-backend is the keras3 half's")


def converted(src, out, *args):
    from cli.convert_checkpoint import main
    assert main([str(src), "--out", str(out), *map(str, args)]) == 0
    return out


def best_values(run_dir):
    from core import checkpoints
    from core.run_dir import Run
    return checkpoints.read(str(run_dir), Run.read(run_dir).model)[0]


def assert_same_values(got, want):
    assert sorted(got) == sorted(want) and len(want) > 100
    for name, value in want.items():
        assert got[name].dtype == value.dtype and np.array_equal(got[name], value), name


def test_keras3_runs_convert_to_the_other_halves_and_back_bit_identical(keras3_runs, runs, tmp_path):
    """keras3 -> legacy (a TF1 Saver checkpoint) -> keras3, and a modern run's best.h5 -> keras3 -> modern: every
    weight back bit for bit, by name."""
    source = keras3_runs["tensorflow"]
    as_legacy = converted(source, tmp_path / "as-legacy", "--to", "legacy")
    back = converted(as_legacy, tmp_path / "back", "--to", "keras3")
    assert read_run(back)["impl"] == "keras3" and read_run(as_legacy)["converted_from"]["impl"] == "keras3"
    assert_same_values(best_values(back), best_values(source))
    as_keras3 = converted(runs["modern"], tmp_path / "from-modern", "--to", "keras3")
    assert_same_values(best_values(as_keras3), best_values(runs["modern"]))
    assert_same_values(best_values(converted(as_keras3, tmp_path / "to-modern", "--to", "modern")),
                       best_values(runs["modern"]))
