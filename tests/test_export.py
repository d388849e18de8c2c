"""Export (model.tflite, saved_model/) and prediction without TensorFlow, on the tiny trained run of each half.

The tiny runs export at the end of training (train.py); these tests compare the LiteRT backend with the
TensorFlow one (the half's own graph or Keras model, independently built from the checkpoint) image by image.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from helpers import CLASSES, IMPLS, QUIET_TF, REPO, assert_user_error, pattern, run_script, save, shape_image

ENV = {**os.environ, **QUIET_TF}


@pytest.fixture(scope="module")
def images(tiny, tmp_path_factory):
    """The tiny data's images, and others of other sizes and kinds (the model resizes inside)."""
    folder = tmp_path_factory.mktemp("images")
    shutil.copytree(tiny[0], folder / "tiny")
    save(folder / "odd" / "wide.jpg", Image.fromarray(pattern(28, 45, 1)), "JPEG", quality=90)
    save(folder / "odd" / "big square.png", shape_image("square", 7).resize((96, 96)), "PNG")
    save(folder / "odd" / "gray.png", shape_image("circle", 8).convert("L"), "PNG")
    save(folder / "odd" / "palette.gif", shape_image("stripes", 9).convert("P"), "GIF")
    return folder


def predictions(run_dir, folder, backend):
    proc = run_script("use_model.py", folder, "--run-dir", run_dir, "--backend", backend, "--top-k", len(CLASSES),
                      "--json", env=ENV)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["backend"] == backend and not out["errors"]
    return {r["path"]: {p["class"]: p["probability"] for p in r["predictions"]} for r in out["results"]}


@pytest.mark.slow
@pytest.mark.parametrize("impl", IMPLS)
def test_litert_and_tensorflow_give_the_same_classes_and_probabilities(runs, images, impl):
    run = json.loads((runs[impl] / "run.json").read_text())
    assert run["export"]["best_epoch"] == run["best"]["epoch"] and (runs[impl] / "model.tflite").exists()
    lite, tf = predictions(runs[impl], images, "litert"), predictions(runs[impl], images, "tf")
    assert sorted(lite) == sorted(tf) and len(lite) == 3 * 16 + 4
    answers = set()
    for path in tf:
        answers.add(max(tf[path], key=tf[path].get))
        assert max(lite[path], key=lite[path].get) == max(tf[path], key=tf[path].get), path
        for name in CLASSES:
            assert abs(lite[path][name] - tf[path][name]) <= 1e-4, (path, name, lite[path], tf[path])
            # the trained model is sure of most images: compare the small probabilities too, relatively
            if min(lite[path][name], tf[path][name]) > 1e-20:
                assert abs(np.log(lite[path][name] / tf[path][name])) <= 1e-3, (path, name, lite[path], tf[path])
    assert answers <= set(CLASSES)  # (the logits, in the test below, are the sharper comparison)


@pytest.mark.parametrize("impl", IMPLS)
def test_tflite_logits_equal_the_halfs_own_and_the_saved_models_on_encoded_bytes(runs, images, impl):
    """LiteRT on Pillow's pixels vs the half that trained the run (its own graph or model, from the checkpoint,
    TensorFlow's preprocessing) and vs the SavedModel's signature on the files' bytes (TensorFlow's decoders)."""
    import tensorflow as tf
    import flowio
    from core import halves
    from core.lite import LitePredictor
    from core.run_dir import Run
    from flowio.images import load_image as load_pixels
    own = halves.half(impl).Predictor(Run.read(runs[impl]))
    lite = LitePredictor(runs[impl] / "model.tflite")
    serving = tf.saved_model.load(str(runs[impl] / "saved_model")).signatures["serving_default"]
    files = sorted((images / "tiny").rglob("*.png"))[::4] + [images / "odd" / "wide.jpg",
                                                              images / "odd" / "big square.png"]
    reference = np.concatenate([own(flowio.preprocess(flowio.load_image(str(f)), 32).numpy()[None]) for f in files])
    scale = np.abs(reference).max()
    got = np.concatenate([lite.logits(load_pixels(f)[None]) for f in files])
    served = serving(images=tf.constant([f.read_bytes() for f in files]))
    for name, logits in (("litert", got), ("saved_model", served["logits"].numpy())):
        assert np.abs(logits - reference).max() <= 1e-4 * scale, name
    np.testing.assert_allclose(served["probabilities"].numpy(), np.concatenate([lite(load_pixels(f)[None])
                                                                                for f in files]), atol=1e-4)
    # the guard: the images' logits differ by far more than the tolerance, so the comparison says something
    assert np.ptp(reference, axis=0).max() > 100 * 1e-4 * scale


@pytest.mark.parametrize("impl", IMPLS)
def test_use_model_on_litert_answers_without_importing_tensorflow(runs, images, impl):
    script = str(REPO / "scripts/use_model.py")
    code = ("import runpy, sys\n"
            f"sys.argv = [{script!r}, {str(images / 'odd')!r}, '--run-dir', {str(runs[impl])!r}, '--top-k', '1']\n"
            "try:\n"
            f"    runpy.run_path({script!r}, run_name='__main__')\n"
            "except SystemExit as stop:\n"
            "    assert not stop.code, stop.code\n"
            "print('tensorflow loaded:', 'tensorflow' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[-1] == "tensorflow loaded: False"
    assert len(lines) == 5 and all(line.split("\t")[1] in CLASSES for line in lines[:-1])


@pytest.mark.slow
def test_auto_takes_tensorflow_when_the_export_is_missing_or_stale_and_litert_says_what_is_missing(runs, images,
                                                                                                   tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(runs["modern"], run_dir)
    run = json.loads((run_dir / "run.json").read_text())
    run["export"]["best_epoch"] = -1  # weights trained after the export
    (run_dir / "run.json").write_text(json.dumps(run))
    proc = run_script("use_model.py", images / "odd", "--run-dir", run_dir, "--json", env=ENV)
    assert proc.returncode == 0 and json.loads(proc.stdout)["backend"] == "tf", proc.stderr[-2000:]
    (run_dir / "model.tflite").unlink()
    assert_user_error(run_script("use_model.py", images / "odd", "--run-dir", run_dir, "--backend", "litert"),
                      "no model.tflite", "scripts/export.py")
