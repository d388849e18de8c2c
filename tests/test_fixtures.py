"""Runs written before the code that reads them: ``tests/fixtures/<impl>-lenet5``.

Each is a lenet5 run of 2 epochs on the tiny records (``conftest.tiny``: the same images, the same seed),
exported, written by the main branch before ``core/`` existed (commit 6b6c27a). Whatever the code becomes, it
must still predict with them, evaluate them, and continue them. Every command runs as a user would run it —
without ``TF_CPP_MIN_LOG_LEVEL`` — and must print nothing on stderr: no TensorFlow log line, no warning.
"""

import os
import shutil

import pytest

from helpers import CLASSES, IMPLS, REPO, read_run, run_script

FIXTURES = REPO / "tests" / "fixtures"
CLEAN = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_LOGS")}


def quiet(name, *args):
    """Run a script as a user would; it must succeed and keep stderr empty."""
    proc = run_script(name, *args, env=CLEAN)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr == "", proc.stderr[-2000:]
    return proc


@pytest.mark.slow
@pytest.mark.parametrize("impl", IMPLS)
def test_a_run_written_before_core_predicts_evaluates_and_continues(impl, tiny, tmp_path):
    run_dir = tmp_path / f"{impl}-lenet5"
    shutil.copytree(FIXTURES / f"{impl}-lenet5", run_dir)
    before = read_run(run_dir)
    assert before["impl"] == impl and len(before["epochs"]) == 2 and before["export"]["best_epoch"] == 1
    image = tiny[0] / "circle" / "00.png"
    answers = {}
    for backend in ("litert", "tf"):  # its model.tflite, and the half that trained it from its checkpoint
        lines = quiet("use_model.py", image, "--run-dir", run_dir, "--backend", backend).stdout.splitlines()
        answers[backend] = [line.split("\t") for line in lines]
        assert [a[1] for a in answers[backend]] != [] and {a[1] for a in answers[backend]} <= set(CLASSES)
    for (_, c1, p1), (_, c2, p2) in zip(answers["litert"], answers["tf"]):
        assert c1 == c2 and abs(float(p1) - float(p2)) < 1e-4
    report = quiet("evaluate.py", run_dir, "--data", tiny[1]).stdout
    assert "12 images, accuracy" in report and read_run(run_dir)["evaluation"]["examples"] == 12

    # the same command with one more epoch continues it (export included), keeping the epochs it had
    quiet("train.py", "--impl", impl, "--model", "lenet5", "--data", tiny[1], "--image-size", 32, "--epochs", 3,
          "--batch-size", 4, "--lr", 0.01, "--no-flip", "--save-every", 4, "--run-dir", run_dir, "--quiet")
    after = read_run(run_dir)
    assert after["state"] == "complete" and [e["epoch"] for e in after["epochs"]] == [1, 2, 3]
    assert after["epochs"][:2] == before["epochs"] and after["resumed_from_steps"][-1] == 18
    assert after["export"]["best_epoch"] == after["best"]["epoch"]
    quiet("use_model.py", image, "--run-dir", run_dir)


@pytest.mark.slow
def test_an_old_modern_runs_keras_sgd_momentum_continues_with_the_step_keras_would_have_taken():
    """The modern fixture trained with Keras ``SGD(momentum=0.9)``, whose slot is ``v`` (``w += v``); the modern
    half now runs TF1's Momentum (slot ``a``, ``w -= lr * a``). Continuing it converts ``a = -v / lr``, so the next
    step is the one Keras's own SGD, loaded with its slots from the same file, takes."""
    import numpy as np
    import tf_keras as keras

    from core.run_dir import Run
    from modern.train import compiled_model, continued
    run = Run.read(FIXTURES / "modern-lenet5")
    assert run.before_recipe and run.hyper.optimizer == "momentum"
    rng = np.random.default_rng(0)
    images, labels = rng.uniform(0, 1, (4, 32, 32, 3)).astype(np.float32), np.array([0, 1, 2, 1])
    path = str(FIXTURES / "modern-lenet5" / "last.keras")
    keras_sgd = keras.models.load_model(path)
    assert type(keras_sgd.optimizer).__name__ == "SGD" and int(keras_sgd.optimizer.iterations) == 18
    keras_sgd._steps_per_execution.assign(1)  # it was compiled to run several steps per call
    before = keras_sgd.get_weights()
    keras_sgd.train_on_batch(images, labels)
    model = compiled_model(run, decay_steps=9)  # 36 training images, batch 4: 9 steps per decay
    continued(model, path, run.hyper, decay_steps=9)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))
    model.train_on_batch(images, labels)
    for want, got, start in zip(keras_sgd.get_weights(), model.get_weights(), before):
        scale = np.max(np.abs(want - start))
        assert scale > 1e-5 and np.max(np.abs(got - want)) <= 1e-3 * scale  # the step, not only the weights
