"""Evaluate a trained run: ``python scripts/evaluate.py [RUN_DIR] [--data DIR] [--json]``.

The article's Evaluation.py, for runs of either half: top-1 accuracy, top-5 when there are at least 5
classes, accuracy per class and the confusion matrix (printed, and saved as confusion.png in the run
folder). The metrics are also written into the run's run.json under "evaluation". --data takes flowio
records (their validation split) or a plain folder of class folders.
"""

import argparse
import contextlib
import json
import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

from flowio.errors import UserError, run_cli  # noqa: E402

BATCH = 64


def parse_args(argv):
    p = argparse.ArgumentParser(prog="evaluate.py", description=__doc__.split("\n\n", 1)[1].strip())
    p.add_argument("run_dir", nargs="?", metavar="RUN_DIR", help="a run folder (default: runs/latest)")
    p.add_argument("--data", metavar="DIR",
                   help="flowio records (validation split) or a folder of class folders (default: the run's records)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON instead of a report")
    return p.parse_args(argv)


def batches_from_records(records_dir, run):
    """Check the records' labels now; return an iterator of ``(images, label ids)`` batches."""
    import flowio
    labels = flowio.read_labels(records_dir)
    if labels != run["labels"]:
        raise UserError(f"{records_dir}: its labels ({', '.join(labels)}) are not the"
                        f" run's ({', '.join(run['labels'])})")
    return ((images.numpy(), labels.numpy())
            for images, labels in flowio.dataset(records_dir, "validation", run["image_size"], BATCH))


def batches_from_folder(folder, run):
    """Check the class folders now; return an iterator of ``(images, label ids)`` batches."""
    import flowio
    from flowio.convert import scan
    classes, files, _ = scan(folder)
    unknown = [c for c in classes if c not in run["labels"]]
    if unknown:
        raise UserError(f"{folder}: class folder(s) {', '.join(map(repr, unknown))} are not among the run's"
                        f" labels ({', '.join(run['labels'])})")
    ids = [run["labels"].index(classes[label]) for _, label in files]
    paths = [os.path.join(folder, rel) for rel, _ in files]
    return ((flowio.preprocess_files(paths[i:i + BATCH], run["image_size"]), np.array(ids[i:i + BATCH]))
            for i in range(0, len(paths), BATCH))


def metrics(logits, labels, class_names):
    n = len(class_names)
    top1 = logits.argmax(1)
    confusion = np.zeros((n, n), dtype=int)
    np.add.at(confusion, (labels, top1), 1)
    result = {"examples": int(len(labels)), "accuracy": float((top1 == labels).mean())}
    if n >= 5:
        top5 = np.argsort(-logits, axis=1)[:, :5]
        result["top5_accuracy"] = float((top5 == labels[:, None]).any(1).mean())
    result["per_class_accuracy"] = {name: (float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else None)
                                    for i, name in enumerate(class_names)}
    result["confusion_matrix"] = confusion.tolist()
    return result


def plot_confusion(path, confusion, class_names):
    from flowio.run_dir import pyplot, save_figure
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


def report(result, class_names, run_dir):
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


def main(argv=None):
    args = parse_args(argv)
    from flowio import run_dir as rd
    run_dir, run = rd.resolve_run_dir(args.run_dir)
    from flowio.quiet_tf import quiet_tensorflow
    quiet_tensorflow()
    data = args.data or run["data"]
    if data is None:
        raise UserError(f"{run_dir} was converted, not trained, so it names no data; give --data")
    if not os.path.isdir(data):
        raise UserError(f"--data {data}: no such folder")
    source = batches_from_records if os.path.exists(os.path.join(data, "manifest.json")) else batches_from_folder
    batches = source(data, run)
    model = rd.predictor(run_dir, run)
    logits, labels = [], []
    from flowio.reader import records_errors
    with records_errors(data) if source is batches_from_records else contextlib.nullcontext():
        for images, ids in batches:
            logits.append(model(images))
            labels.append(ids)
    if not labels:
        raise UserError(f"--data {data}: no images to evaluate")
    result = metrics(np.concatenate(logits), np.concatenate(labels), run["labels"])
    plot_confusion(os.path.join(run_dir, "confusion.png"), result["confusion_matrix"], run["labels"])
    result["data"] = os.path.abspath(data)
    latest = rd.read_run(run_dir)  # re-read: only the evaluation is ours to change
    latest["evaluation"] = result
    rd.write_run(run_dir, latest)
    print(json.dumps(result, indent=2) if args.json else report(result, run["labels"], run_dir))
    return 0


if __name__ == "__main__":
    run_cli(main)
