"""Train a classifier on flowio records: ``python scripts/train.py --impl {legacy,modern} [--model NAME] ...``.

Both halves train the same model on the same data with the same hyper-parameters and write the same run
directory (default runs/<impl>-<model>, and runs/latest pointing at it). The same command again resumes an
interrupted run from its last checkpoint, or continues a complete one when --epochs is larger.
"""

import argparse
import fcntl
import importlib
import os
import shutil
import sys
import tempfile

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from flowio.errors import UserError, run_cli  # noqa: E402

from flowio.run_dir import IMPLS, PRECISIONS  # noqa: E402
DEFAULTS = {"batch_size": 32, "epochs": 10, "lr": 0.05, "lr_decay_per_epoch": 0.9, "momentum": 0.9}


def parse_args(argv):
    p = argparse.ArgumentParser(prog="train.py", description=__doc__.split("\n\n", 1)[1].strip())
    p.add_argument("--impl", choices=IMPLS, help="legacy: tf.compat.v1 + tf_slim; modern: tf_keras")
    p.add_argument("--model", default="jianshu_resnet_50", help="registered model (see --list-models)")
    p.add_argument("--data", default="tfrecords", metavar="DIR", help="records made by scripts/flowio.py")
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"], help="epochs in all (a resumed run counts"
                   " the ones done)")
    p.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"], metavar="B", help="images per step")
    p.add_argument("--image-size", type=int, metavar="S", help="train at SxS (default: the model's own size)")
    p.add_argument("--lr", type=float, default=DEFAULTS["lr"], help="initial learning rate of SGD with momentum"
                   f" {DEFAULTS['momentum']}, times {DEFAULTS['lr_decay_per_epoch']} after each epoch")
    p.add_argument("--weight-decay", type=float, metavar="WD",
                   help="l2 coefficient in slim's convention, WD * sum(w**2) / 2 (default: the model's, 1e-4)")
    p.add_argument("--bn-decay", type=float, metavar="D",
                   help="decay of every BN layer's moving averages (default: the model's, 0.997 for the ResNets;"
                   " a small data set trained for few steps needs less, e.g. 0.9)")
    p.add_argument("--seed", type=int, default=0, help="seed of initial weights, shuffling and augmentation")
    p.add_argument("--no-flip", action="store_true", help="no random horizontal flips (digits, text, ...)")
    p.add_argument("--precision", choices=PRECISIONS, default="float32",
                   help="float32; mixed_bfloat16 (bfloat16 compute on CPUs with AVX-512 BF16 / AMX, or on GPU"
                   " in modern); mixed_float16 (needs a GPU; loss scaling included). Weights stay float32 and"
                   " a resumed run keeps its own precision")
    p.add_argument("--save-every", type=int, default=200, metavar="STEPS",
                   help="also checkpoint every STEPS steps inside an epoch, so a killed run loses little")
    p.add_argument("--init-from", metavar="CKPT",
                   help="fine-tune: start from this checkpoint's weights (a run directory of either half, a TF1"
                   " or tf_slim checkpoint prefix or folder, or a modern .h5 weights file), matched by name")
    p.add_argument("--exclude-scopes", default="", metavar="S,...",
                   help="with --init-from: comma-separated scopes left freshly initialised, e.g. logits for a"
                   " new head with your classes (slim's checkpoint_exclude_scopes)")
    p.add_argument("--run-dir", metavar="DIR", help="where the run goes (default: runs/<impl>-<model>)")
    p.add_argument("--worker-dir", metavar="DIR",
                   help="multi-worker (TF_CONFIG set, modern): where a worker other than the chief writes its"
                   " scratch copy of the run (default: a temporary folder, deleted at the end); the chief writes"
                   " --run-dir")
    p.add_argument("--no-export", action="store_true",
                   help="do not write model.tflite and saved_model/ at the end (scripts/export.py does it later)")
    p.add_argument("--fresh", action="store_true", help="delete the run in --run-dir and start over")
    p.add_argument("--list-models", action="store_true", help="print the registered models and exit")
    p.add_argument("--quiet", action="store_true", help="no progress bar, one line per epoch")
    return p.parse_args(argv)


def list_models(registry):
    for name in registry.list_models():
        print(f"{name}\t{registry.default_input_size(name)}")


def new_run(args, labels, image_size, data):
    import flowio
    return {
        "impl": args.impl, "model": args.model, "num_classes": len(labels), "labels": labels,
        "image_size": image_size, "data": os.path.abspath(data),
        "preprocessing": flowio.preprocessing_spec(image_size, flip=not args.no_flip),
        "hyper": {"batch_size": args.batch_size, "epochs": args.epochs, "lr": args.lr,
                  "lr_decay_per_epoch": DEFAULTS["lr_decay_per_epoch"], "momentum": DEFAULTS["momentum"],
                  "weight_decay": args.weight_decay, "batch_norm_decay": args.bn_decay, "seed": args.seed,
                  "flip": not args.no_flip,
                  "precision": args.precision, "save_every": args.save_every},
        "init_from": None, "epochs": [], "best": None, "resumed_from_steps": [], "state": "running",
    }


def lock(run_dir):
    fd = os.open(os.path.join(run_dir, ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise UserError(f"{run_dir}: another training is running there; wait for it or choose another --run-dir") from None
    return fd


def remove_leftovers(run_dir):
    """Delete what a killed run was writing: TensorFlow's ``*.tempstate*`` files and ``*_temp`` folders (a Saver
    or Checkpoint save cut short; as large as a checkpoint, and never cleaned by TensorFlow) and modern's
    ``.tmp-*`` files. Safe: the caller holds the run folder's lock."""
    for folder, dirs, files in os.walk(run_dir):
        for name in files:
            if ".tempstate" in name or name.startswith(".tmp-"):
                os.unlink(os.path.join(folder, name))
        for name in [d for d in dirs if d.endswith("_temp")]:
            shutil.rmtree(os.path.join(folder, name))
            dirs.remove(name)


def main(argv=None):
    args = parse_args(argv)
    if args.list_models:
        from flowio.quiet_tf import quiet_tensorflow
        quiet_tensorflow()
        list_models(importlib.import_module(args.impl or "modern"))
        return 0
    if args.impl is None:
        raise UserError("--impl is required: legacy (tf.compat.v1 + tf_slim) or modern (tf_keras)")
    for flag, value, low in (("--epochs", args.epochs, 1), ("--batch-size", args.batch_size, 1),
                             ("--save-every", args.save_every, 1)):
        if value < low:
            raise UserError(f"{flag} {value}: must be at least {low}")
    if args.lr <= 0:
        raise UserError(f"--lr {args.lr}: must be positive")
    if args.bn_decay is not None and not 0 <= args.bn_decay < 1:
        raise UserError(f"--bn-decay {args.bn_decay}: must be at least 0 and below 1")
    exclude_scopes = [s.strip() for s in args.exclude_scopes.split(",") if s.strip()]
    if exclude_scopes and not args.init_from:
        raise UserError("--exclude-scopes needs --init-from CKPT (the checkpoint to take the other weights from)")
    init_from = None
    if args.init_from:
        from flowio.checkpoints import exists
        if not exists(args.init_from):
            raise UserError(f"--init-from {args.init_from}: no such checkpoint, run directory or file")
        init_from = {"checkpoint": os.path.abspath(args.init_from), "exclude_scopes": exclude_scopes}

    from flowio.quiet_tf import quiet_tensorflow
    quiet_tensorflow()
    import flowio
    from flowio import run_dir as rd
    half = importlib.import_module(args.impl)
    chief = True
    if os.environ.get("TF_CONFIG"):  # before TensorFlow runs anything: the strategy sets up its collectives
        if args.impl != "modern":
            raise UserError("TF_CONFIG is set, and multi-worker training is the modern half's (tf.distribute);"
                            " unset TF_CONFIG to train legacy on one machine")
        try:
            chief = importlib.import_module("modern.train").strategy().extended.should_checkpoint
        except ValueError as err:
            raise UserError(f"TF_CONFIG: {err}") from None
    if args.precision == "mixed_float16":
        import tensorflow as tf
        if not tf.config.list_physical_devices("GPU"):
            raise UserError("--precision mixed_float16 needs a GPU and there is none; on a CPU use mixed_bfloat16")
    try:
        image_size = args.image_size or half.default_input_size(args.model)
    except ValueError as err:
        raise UserError(f"--model: {err}") from None
    if image_size < 32:
        raise UserError(f"--image-size {image_size}: must be at least 32")
    manifest = flowio.read_manifest(args.data)
    labels = manifest["classes"]
    if flowio.steps_per_epoch(args.data, "train", args.batch_size, drop_remainder=True) < 1:
        raise UserError(f"--batch-size {args.batch_size}: larger than the {manifest['num_examples']['train']}"
                        " training images")
    if manifest["num_examples"]["validation"] == 0:
        raise UserError(f"{args.data}: no validation images; rerun flowio.py with --val-fraction above 0")

    run_dir = args.run_dir or rd.default_run_dir(args.impl, args.model)
    scratch = None
    if not chief:
        run_dir = args.worker_dir or tempfile.mkdtemp(prefix="train-worker-")
        scratch = None if args.worker_dir else run_dir
    try:
        return train(args, run_dir, chief, labels, image_size, init_from)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def train(args, run_dir, chief, labels, image_size, init_from):
    """Set up or resume the run in ``run_dir`` and train it (``chief``: the worker that owns ``runs/latest``)."""
    from flowio import run_dir as rd
    os.makedirs(run_dir, exist_ok=True)
    held = lock(run_dir)
    remove_leftovers(run_dir)
    run = rd.read_run(run_dir)
    if args.fresh:
        for entry in os.listdir(run_dir):
            if entry != ".lock" and (run is not None or entry.startswith(".")):
                path = os.path.join(run_dir, entry)
                shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.unlink(path)
        run = None
    if run is None and [e for e in os.listdir(run_dir) if not e.startswith(".")]:
        raise UserError(f"{run_dir} is not empty and holds no run; choose another --run-dir")
    wanted = {"impl": args.impl, "model": args.model, "image_size": image_size, "labels": labels}
    if run is not None and run["state"] == "converted":
        raise UserError(f"{run_dir} holds a converted checkpoint, not a training run; fine-tune from it with"
                        f" --init-from {run_dir} and another --run-dir")
    if run is not None:
        rd.check_same_run(run_dir, run, wanted)
        if run["state"] == "complete" and len(run["epochs"]) >= args.epochs:
            print(f"train: {run_dir} is already complete ({len(run['epochs'])} epochs); pass a larger --epochs"
                  " to continue it, or --fresh to start over")
            return 0
        run["hyper"]["epochs"] = args.epochs
        run["state"] = "running"
    else:
        run = new_run(args, labels, image_size, args.data)
    rd.write_labels(run_dir, labels)
    rd.write_run(run_dir, run)
    if chief:
        rd.mark_latest(run_dir)

    from flowio.reader import records_errors
    with records_errors(args.data):
        importlib.import_module(f"{args.impl}.train").train(run_dir, run, args.data, progress=not args.quiet,
                                                            init_from=init_from)

    run["state"] = "complete"
    rd.write_run(run_dir, run)
    rd.plot_curves(run_dir, run["epochs"])
    last, best = run["epochs"][-1], run["best"]
    print(f"train: {args.impl} {args.model} -> {run_dir}: {len(run['epochs'])} epochs, validation accuracy"
          f" {last['val_accuracy']:.4f} (best {best['val_accuracy']:.4f} at epoch {best['epoch']})")
    if chief and not args.no_export:  # what use_model.py's LiteRT backend runs, and TF Serving
        from modern.export import export
        export(run_dir, run)
        print(f"train: exported {run_dir}/model.tflite and saved_model/ (use_model.py answers without TensorFlow)")
    os.close(held)
    return 0


if __name__ == "__main__":
    run_cli(main)
