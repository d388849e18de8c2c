"""Train a classifier on flowio records: ``python scripts/train.py --impl {legacy,modern} [--model NAME] ...``.

Both halves train the same model on the same data with the same hyper-parameters and write the same run
directory (default runs/<impl>-<model>, and runs/latest pointing at it). The same command again resumes an
interrupted run from its last checkpoint, or continues a complete one when --epochs is larger.

On a CPU where TensorFlow leaves oneDNN's kernels off (AVX2 or AVX-512 without VNNI, BF16 or AMX), train.py
switches them on, since they train 1.1-2.6x faster than Eigen's there, and says so in one line on stderr; run.json
records the kernels (core/kernels.py). TF_ENABLE_ONEDNN_OPTS, when set, always wins (0: Eigen's, 1: oneDNN's).
"""

import argparse
import os
from functools import partial

from core import cluster, halves, keras_backend, kernels, models, recipe
from core import run_dir as rd
from core.errors import UserError, run_cli
from core.run_dir import IMPLS, PRECISIONS

DEFAULTS = rd.Hyper()


def parse_args(argv):
    p = argparse.ArgumentParser(prog="train.py", description=__doc__.split("\n\n", 1)[1].strip())
    p.add_argument("--impl", choices=IMPLS, help="legacy: tf.compat.v1 + tf_slim; modern: tf_keras (Keras 2);"
                   " keras3: Keras 3 on the --keras-backend")
    p.add_argument("--keras-backend", choices=keras_backend.BACKENDS,
                   help=keras_backend.HELP + "; the run records it, and any backend predicts from it")
    p.add_argument("--model", default="jianshu_resnet_50", help="registered model (see --list-models)")
    p.add_argument("--data", default="tfrecords", metavar="DIR", help="records made by scripts/flowio.py")
    p.add_argument("--epochs", type=int, default=DEFAULTS.epochs, help="epochs in all (a resumed run counts"
                   " the ones done)")
    p.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size, metavar="B", help="images per step")
    p.add_argument("--image-size", type=int, metavar="S", help="train at SxS (default: the model's own size)")
    p.add_argument("--weight-decay", type=float, metavar="WD",
                   help="l2 coefficient in slim's convention, WD * sum(w**2) / 2 (default: the model's, 1e-4)")
    p.add_argument("--bn-decay", type=float, metavar="D",
                   help="decay of every BN layer's moving averages (default: the model's, 0.997 for the ResNets)")
    p.add_argument("--bn-statistics", choices=("precise", "moving"), default=DEFAULTS.batch_norm_statistics,
                   help="what BN normalises with in validation, evaluation and export: precise (default) re-estimates"
                   " the statistics with the current weights over --precise-bn-batches training batches before each"
                   " validation, so short runs on small folders validate on statistics of their weights; moving uses"
                   " the moving averages as they are (slim's exact behaviour, which needs thousands of steps at"
                   " decay 0.997). Nets without BN, and inception_v1/v2, whose decay is fixed, use moving")
    p.add_argument("--precise-bn-batches", type=int, default=DEFAULTS.precise_bn_batches, metavar="N",
                   help="training batches (un-augmented, the first N) that --bn-statistics precise averages over"
                   f" (default {DEFAULTS.precise_bn_batches})")
    recipe.add_arguments(p.add_argument_group("the training recipe (research/slim's train_image_classifier flags;"
                                              " docs/DESIGN.md §10)"))
    p.add_argument("--seed", type=int, default=DEFAULTS.seed,
                   help="seed of initial weights, shuffling and augmentation")
    p.add_argument("--no-flip", action="store_true", help="no random horizontal flips (digits, text, ...)")
    p.add_argument("--preprocessing", choices=models.RECIPES, metavar="RECIPE",
                   help="how images become the model's input, in training, evaluation, use_model and the exports:"
                   " default (squash to SxS, [0, 1]), inception (research/slim's: central crop 0.875, TF1 bilinear"
                   " resize, [-1, 1]) or vgg (research/slim's: smaller side to 256 at sizes 224-256, central crop,"
                   " RGB means subtracted); default: the model's (see --list-models)")
    p.add_argument("--precision", choices=PRECISIONS, default="float32",
                   help="float32; mixed_bfloat16 (bfloat16 compute through oneDNN on CPU, which train.py then"
                   " switches on unless TF_ENABLE_ONEDNN_OPTS is set; fast on CPUs with AVX-512 BF16 / AMX; or on"
                   " GPU in modern); mixed_float16 (needs a GPU; loss scaling included). Weights stay float32 and"
                   " a resumed run keeps its own precision")
    p.add_argument("--save-every", type=int, default=DEFAULTS.save_every, metavar="STEPS",
                   help="also checkpoint every STEPS steps inside an epoch, so a killed run loses little (not"
                   " under modern's ParameterServerStrategy: there at each epoch's end only)")
    run_arguments(p)
    return p.parse_args(argv)


def run_arguments(p):
    """Where the run goes, where it starts from, and what happens to a run already there."""
    p.add_argument("--init-from", metavar="CKPT",
                   help="fine-tune: start from this checkpoint's weights (a run directory of either half, a TF1"
                   " or tf_slim checkpoint prefix or folder, or a modern .h5 weights file), matched by name")
    p.add_argument("--exclude-scopes", default="", metavar="S,...",
                   help="with --init-from: comma-separated scopes left freshly initialised, e.g. logits for a"
                   " new head with your classes (slim's checkpoint_exclude_scopes)")
    p.add_argument("--num-clones", type=int, default=1, metavar="N",
                   help="research/slim's --num_clones: N copies of the model, each on an equal share of every"
                        " batch (--batch-size stays the global batch), their gradients summed; clone i on GPU i"
                        " (legacy: model_deploy's clones in one graph; modern: MirroredStrategy)")
    p.add_argument("--clone-on-cpu", action="store_true",
                   help="research/slim's --clone_on_cpu: every clone on the CPU (modern splits it into N logical"
                        " devices)")
    p.add_argument("--peer-timeout", type=int, default=cluster.PEER_TIMEOUT, metavar="SECONDS",
                   help=f"on a TF_CONFIG cluster: how long the chief (worker 0) waits for the other workers to start"
                        f" before it names the missing ones and stops, and with it every worker that came; with"
                        f" parameter servers how long a legacy task waits for the parameter servers and the chief,"
                        f" and a synchronous step for the other workers' gradients, or modern's chief (the"
                        f" coordinator) for every task (default {cluster.PEER_TIMEOUT})")
    replicas = p.add_argument_group(
        "parameter servers (legacy; research/slim's replica flags): TF_CONFIG names the tasks, a ps job among them;"
        " each task runs train.py with the same arguments and its own TF_CONFIG task (a ps task serves until it is"
        " stopped), worker 0 (or the chief) initialises, validates, saves and writes --run-dir")
    replicas.add_argument("--sync-replicas", action="store_true",
                          help="slim's --sync_replicas: each step averages one gradient of every worker"
                               " (SyncReplicasOptimizer) before the update; without it each worker updates the"
                               " parameter servers on its own (asynchronous, not deterministic)")
    replicas.add_argument("--replicas-to-aggregate", type=int, metavar="N",
                          help="slim's --replicas_to_aggregate: gradients averaged per synchronous step (default:"
                               " every worker's)")
    replicas.add_argument("--worker-replicas", type=int, metavar="N",
                          help="slim's --worker_replicas: checked against TF_CONFIG's workers (chief included)")
    replicas.add_argument("--num-ps-tasks", type=int, metavar="N",
                          help="slim's --num_ps_tasks: checked against TF_CONFIG's ps job")
    replicas.add_argument("--task", type=int, metavar="I",
                          help="slim's --task: checked against TF_CONFIG's task (workers counted chief first)")
    p.add_argument("--run-dir", metavar="DIR", help="where the run goes (default: runs/<impl>-<model>)")
    p.add_argument("--worker-dir", metavar="DIR",
                   help="on a cluster (TF_CONFIG set): where a worker other than the chief writes its"
                   " scratch copy of the run (default: a temporary folder, deleted at the end); the chief writes"
                   " --run-dir")
    p.add_argument("--no-export", action="store_true",
                   help="do not write model.tflite and saved_model/ at the end (scripts/export.py does it later)")
    p.add_argument("--fresh", action="store_true", help="delete the run in --run-dir and start over")
    p.add_argument("--list-models", action="store_true", help="print the registered models and exit")
    p.add_argument("--quiet", action="store_true", help="no progress bar, one line per epoch")


def list_models():
    """One line per model: name, default size, smallest size (and largest, where there is one), preprocessing."""
    print("model\tdefault size\tsizes\tpreprocessing")
    for name in models.list_models():
        spec = models.spec(name)
        sizes = f"{spec.min_size}-{spec.max_size}" if spec.max_size is not None else f">={spec.min_size}"
        print(f"{name}\t{spec.input_size}\t{sizes}\t{spec.preprocessing}")


def check(args):
    """The arguments' own errors, found before TensorFlow starts; returns ``init_from`` (or None)."""
    if args.impl is None:
        raise UserError("--impl is required: legacy (tf.compat.v1 + tf_slim), modern (tf_keras) or keras3 (Keras 3)")
    for flag, value, low in (("--epochs", args.epochs, 1), ("--batch-size", args.batch_size, 1),
                             ("--save-every", args.save_every, 1), ("--peer-timeout", args.peer_timeout, 1)):
        if value < low:
            raise UserError(f"{flag} {value}: must be at least {low}")
    if args.num_clones < 1 or args.batch_size % args.num_clones:
        raise UserError(f"--num-clones {args.num_clones}: must be at least 1 and divide --batch-size"
                        f" {args.batch_size} (each clone computes an equal share of every batch)")
    if args.bn_decay is not None and not 0 <= args.bn_decay < 1:
        raise UserError(f"--bn-decay {args.bn_decay}: must be at least 0 and below 1")
    try:
        models.spec(args.model)
    except ValueError as err:
        raise UserError(f"--model: {err}") from None
    try:
        models.check_size(args.model, args.image_size or models.default_input_size(args.model))
    except ValueError as err:
        raise UserError(f"--image-size {args.image_size}: {err}") from None
    try:
        models.check_options(args.model, args.bn_decay)
    except ValueError as err:
        raise UserError(f"--bn-decay {args.bn_decay}: {err}") from None
    try:
        recipe.check(hyper(args))
    except ValueError as err:
        raise UserError(str(err)) from None
    exclude_scopes = recipe.scopes(args.exclude_scopes) or []
    if exclude_scopes and not args.init_from:
        raise UserError("--exclude-scopes needs --init-from CKPT (the checkpoint to take the other weights from)")
    if not args.init_from:
        return None
    from core.checkpoints import exists
    if not exists(args.init_from):
        raise UserError(f"--init-from {args.init_from}: no such checkpoint, run directory or file")
    return {"checkpoint": os.path.abspath(args.init_from), "exclude_scopes": exclude_scopes}


def replicas(args):
    """slim's replica flags as ``core.cluster.Replicas``."""
    return cluster.Replicas(sync=args.sync_replicas, to_aggregate=args.replicas_to_aggregate,
                            workers=args.worker_replicas, ps_tasks=args.num_ps_tasks, task=args.task)


def new_run(args, folder, labels):
    """The record of the run the command line asks for, in ``folder``."""
    import flowio
    image_size = args.image_size or models.default_input_size(args.model)
    preprocessing = args.preprocessing or models.spec(args.model).preprocessing
    return rd.Run(folder=folder, impl=args.impl, model=args.model, num_classes=len(labels), labels=labels,
                  image_size=image_size, data=os.path.abspath(args.data),
                  preprocessing=flowio.preprocessing_spec(image_size, flip=not args.no_flip, recipe=preprocessing),
                  hyper=hyper(args))


def hyper(args):
    """The run's ``hyper`` record from the command line."""
    statistics = args.bn_statistics if models.spec(args.model).bn_decay else "moving"
    return rd.Hyper(batch_size=args.batch_size, epochs=args.epochs, weight_decay=args.weight_decay,
                    batch_norm_decay=args.bn_decay, seed=args.seed, flip=not args.no_flip, precision=args.precision,
                    save_every=args.save_every, batch_norm_statistics=statistics,
                    precise_bn_batches=args.precise_bn_batches,
                    **{f.name: getattr(args, f.name) for f in recipe.RECIPE})  # the recipe's table, as parsed


def recorded_precision(folder, fresh):
    """The precision of the run a command resumes in ``folder`` (it keeps its own), or None."""
    run = None if fresh else rd.Run.read(folder)
    return run.hyper.precision if run is not None and run.hyper is not None else None


def main(argv=None):
    args = parse_args(argv)
    if args.list_models:
        list_models()
        return 0
    init_from = check(args)
    folder = args.run_dir or rd.default_run_dir(args.impl, args.model)
    keras_backend.choose(args.keras_backend, args.impl)
    # before TensorFlow is imported, which reads the choice once: validation, precise BN and the export run on it
    bfloat16 = "mixed_bfloat16" in (args.precision, recorded_precision(folder, args.fresh))
    kernels.choose("bfloat16" if bfloat16 else "train")
    from core.quiet import quiet_tensorflow
    quiet_tensorflow()
    import flowio
    half = halves.half(args.impl)
    # before TensorFlow runs anything: a cluster's strategy sets up its collectives, logical CPUs are split
    chief = half.deploy(args.num_clones, args.clone_on_cpu, args.peer_timeout, replicas(args))
    if args.precision == "mixed_float16":
        import tensorflow as tf
        if not tf.config.list_physical_devices("GPU"):
            raise UserError("--precision mixed_float16 needs a GPU and there is none; on a CPU use mixed_bfloat16")
    manifest = flowio.trainable_manifest(args.data, args.batch_size)

    with rd.writer_folder(folder, chief, args.worker_dir) as own:
        return train(args, half, new_run(args, own, manifest["classes"]), chief, init_from, folder)


def train(args, half, new, chief, init_from, chief_folder):
    """Train the run ``new`` describes (or resume or continue the one in its folder), then export it.

    ``chief_folder``: the chief's run folder (``--run-dir``), which a cluster's other workers, writing a scratch
    copy, read the backup to resume from (shared storage)."""
    import flowio
    with rd.training(new, fresh=args.fresh, chief=chief) as run:
        if not chief and not args.fresh:  # where a restarted cluster resumes from (--fresh: from nothing)
            run.chief_folder = os.path.abspath(chief_folder)
        if run.state == "complete":
            print(f"train: {run.folder} is already complete ({len(run.epochs)} epochs); pass a larger --epochs to"
                  " continue it, or --fresh to start over")
            return 0
        run.kernels = kernels.record()  # this attempt's
        kernels.say("train")  # the checks done: a user error before this stayed the only line
        with flowio.records_errors(args.data):
            half.train(run, args.data, progress=not args.quiet, init_from=init_from)
        run.complete()
        last, best = run.epochs[-1], run.best
        print(f"train: {args.impl} {args.model} -> {run.folder}: {len(run.epochs)} epochs, validation accuracy"
              f" {last['val_accuracy']:.4f} (best {best['val_accuracy']:.4f} at epoch {best['epoch']})")
        if chief and not args.no_export:  # what use_model.py's LiteRT backend runs, and TF Serving
            from modern.export import export
            export(run)
            print(f"train: exported {run.folder}/model.tflite and saved_model/ (use_model.py answers without"
                  " TensorFlow)")
    return 0


command = partial(run_cli, main)  # the command: scripts/<name>.py, python -m cli.<name>, the console entry point


if __name__ == "__main__":
    command()
