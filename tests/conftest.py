"""Shared fixtures (nothing else: helpers and constants are tests/helpers.py's): tiny real data (3 classes of
32x32 images) and one tiny trained run per half, made once per test session.
"""

import pytest

from helpers import CLASSES, IMPLS, run_script, save, shape_image, train_run


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
