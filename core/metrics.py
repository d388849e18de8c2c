"""Evaluation arithmetic on numpy arrays: top-1, top-k, accuracy per class and the confusion matrix.

The article's Evaluation.py, for runs of either half (``scripts/evaluate.py``): ``evaluate`` feeds the batches
to the run's predictor, ``metrics`` computes the numbers from the logits, ``report`` prints them and
``plot_confusion`` draws ``confusion.png``; and use_model's ``softmax`` and ``top_k``. Top-5 is given when there are at least 5 classes. A class with no
image has no accuracy (``None``).
"""

import os

import numpy as np

from core.errors import UserError
from core.run_dir import CONFUSION, pyplot, save_figure

TOP_K = 5


def metrics(logits, labels, class_names):
    """``{"examples", "accuracy", ["top5_accuracy"], "per_class_accuracy", "confusion_matrix"}``."""
    n = len(class_names)
    top1 = logits.argmax(1)
    confusion = np.zeros((n, n), dtype=int)
    np.add.at(confusion, (labels, top1), 1)
    result = {"examples": int(len(labels)), "accuracy": float((top1 == labels).mean())}
    if n >= TOP_K:
        top_k = np.argsort(-logits, axis=1)[:, :TOP_K]
        result[f"top{TOP_K}_accuracy"] = float((top_k == labels[:, None]).any(1).mean())
    result["per_class_accuracy"] = {name: (float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else None)
                                    for i, name in enumerate(class_names)}
    result["confusion_matrix"] = confusion.tolist()
    return result


def softmax(logits):
    """Probabilities of ``logits`` ``[N, C]`` (shifted by each row's largest, so that none overflows)."""
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def top_k(probabilities, class_names, k):
    """``[(class name, probability)]`` of one example's ``k`` most probable classes, best first; of equal ones
    the lower class id first (use_model's answer)."""
    best = np.argsort(-probabilities, kind="stable")[:k]
    return [(class_names[i], float(probabilities[i])) for i in best]


def evaluate(run, predict, batches, data):
    """Predict ``batches`` (``(images, label ids)``) with ``predict`` (images -> logits), compute the metrics,
    draw ``confusion.png`` into the run folder and add the metrics to its ``run.json`` under ``evaluation``."""
    logits, labels = [], []
    for images, ids in batches:
        logits.append(predict(images))
        labels.append(ids)
    if not labels:
        raise UserError(f"--data {data}: no images to evaluate")
    result = metrics(np.concatenate(logits), np.concatenate(labels), run.labels)
    plot_confusion(run.path(CONFUSION), result["confusion_matrix"], run.labels)
    result["data"] = os.path.abspath(data)
    run.update(evaluation=result)
    return result


def report(result, class_names, run_dir):
    """The metrics as text: one summary line, the accuracy per class, the confusion matrix."""
    lines = [f"evaluate: {run_dir}: {result['examples']} images, accuracy {result['accuracy']:.4f}"
             + (f", top-5 {result['top5_accuracy']:.4f}" if "top5_accuracy" in result else "")]
    width = max(len(c) for c in class_names)
    lines.append("per class:")
    for name, acc in result["per_class_accuracy"].items():
        lines.append(f"  {name:<{width}}  {'-' if acc is None else f'{acc:.4f}'}")
    lines.append("confusion matrix (rows: true, columns: predicted):")
    for name, row in zip(class_names, result["confusion_matrix"]):
        lines.append(f"  {name:<{width}}  " + " ".join(f"{v:4d}" for v in row))
    return "\n".join(lines)


def plot_confusion(path, confusion, class_names):
    plt = pyplot()
    confusion = np.asarray(confusion)
    size = max(4, 0.5 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(len(class_names)), class_names, rotation=90)
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(class_names) <= 30:
        for (i, j), v in np.ndenumerate(confusion):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=8,
                    color="white" if v > confusion.max() / 2 else "black")
    fig.tight_layout()
    save_figure(fig, path)
