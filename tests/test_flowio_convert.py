"""scripts/flowio.py end to end: real image files in, real TFRecords out, read back by flowio's reader."""

import fcntl
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import (assert_user_error, mixed_tree, pattern, pillow_rgb, run_script, save, tree_bytes)

SORTED_CLASSES = ["bird", "cat s", "狗"]  # sorted() order of the folder names: the class ids


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """The mixed folder converted once with 2 workers: ``(data dir, records dir, valid, skipped, kept, proc)``."""
    base = tmp_path_factory.mktemp("mixed")
    data = base / "data"
    valid, skipped, kept = mixed_tree(data, base)
    out = base / "records"
    proc = run_script("flowio.py", data, "--out", out, "--workers", 2, "--shards", 2, "--val-fraction", 0.3)
    assert proc.returncode == 0, proc.stderr
    return data, out, valid, skipped, kept, proc


def read_all(out):
    import flowio
    records = {}
    for split in ("train", "validation"):
        for r in flowio.raw_dataset(str(out), split).as_numpy_iterator():
            name = r["filename"].decode()
            assert name not in records, f"{name} is in more than one record"
            records[name] = (split, int(r["label"]), r["image"])
    return records


def test_every_valid_image_is_in_one_split_with_its_folders_label(mixed):
    data, out, valid, skipped, kept, proc = mixed
    records = read_all(out)
    assert set(records) == set(valid)
    for name, (split, label, _) in records.items():
        assert SORTED_CLASSES[label] == valid[name], name
    assert (out / "labels.txt").read_text(encoding="utf-8") == "0:bird\n1:cat s\n2:狗\n"
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["classes"] == SORTED_CLASSES
    for split in ("train", "validation"):
        in_split = [n for n, r in records.items() if r[0] == split]
        assert manifest["num_examples"][split] == len(in_split)
        for c in SORTED_CLASSES:
            assert manifest["counts"][split][c] == sum(valid[n] == c for n in in_split)
    # every class has images on both sides of a 30% split
    assert all(manifest["counts"]["validation"][c] >= 1 for c in SORTED_CLASSES)


def test_skipped_files_are_listed_with_reasons_and_counted(mixed):
    data, out, valid, skipped, kept, proc = mixed
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    reasons = {s["file"]: s["reason"] for s in manifest["skipped"]}
    assert set(reasons) == set(skipped)
    for name, word in skipped.items():
        assert word in reasons[name], (name, reasons[name])
    assert f"{len(skipped)} skipped" in proc.stdout
    assert f"{len(valid)} images in 3 classes" in proc.stdout
    assert not any(".hidden" in n for n in json.dumps(manifest).split('"'))


def test_pixels_before_resizing_equal_pillows_rgb_decode(mixed):
    data, out, valid, skipped, kept, proc = mixed
    for name, (_, _, image) in read_all(out).items():
        expected = pillow_rgb(data / name)
        assert image.shape == expected.shape, name
        assert np.array_equal(image, expected), name
    # the EXIF orientation was applied: the stored 20x12 image is 12 wide and 20 high
    assert read_all(out)["cat s/rotated.jpg"][2].shape == (20, 12, 3)
    # the first GIF frame, not the second
    gif = Image.open(data / "狗/anim.gif")
    gif.seek(1)
    assert not np.array_equal(read_all(out)["狗/anim.gif"][2], np.asarray(gif.convert("RGB")))


def test_original_bytes_kept_only_where_tensorflow_decodes_them_as_pillow(mixed):
    import tensorflow as tf
    data, out, valid, skipped, kept, proc = mixed
    features = {k: tf.io.FixedLenFeature([], t) for k, t in [
        ("image/encoded", tf.string), ("image/format", tf.string), ("image/filename", tf.string),
        ("image/class/text", tf.string), ("image/class/label", tf.int64), ("image/height", tf.int64),
        ("image/width", tf.int64), ("image/channels", tf.int64)]}
    seen = set()
    for path in sorted(out.glob("*.tfrecord")):
        for serialized in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
            r = {k: v.numpy() for k, v in tf.io.parse_single_example(serialized, features).items()}
            name = r["image/filename"].decode()
            seen.add(name)
            original = (data / name).read_bytes()
            assert (r["image/encoded"] == original) == (name in kept), name
            fmt = r["image/format"].decode()
            assert fmt == ("jpeg" if name in kept and name.endswith(".jpg") else "png"), name
            assert r["image/class/text"].decode() == valid[name]
            assert SORTED_CLASSES[r["image/class/label"]] == valid[name]
            h, w, _ = pillow_rgb(data / name).shape
            assert (r["image/height"], r["image/width"], r["image/channels"]) == (h, w, 3), name
    assert seen == set(valid)


def test_same_bytes_for_one_or_two_workers_and_for_a_rerun(mixed, tmp_path):
    data, out, *_ = mixed
    first = tree_bytes(out)
    one = tmp_path / "one"
    assert run_script("flowio.py", data, "--out", one, "--workers", 1, "--shards", 2,
                      "--val-fraction", 0.3).returncode == 0
    assert tree_bytes(one) == first
    again = run_script("flowio.py", data, "--out", out, "--workers", 2, "--shards", 2, "--val-fraction", 0.3)
    assert again.returncode == 0, again.stderr
    assert tree_bytes(out) == first
    assert sorted(n for n in os.listdir(out) if n.startswith(".")) == [".flowio.lock"]


def small_tree(root, classes=("a", "b"), per_class=6, seed=0):
    for c, name in enumerate(classes):
        for i in range(per_class):
            save(Path(root) / name / f"{i}.png", Image.fromarray(pattern(12, 12, seed + 100 * c + i)), "PNG")
    return Path(root)


@pytest.mark.parametrize("case, words", [
    ("missing", ["no such folder"]),
    ("a file", ["is a file"]),
    ("no classes", ["no class folders"]),
    ("one class", ["only one class folder", "'a'"]),
    ("empty class", ["'c'", "no valid image", "empty"]),
    ("class of junk", ["'c'", "no valid image", "not an image"]),
])
def test_bad_data_dir_one_line_exit_2_nothing_written(tmp_path, case, words):
    data = tmp_path / "data"
    if case == "a file":
        data.write_text("x")
    elif case == "no classes":
        data.mkdir()
        save(data / "loose.png", Image.fromarray(pattern(8, 8)), "PNG")
    elif case == "one class":
        small_tree(data, classes=("a",))
    elif case in ("empty class", "class of junk"):
        small_tree(data)
        (data / "c").mkdir()
        if case == "class of junk":
            (data / "c" / "x.jpg").write_text("junk")
    out = tmp_path / "out"
    assert_user_error(run_script("flowio.py", data, "--out", out), *words)
    assert not out.exists()


def test_output_of_another_source_or_options_is_refused_unless_overwrite(tmp_path):
    a, b = small_tree(tmp_path / "a"), small_tree(tmp_path / "b", seed=7)
    out = tmp_path / "out"
    assert run_script("flowio.py", a, "--out", out).returncode == 0
    before = tree_bytes(out)
    assert_user_error(run_script("flowio.py", b, "--out", out), "another source", "--overwrite")
    assert_user_error(run_script("flowio.py", a, "--out", out, "--seed", 3), "other options")
    assert tree_bytes(out) == before
    proc = run_script("flowio.py", b, "--out", out, "--overwrite", "--shards", 1)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"] == str(b.resolve())
    assert sorted(n for n in os.listdir(out) if n.endswith(".tfrecord")) == [
        "train-00000-of-00001.tfrecord", "validation-00000-of-00001.tfrecord"]


def test_unrelated_or_nested_output_folder_is_refused(tmp_path):
    data = small_tree(tmp_path / "data")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("keep me")
    assert_user_error(run_script("flowio.py", data, "--out", mine), "holds no flowio output")
    assert os.listdir(mine) == ["thesis.tex"]
    assert_user_error(run_script("flowio.py", data, "--out", data / "records"), "inside the data folder")
    assert not (data / "records").exists()


def test_a_second_run_into_a_locked_output_is_refused(tmp_path):
    data = small_tree(tmp_path / "data")
    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".flowio.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert_user_error(run_script("flowio.py", data, "--out", out), "another flowio run")
    assert run_script("flowio.py", data, "--out", out).returncode == 0  # the lock died with its holder


def test_bad_options_are_refused(tmp_path):
    data = small_tree(tmp_path / "data")
    for flag, value in [("--val-fraction", 1), ("--shards", 0), ("--workers", 0)]:
        assert_user_error(run_script("flowio.py", data, "--out", tmp_path / "o", flag, value), flag)
    assert not (tmp_path / "o").exists()
