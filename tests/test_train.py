"""train.py, evaluate.py and use_model.py for both halves: real records, real training subprocesses.

One tiny run per half (3 classes of 32x32 images, 2 epochs) is trained once and shared by the tests.
"""

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from helpers import train_run as train
from helpers import (BATCH, CLASSES, IMPLS, QUIET_TF, TINY_MODEL, assert_user_error, event_tags, read_run, run_script,
                     save, shape_image)

@pytest.mark.parametrize("impl", IMPLS)
def test_a_run_directory_holds_everything_of_the_design(runs, impl):
    run_dir = runs[impl]
    run = read_run(run_dir)
    assert run["impl"] == impl and run["model"] == TINY_MODEL and run["state"] == "complete"
    assert run["num_classes"] == 3 and run["labels"] == CLASSES and run["image_size"] == 32
    assert [e["epoch"] for e in run["epochs"]] == [1, 2]
    steps = 36 // BATCH  # 48 images, a quarter held out
    assert [e["step"] for e in run["epochs"]] == [steps, 2 * steps]
    for e in run["epochs"]:
        assert all(np.isfinite(e[k]) for k in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"))
    assert run["best"]["val_accuracy"] == max(e["val_accuracy"] for e in run["epochs"])
    assert (run_dir / "labels.txt").read_text() == "0:circle\n1:square\n2:stripes\n"
    assert Image.open(run_dir / "curves.png").format == "PNG"
    checkpoints = {"legacy": ["ckpt/last/checkpoint", "ckpt/best/checkpoint"], "modern": ["last.keras", "best.h5"]}
    for name in checkpoints[impl]:
        assert (run_dir / name).exists(), name
    assert {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"} <= event_tags(run_dir / "logs/train")
    assert {"epoch_loss", "epoch_accuracy"} <= event_tags(run_dir / "logs/validation")


def test_both_halves_record_the_same_hyper_parameters_and_preprocessing(runs):
    legacy_run, modern_run = read_run(runs["legacy"]), read_run(runs["modern"])
    assert legacy_run["hyper"] == modern_run["hyper"]
    assert legacy_run["preprocessing"] == modern_run["preprocessing"]
    assert legacy_run["preprocessing"]["train_augmentation"]["flip_left_right"] is False
    assert os.readlink(runs["modern"].parent / "latest") == "modern-run"


def test_an_epoch_run_again_is_the_best_where_run_json_says_so_and_best_h5_starts_from_the_same_threshold(tmp_path):
    """Killed after run.json recorded epoch 3 (the best) and before the backup of its end, a run resumes after
    epoch 2: run.json takes the rerun of epoch 3 as the best whatever its accuracy, so modern's ModelCheckpoint
    and keras3's SaveBest must start from no threshold (``best_to_beat``), or best.h5 keeps the first epoch 3's
    weights while run.json names the rerun's (tests/test_faults.py trains it in both halves). On a cluster's
    other workers the chief's record decides, since every worker saves when the chief does."""
    from core.run_dir import Run
    run = Run.in_memory("modern", "lenet5", 3, 32)
    run.folder = str(tmp_path)
    def epoch(n, accuracy):
        return {"epoch": n, "step": 9 * n, "loss": 1.0, "accuracy": accuracy, "val_loss": 1.0,
                "val_accuracy": accuracy}
    assert run.best_to_beat(0) is None
    assert [run.record_epoch(epoch(n, a)) for n, a in [(1, 0.5), (2, 0.25), (3, 0.75)]] == [True, False, True]
    assert (run.best_to_beat(2), run.best_to_beat(3), run.best_to_beat(4)) == (None, 0.75, 0.75)
    assert run.record_epoch(epoch(3, 0.5))  # the rerun, worse than the first epoch 3: the best all the same
    assert run.best == {"epoch": 3, "val_accuracy": 0.5} and len(run.epochs) == 3
    assert run.best_to_beat(3) == 0.5 and not run.record_epoch(epoch(4, 0.5)) and run.record_epoch(epoch(5, 0.75))
    # a cluster's other worker, whose scratch copy of the run has no best: the chief's record (its folder) decides
    worker = Run.in_memory("modern", "lenet5", 3, 32)
    worker.folder, worker.chief_folder = str(tmp_path / "worker"), str(tmp_path)
    assert worker.best is None and (worker.best_to_beat(5), worker.best_to_beat(4)) == (0.75, None)


@pytest.mark.slow
@pytest.mark.parametrize("impl", IMPLS)
def test_rerunning_a_complete_run_says_so_and_changes_nothing(runs, tiny, impl):
    before = (runs[impl] / "run.json").read_bytes()
    proc = train(impl, tiny[1], runs[impl])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "already complete" in proc.stdout
    assert (runs[impl] / "run.json").read_bytes() == before


@pytest.mark.slow
@pytest.mark.parametrize("impl", IMPLS)
def test_a_run_of_another_impl_model_or_size_is_refused(runs, tiny, impl, tmp_path):
    other = "modern" if impl == "legacy" else "legacy"
    assert_user_error(train(other, tiny[1], runs[impl]), "another impl", "--fresh")
    assert_user_error(train(impl, tiny[1], runs[impl], "--model", "resnet_v1_50"), "another model", "--fresh")
    # the recipe is part of the run's identity (docs/DESIGN.md §10)
    assert_user_error(train(impl, tiny[1], runs[impl], "--optimizer", "adam"), "another optimizer", "'rmsprop'")
    assert_user_error(train(impl, tiny[1], tmp_path / "scopes", "--model", "lenet5", "--trainable-scopes", "nowhere"),
                      "--trainable-scopes nowhere: no trainable variable", "lenet5/logits/weights")
    assert_user_error(run_script("train.py", "--impl", impl, "--model", TINY_MODEL, "--data", tiny[1],
                                 "--image-size", 48, "--run-dir", runs[impl]), "another image size")


@pytest.mark.slow
def test_records_with_another_label_set_are_refused(runs, tiny, tmp_path):
    data = tmp_path / "data"
    for kind in ("ant", "bee", "cat"):
        for i in range(4):
            save(data / kind / f"{i}.png", shape_image("circle", i), "PNG")
    assert run_script("flowio.py", data, "--out", tmp_path / "records", "--quiet").returncode == 0
    assert_user_error(train("modern", tmp_path / "records", runs["modern"]), "another label set")
    assert_user_error(run_script("evaluate.py", runs["legacy"], "--data", tmp_path / "records"), "labels")


@pytest.mark.slow
@pytest.mark.parametrize("impl", IMPLS)
def test_evaluate_reports_accuracy_per_class_and_the_confusion_matrix(runs, tiny, impl):
    proc = run_script("evaluate.py", runs[impl], "--json", env={**os.environ, **QUIET_TF})
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["examples"] == 12
    assert "top5_accuracy" not in result  # 3 classes
    confusion = np.array(result["confusion_matrix"])
    assert confusion.shape == (3, 3) and confusion.sum() == 12 and list(confusion.sum(1)) == [4, 4, 4]
    assert result["accuracy"] == pytest.approx(np.trace(confusion) / 12)
    for i, name in enumerate(CLASSES):
        assert result["per_class_accuracy"][name] == pytest.approx(confusion[i, i] / 4)
    assert read_run(runs[impl])["evaluation"]["accuracy"] == result["accuracy"]
    assert Image.open(runs[impl] / "confusion.png").format == "PNG"
    # the same model on the plain folder of class folders: all 48 images
    report = run_script("evaluate.py", runs[impl], "--data", tiny[0], env={**os.environ, **QUIET_TF})
    assert report.returncode == 0, report.stderr[-2000:]
    assert "48 images" in report.stdout and "confusion matrix" in report.stdout


@pytest.mark.parametrize("impl", IMPLS)
def test_use_model_prints_k_classes_per_image_best_first(runs, tiny, impl, tmp_path):
    data = tiny[0]
    images = [data / "circle" / "00.png", data / "stripes" / "03.png"]
    proc = run_script("use_model.py", *images, "--run-dir", runs[impl], env={**os.environ, **QUIET_TF})
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line.split("\t") for line in proc.stdout.strip().splitlines()]
    assert len(lines) == 2 * 3  # K = min(5, 3 classes)
    for image, rows in zip(images, (lines[:3], lines[3:])):
        assert all(path == str(image) for path, _, _ in rows)
        assert sorted(c for _, c, _ in rows) == CLASSES
        probabilities = [float(p) for _, _, p in rows]
        assert probabilities == sorted(probabilities, reverse=True)
        assert sum(probabilities) == pytest.approx(1, abs=1e-4)
    # a folder, a missing file and a file that is not an image: the good ones are still predicted
    (tmp_path / "notes.jpg").write_text("no")
    proc = run_script("use_model.py", data / "square", tmp_path / "gone.png", tmp_path / "notes.jpg",
                      "--run-dir", runs[impl], "--top-k", 1, "--json", env={**os.environ, **QUIET_TF})
    assert proc.returncode == 2
    out = json.loads(proc.stdout)
    assert len(out["results"]) == 16 and all(len(r["predictions"]) == 1 for r in out["results"])
    assert len(out["errors"]) == 2 and "gone.png: no such file" in out["errors"][0]
    assert "not an image" in out["errors"][1]
    assert len(proc.stderr.strip().splitlines()) == 2


def test_use_model_refuses_names_its_lines_cannot_carry_and_json_carries_them(runs, tmp_path):
    """A tab or a newline in a file name (both legal on Linux) would split or widen a ``path<TAB>class<TAB>p``
    line: the lines are refused, naming the file and --json, before the model is loaded; --json gives the names
    back exactly; a backslash, which an escape would have had to double, still prints as it is."""
    folder = tmp_path / "odd names"
    names = ["tab\tname.png", "new\nline.png", "back\\slash.png"]
    for i, name in enumerate(names):
        save(folder / name, shape_image(CLASSES[i], 900 + i), "PNG")
    env = {**os.environ, **QUIET_TF}
    for name in names[:2]:
        proc = run_script("use_model.py", folder / name, "--run-dir", runs["modern"], env=env)
        assert_user_error(proc, repr(str(folder / name)), "a file name holding a tab or a line break", "--json")
        assert proc.stdout == ""
    assert_user_error(run_script("use_model.py", folder, "--run-dir", runs["modern"], env=env),
                      "(and 1 more)", "--json")
    proc = run_script("use_model.py", folder, "--run-dir", runs["modern"], "--top-k", 1, "--json", env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(r["path"] for r in json.loads(proc.stdout)["results"]) == sorted(str(folder / n) for n in names)
    proc = run_script("use_model.py", folder / names[2], "--run-dir", runs["modern"], "--top-k", 1, env=env)
    assert proc.returncode == 0 and proc.stdout.split("\t")[0] == str(folder / names[2]), proc.stderr[-2000:]
    # a class name (flowio's folder, convert_checkpoint's --labels) is held to the same rule
    run_dir = tmp_path / "run"
    shutil.copytree(runs["modern"], run_dir)
    run = read_run(run_dir)
    run["labels"][1] = "square\tish"
    (run_dir / "run.json").write_text(json.dumps(run))
    assert_user_error(run_script("use_model.py", folder / names[2], "--run-dir", run_dir, env=env),
                      "'square\\tish'", "a class name", "--json")


@pytest.mark.slow
def test_use_model_reads_runs_latest_by_default_and_both_halves_answer_alike(runs, tiny):
    image = tiny[0] / "circle" / "01.png"
    answers = {}
    for impl in IMPLS:
        proc = run_script("use_model.py", image, "--run-dir", runs[impl], env={**os.environ, **QUIET_TF})
        rows = [line.split("\t") for line in proc.stdout.splitlines()]
        assert [len(r) for r in rows] == [3, 3, 3] and {r[0] for r in rows} == {str(image)}
        answers[impl] = sorted(r[1] for r in rows)
    assert answers["legacy"] == answers["modern"] == CLASSES
    # no --run-dir: runs/latest under the working folder, which is modern's run (trained last)
    proc = run_script("use_model.py", image, "--json", cwd=runs["modern"].parent.parent,
                      env={**os.environ, **QUIET_TF})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["run_dir"] == os.path.join("runs", "latest")
    elsewhere = run_script("use_model.py", image, cwd=tiny[0])
    assert_user_error(elsewhere, "runs/latest: no run here")


def test_bad_input_is_one_line_and_exit_2(tiny, tmp_path):
    assert_user_error(run_script("train.py", "--impl", "modern", "--model", "resnet_49", "--data", tiny[1]),
                      "unknown model 'resnet_49'", "jianshu_resnet_50")
    # argparse's usage and error (an unknown half); without --data train.py reads ./tfrecords, which `make demo`
    # writes: a test of an error must not depend on it
    unknown = run_script("train.py", "--impl", "keras4")
    assert unknown.returncode == 2 and "invalid choice: 'keras4'" in unknown.stderr, unknown.stderr
    # the recipe's flags, refused before TensorFlow starts
    for flags, message in ((("--label-smoothing", 1.5), "--label-smoothing 1.5: must be at least 0 and below 1"),
                           (("--optimizer", "adagrad", "--adagrad-initial-accumulator-value", 0), "must be positive"),
                           (("--moving-average-decay", 1), "must be above 0 and below 1")):
        assert_user_error(run_script("train.py", "--impl", "legacy", "--data", tiny[1], *flags), message)
    assert run_script("train.py", "--impl", "legacy", "--bn-decay", "fast").returncode == 2
    assert_user_error(run_script("train.py", "--impl", "legacy", "--data", tmp_path / "nothing"), "no such folder")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text(json.dumps({"impl": "modern", "model": "jianshu_resnet_50",
                                                           "num_classes": 3, "labels": CLASSES, "image_size": 32}))
    assert_user_error(run_script("use_model.py", tiny[0] / "circle" / "00.png", "--run-dir", tmp_path / "run"),
                      "no checkpoint")
    assert_user_error(run_script("evaluate.py", tmp_path / "nowhere"), "no run here")


def test_list_models_prints_every_registered_model():
    proc = run_script("train.py", "--list-models")
    assert proc.returncode == 0
    rows = [line.split("\t") for line in proc.stdout.splitlines()]
    names = [row[0] for row in rows]
    assert "jianshu_resnet_50" in names and "resnet_v1_152" in names
    # default size, the sizes it takes, its preprocessing (the model table's, see tests/test_models.py)
    assert rows[0] == ["model", "default size", "sizes", "preprocessing"]
    assert ["inception_v3", "299", "107-346", "inception"] in rows and ["lenet5", "32", ">=32", "default"] in rows
