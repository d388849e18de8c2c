"""The sample data of the main job, the scripts' --help, and flowio's conversion staying TensorFlow-free."""

import subprocess
import sys

import numpy as np
from PIL import Image

from helpers import REPO, run_script, tree_bytes


def test_sample_digits_are_1797_pngs_in_ten_class_folders_and_stable(tmp_path):
    out = tmp_path / "data"
    proc = run_script("make_sample_data.py", out, "--size", 24)
    assert proc.returncode == 0, proc.stderr
    first = tree_bytes(out)
    assert len(first) == 1797
    assert sorted(p.name for p in out.iterdir()) == [str(d) for d in range(10)]
    from sklearn.datasets import load_digits
    digits = load_digits()
    for index in (0, 1000, 1796):
        img = Image.open(out / str(digits.target[index]) / f"digit_{index:04d}.png")
        assert img.size == (24, 24) and img.mode == "L"
        # dark ink on white paper: the darkest quarter of the 8x8 scan is where the ink is
        small = np.asarray(img.resize((8, 8), Image.BOX), dtype=float)
        ink = digits.images[index] > 8
        assert small[ink].mean() < small[~ink].mean() - 60
    assert run_script("make_sample_data.py", out, "--size", 24).returncode == 0
    assert tree_bytes(out) == first


def test_every_script_explains_every_flag():
    for script in sorted((REPO / "scripts").glob("*.py")):
        proc = run_script(script.name, "--help")
        assert proc.returncode == 0, (script.name, proc.stderr)
        assert "usage:" in proc.stdout
    text = run_script("flowio.py", "--help").stdout
    for flag in ("DATA_DIR", "--out", "--val-fraction", "--shards", "--workers", "--seed", "--overwrite"):
        assert flag in text
    text = run_script("train.py", "--help").stdout
    for flag in ("--optimizer", "--learning-rate", "--opt-epsilon", "--rmsprop-decay", "--rmsprop-momentum",
                 "--adam-beta1", "--adam-beta2", "--adagrad-initial-accumulator-value", "--adadelta-rho",
                 "--ftrl-learning-rate-power", "--ftrl-initial-accumulator-value", "--ftrl-l1", "--ftrl-l2",
                 "--learning-rate-decay-type", "--num-epochs-per-decay", "--learning-rate-decay-factor",
                 "--end-learning-rate", "--label-smoothing", "--moving-average-decay", "--trainable-scopes",
                 "--clip-gradient-norm", "--bn-decay"):
        assert flag in text, flag


def test_conversion_does_not_import_tensorflow():
    code = ("import sys, flowio, flowio.convert, flowio.images, flowio.records;"
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
