"""Shared fixtures: tiny real data (3 classes of 32x32 images) and one tiny trained run per half.

Trained once per test session and shared by test_train.py and test_checkpoints.py.
"""

import os

import numpy as np
import pytest
from PIL import Image

from helpers import run_script, save

IMPLS = ["legacy", "modern"]
CLASSES = ["circle", "square", "stripes"]
EPOCHS, BATCH = 2, 4
QUIET_TF = {"TF_CPP_MIN_LOG_LEVEL": "2"}


def shape_image(kind, seed):
    """A 32x32 picture of ``kind`` with a random colour, position jitter and noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:32, 0:32]
    cy, cx = rng.integers(12, 20, 2)
    if kind == "circle":
        mask = (y - cy) ** 2 + (x - cx) ** 2 < 64
    elif kind == "square":
        mask = (abs(y - cy) < 8) & (abs(x - cx) < 8)
    else:
        mask = (x // 4) % 2 == 0
    colour = rng.integers(80, 255, 3)
    pixels = np.where(mask[..., None], colour, 255 - colour // 3) + rng.normal(0, 8, (32, 32, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """``(data dir, records dir)``: 16 images per class, a quarter of them held out."""
    base = tmp_path_factory.mktemp("tiny")
    for c, kind in enumerate(CLASSES):
        for i in range(16):
            save(base / "data" / kind / f"{i:02d}.png", shape_image(kind, 100 * c + i), "PNG")
    proc = run_script("flowio.py", base / "data", "--out", base / "records", "--val-fraction", 0.25, "--quiet")
    assert proc.returncode == 0, proc.stderr
    return base / "data", base / "records"


def train_args(impl, records, run_dir, *extra, epochs=EPOCHS, export=False):
    """The train.py arguments of the tiny runs: 32x32, batch 4, BN decay 0.9, a checkpoint every 4 steps, and no
    export at the end unless ``export`` (the shared runs export; tests/test_export.py checks what they wrote)."""
    return ["--impl", impl, "--data", records, "--image-size", 32, "--epochs", epochs, "--batch-size", BATCH,
            "--lr", 0.01, "--bn-decay", 0.9, "--no-flip", "--save-every", 4, "--run-dir", run_dir, "--quiet",
            *([] if export else ["--no-export"]), *extra]


def train_run(impl, records, run_dir, *extra, epochs=EPOCHS, export=False, env=None, **kwargs):
    return run_script("train.py", *train_args(impl, records, run_dir, *extra, epochs=epochs, export=export),
                      env={**os.environ, **QUIET_TF, **(env or {})}, **kwargs)


@pytest.fixture(scope="session")
def runs(tiny, tmp_path_factory):
    """``{impl: run dir}``, each trained once for 2 epochs and exported; ``runs/latest`` ends at modern's."""
    _, records = tiny
    root = tmp_path_factory.mktemp("train") / "runs"
    out = {}
    for impl in IMPLS:
        # deterministic ops: tests/test_faults.py's killed runs must end exactly as these
        proc = train_run(impl, records, root / f"{impl}-run", export=True, env={"TF_DETERMINISTIC_OPS": "1"})
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert f"train: {impl} jianshu_resnet_50 -> " in proc.stdout
        out[impl] = root / f"{impl}-run"
    return out
