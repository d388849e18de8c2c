"""core/metrics.py on its own: top-1, top-5, accuracy per class, the confusion matrix, the report and the figure.

Six classes, so that top-5 is computed (the tiny runs have three, where it is left out), and logits written so
that each example's rank of its true class is known by construction: the expected numbers are counted here by
hand, not by numpy's argsort.
"""

import numpy as np
from PIL import Image

from core import metrics

CLASSES = ["ant", "bee", "cat", "dog", "eel", "fox"]
# (true class, the classes ranked by the logits, best first)
EXAMPLES = [
    (0, [0, 1, 2, 3, 4, 5]),  # right
    (0, [1, 0, 2, 3, 4, 5]),  # second: a top-5 hit
    (1, [1, 5, 4, 3, 2, 0]),  # right
    (2, [3, 4, 5, 0, 1, 2]),  # last: missed by top-5 too
    (3, [3, 2, 1, 0, 4, 5]),  # right
    (3, [4, 5, 0, 1, 3, 2]),  # fifth: a top-5 hit
    (4, [2, 4, 0, 1, 3, 5]),  # second
]  # class 5 (fox) has no example


def logits_of(ranking):
    """Logits that rank the classes as ``ranking`` says (6 for the first, 1 for the last)."""
    values = np.zeros(len(CLASSES), np.float32)
    values[ranking] = np.arange(len(CLASSES), 0, -1)
    return values


def examples():
    labels = np.array([label for label, _ in EXAMPLES])
    return np.stack([logits_of(ranking) for _, ranking in EXAMPLES]), labels


def test_top1_top5_per_class_and_the_confusion_matrix_with_six_classes():
    logits, labels = examples()
    result = metrics.metrics(logits, labels, CLASSES)
    assert result["examples"] == 7
    assert result["accuracy"] == 3 / 7  # examples 0, 2 and 4
    assert result["top5_accuracy"] == 6 / 7  # all but example 3 (its class ranked last)
    assert result["per_class_accuracy"] == {"ant": 0.5, "bee": 1.0, "cat": 0.0, "dog": 0.5, "eel": 0.0, "fox": None}
    expected = np.zeros((6, 6), int)  # rows: true, columns: predicted (the first of each ranking)
    for label, ranking in EXAMPLES:
        expected[label, ranking[0]] += 1
    assert result["confusion_matrix"] == expected.tolist()
    assert expected[3, 4] == 1 and expected.trace() == 3  # the hand count above, as a matrix


def test_top5_is_left_out_below_five_classes():
    logits = np.array([[2, 1, 0, -1], [0, 3, 1, 2]], np.float32)
    result = metrics.metrics(logits, np.array([0, 3]), CLASSES[:4])
    assert "top5_accuracy" not in result
    assert result["accuracy"] == 0.5 and result["per_class_accuracy"]["bee"] is None


def test_the_report_prints_each_class_and_marks_one_without_images():
    logits, labels = examples()
    result = metrics.metrics(logits, labels, CLASSES)
    lines = metrics.report(result, CLASSES, "runs/x").splitlines()
    assert lines[0] == "evaluate: runs/x: 7 images, accuracy 0.4286, top-5 0.8571"
    assert lines[1] == "per class:"
    assert lines[2:8] == ["  ant  0.5000", "  bee  1.0000", "  cat  0.0000", "  dog  0.5000", "  eel  0.0000",
                          "  fox  -"]
    assert lines[8] == "confusion matrix (rows: true, columns: predicted):"
    assert lines[12] == "  dog     0    0    0    1    1    0"


def test_the_confusion_figure_is_a_png(tmp_path):
    logits, labels = examples()
    result = metrics.metrics(logits, labels, CLASSES)
    metrics.plot_confusion(tmp_path / "confusion.png", result["confusion_matrix"], CLASSES)
    with Image.open(tmp_path / "confusion.png") as image:
        assert image.format == "PNG" and min(image.size) >= 100
    assert [p.name for p in tmp_path.iterdir()] == ["confusion.png"]  # no temporary file left beside it


def test_softmax_and_top_k_as_use_model_answers():
    assert np.allclose(metrics.softmax(np.array([[1000.0, 1000.0]], np.float32)), 0.5)  # large: no overflow
    logits = np.array([[3.0, 3.0, 0.0, -5.0, 2.0, 3.0]], np.float32)
    p = metrics.softmax(logits)[0]
    assert np.isclose(p.sum(), 1.0) and p[0] == p[1] == p[5] > p[4] > p[2] > p[3] > 0
    # equal probabilities: the lower class id first, then the rest by probability
    assert [c for c, _ in metrics.top_k(p, CLASSES, 5)] == ["ant", "bee", "fox", "eel", "cat"]
    assert metrics.top_k(p, CLASSES, 1) == [("ant", float(p[0]))]
