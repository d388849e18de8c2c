"""Move a model between the halves: ``python scripts/convert_checkpoint.py SRC --out RUN_DIR [--to legacy]``.

SRC is a run directory of either half, a TF1 name-based checkpoint (a Saver prefix such as
``model.ckpt-1200``, or the folder holding it) — one of a legacy run, or one written by ``tf_slim.nets``
itself — or a modern ``.h5`` weights file. The result is a run directory of the other half (``--to``) that
evaluate.py and use_model.py accept, and that train.py fine-tunes from with ``--init-from``. Variables map by
name (flowio/checkpoints.py); a variable missing, left over or of another shape is an error that lists them.
The model, the number of classes, the labels and the image size come from SRC's run.json when it has one, and
otherwise from the flags (the model and the number of classes are read from a TF1 checkpoint when not given).
"""

import argparse
import os
import shutil
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from flowio.errors import UserError, run_cli  # noqa: E402
from flowio.run_dir import IMPLS  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(prog="convert_checkpoint.py", description=__doc__.split("\n\n", 1)[1].strip())
    p.add_argument("src", metavar="SRC", help="a run directory, a TF1 / tf_slim checkpoint (prefix or folder),"
                   " or a modern .h5 weights file")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="the run directory to write (must not exist,"
                   " or be empty)")
    p.add_argument("--to", choices=IMPLS, help="the half to convert to (default: the other half than SRC's;"
                   " modern for a TF1 checkpoint)")
    p.add_argument("--model", help="registered model name (default: SRC's run.json, or the checkpoint's"
                   " top-level scope)")
    p.add_argument("--num-classes", type=int, metavar="N", help="classes of the model's head (default: from"
                   " SRC)")
    p.add_argument("--labels", metavar="FILE", help="class names, one per line (or labels.txt's 'i:name');"
                   " default: SRC's, else 0..N-1")
    p.add_argument("--image-size", type=int, metavar="S", help="input size the run predicts at (default:"
                   " SRC's, else the model's)")
    return p.parse_args(argv)


def read_labels(path):
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line.rstrip("\n") for line in f if line.strip()]
    except OSError as err:
        raise UserError(f"--labels {path}: {err.strerror}") from None
    if lines and all(":" in line and line.split(":", 1)[0].isdigit() for line in lines):
        lines = [line.split(":", 1)[1] for line in lines]
    return lines


def describe(args, values, source_run, registry):
    """``(model, num_classes, labels, image_size, preprocessing)`` from the flags, SRC's run.json and values."""
    import flowio
    from flowio import checkpoints
    model = args.model or (source_run or {}).get("model")
    if model is None:
        known = [m for m in checkpoints.models_in(values) if m in registry.list_models()]
        if len(known) != 1:
            raise UserError(f"{args.src}: cannot tell the model (scopes: {', '.join(checkpoints.models_in(values))});"
                            " give --model")
        model = known[0]
    if model not in registry.list_models():
        raise UserError(f"--model {model}: not a registered model (see train.py --list-models)")
    if source_run and source_run["model"] != model:
        raise UserError(f"{args.src} holds a {source_run['model']} run, not {model}")
    head = values.get(f"{model}/logits/weights")  # [1, 1, features, classes] in slim's nets
    num_classes = args.num_classes or (source_run or {}).get("num_classes") or (
        head.shape[-1] if head is not None else None)
    if not num_classes:
        raise UserError(f"{args.src}: cannot tell the number of classes; give --num-classes")
    labels = (read_labels(args.labels) if args.labels else (source_run or {}).get("labels")
              or [str(i) for i in range(num_classes)])
    if len(labels) != num_classes:
        raise UserError(f"{len(labels)} labels for a model of {num_classes} classes; give --labels with"
                        f" {num_classes} names")
    size = args.image_size or (source_run or {}).get("image_size") or registry.default_input_size(model)
    if size < 32:
        raise UserError(f"--image-size {size}: must be at least 32")
    preprocessing = (source_run or {}).get("preprocessing") or flowio.preprocessing_spec(size, flip=False)
    return model, int(num_classes), labels, size, preprocessing


def write_modern(out, model_name, num_classes, size, values, source):
    import modern
    from modern import naming
    model = modern.build(model_name, num_classes, input_shape=(size, size, 3))
    naming.assign(model, values, source=source)
    from modern.train import BEST
    model.save_weights(os.path.join(out, BEST))
    return len(naming.weight_names(model))


def write_legacy(out, model_name, num_classes, size, values, source):
    from flowio import checkpoints
    import legacy
    from legacy.slim_compat import tf
    from legacy.train import CKPT_BEST
    graph = tf.Graph()
    with graph.as_default():
        legacy.build(model_name, tf.placeholder(tf.float32, [None, size, size, 3]), num_classes, is_training=False)
        variables = {v.op.name: v for v in tf.global_variables()}
        chosen = checkpoints.select({n: v.shape.as_list() for n, v in variables.items()}, values, model_name,
                                    source=source)
        tf.train.get_or_create_global_step()
        saver = tf.train.Saver(save_relative_paths=True)  # the folder is renamed once written
        with tf.Session(graph=graph) as sess:
            sess.run(tf.global_variables_initializer())
            for name, value in chosen.items():
                variables[name].load(value, sess)
            os.makedirs(os.path.join(out, CKPT_BEST))
            saver.save(sess, os.path.join(out, CKPT_BEST, "model.ckpt"), global_step=0, write_meta_graph=False)
    return len(chosen)


def main(argv=None):
    args = parse_args(argv)
    if os.path.exists(args.out) and (not os.path.isdir(args.out) or os.listdir(args.out)):
        raise UserError(f"--out {args.out}: exists and is not an empty folder; choose a new one")
    from flowio.quiet_tf import quiet_tensorflow
    quiet_tensorflow()
    import importlib

    from flowio import checkpoints
    from flowio import run_dir as rd
    source_run = rd.read_run(args.src) if os.path.isdir(args.src) else None
    source_impl = source_run["impl"] if source_run else ("modern" if args.src.endswith(".h5") else "legacy")
    to = args.to or ("legacy" if source_impl == "modern" else "modern")
    values, source = checkpoints.read(args.src, args.model or (source_run or {}).get("model"))
    registry = importlib.import_module(to)
    model, num_classes, labels, size, preprocessing = describe(args, values, source_run, registry)

    parent = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{os.path.basename(os.path.abspath(args.out))}.converting-{os.getpid()}")
    try:
        os.makedirs(tmp)
        write = write_modern if to == "modern" else write_legacy
        count = write(tmp, model, num_classes, size, values, source)
        rd.write_labels(tmp, labels)
        rd.write_run(tmp, {
            "impl": to, "model": model, "num_classes": num_classes, "labels": labels, "image_size": size,
            "data": None, "preprocessing": preprocessing, "hyper": None, "init_from": None,
            "converted_from": {"source": source, "path": os.path.abspath(args.src), "impl": source_impl,
                               "variables": count},
            "epochs": [], "best": None, "resumed_from_steps": [], "state": "converted",
        })
        if os.path.isdir(args.out):
            os.rmdir(args.out)
        os.replace(tmp, args.out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"convert_checkpoint: {source} -> {to} run {args.out} ({model}, {num_classes} classes, {count} variables)")
    return 0


if __name__ == "__main__":
    run_cli(main)
