"""Checkpoints of either half as ``{legacy variable name: numpy array}``, and choosing what a model takes from one.

The one naming rule between the halves (``modern/naming.py`` applies it to Keras layers): a legacy variable
``<model>/<scope path>/<variable>`` is the weight ``<variable'>`` of the modern layer named by the scope path
with ``/`` -> ``__``, where slim's ``weights`` / ``biases`` are Keras's ``kernel`` / ``bias`` (BatchNorm's
``gamma``, ``beta``, ``moving_mean``, ``moving_variance`` keep their names):

    jianshu_resnet_50/block1/unit_1/bottleneck/conv1/BatchNorm/gamma
        <-> layer "block1__unit_1__bottleneck__conv1__BatchNorm", weight "gamma"

So checkpoints map by name, never by order. What can be read (``read``):

* a TF1 name-based checkpoint: a Saver prefix (``.../model.ckpt-120``) or the folder holding one — a legacy
  run's, or one written by ``tf_slim.nets`` itself;
* a modern weights file in Keras's HDF5 format (``best.h5``), which keys each weight by its layer's name;
* a run directory of any half: its half's ``weights.read_weights`` (the best checkpoint, else the last).

Both halves' ``--init-from`` and ``scripts/convert_checkpoint.py`` go through ``read`` and ``select``, so the
rules (and the errors listing missing, unexpected and mis-shaped variables) are the same everywhere.
"""

import os
import re

from core import halves, models
from core.errors import UserError
from core.run_dir import Run

SEP = "__"
TO_KERAS = {"weights": "kernel", "biases": "bias", "gamma": "gamma", "beta": "beta",
            "moving_mean": "moving_mean", "moving_variance": "moving_variance",
            "depthwise_weights": "depthwise_kernel", "pointwise_weights": "pointwise_kernel"}
TO_SLIM = {v: k for k, v in TO_KERAS.items()}
# What a TF1 training run saves beside the model's variables: the step, the optimizers' slots (tf.compat.v1.train's
# slot names: Momentum, RMSProp's two, Adam's two and its beta powers, Adagrad, Adadelta's two, Ftrl's two) and
# the shadows of tf.train.ExponentialMovingAverage (research/slim's --moving_average_decay).
NOT_MODEL = ("global_step", "beta1_power", "beta2_power")
SLOT_SUFFIXES = ("/Momentum", "/RMSProp", "/RMSProp_1", "/Adam", "/Adam_1", "/Adagrad", "/Adadelta", "/Adadelta_1",
                 "/Ftrl", "/Ftrl_1")
EMA = "/ExponentialMovingAverage"


def layer_name(scope):
    """``block1/unit_1/bottleneck/conv1`` -> ``block1__unit_1__bottleneck__conv1``."""
    return scope.replace("/", SEP)


def scope_name(layer):
    return layer.replace(SEP, "/")


def legacy_name(model_name, layer, weight):
    """``("m", "block1__conv1", "kernel:0")`` -> ``"m/block1/conv1/weights"``."""
    return f"{model_name}/{scope_name(layer)}/{TO_SLIM[weight.split(':')[0]]}"


def modern_name(variable_name):
    """A legacy variable name (with or without ``:0``) -> ``(model name, layer name, weight name)``."""
    parts = variable_name.split(":")[0].split("/")
    return parts[0], layer_name("/".join(parts[1:-1])), TO_KERAS[parts[-1]]


def model_variables(names, model_name):
    """The names among ``names`` that are model weights of ``model_name`` (no step, no optimizer slots)."""
    return [n for n in names if n.startswith(model_name + "/") and n not in NOT_MODEL
            and not n.endswith(SLOT_SUFFIXES + (EMA,))]


# --- reading ---------------------------------------------------------------------------------------------

def check_complete(prefix, hint):
    """Refuse a TF checkpoint (``prefix`` of a Saver or ``tf.train.Checkpoint``) whose index or a data shard is
    missing: TensorFlow would fail later with a message about tensors, or not at all until a value is read."""
    import glob
    import re
    data = glob.glob(glob.escape(prefix) + ".data-?????-of-?????")
    count = int(re.search(r"of-(\d{5})$", data[0]).group(1)) if data else 1
    wanted = [f"{prefix}.index"] + [f"{prefix}.data-{i:05d}-of-{count:05d}" for i in range(count)]
    missing = [os.path.basename(p) for p in wanted if not os.path.exists(p)]
    if missing:
        raise UserError(f"{prefix}: checkpoint is incomplete (missing {', '.join(missing)}); {hint}")


def read_tf1(prefix):
    """``{name: array}`` of the TF1 checkpoint (Saver or ``tf.train.Checkpoint``) at ``prefix``."""
    import tensorflow as tf
    check_complete(prefix, "give a complete checkpoint")
    try:
        reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as err:
        raise UserError(f"{prefix}: not a readable TF1 checkpoint ({str(err).splitlines()[0][:160]})") from None
    return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()}


def read_h5(path, model_name):
    """``{legacy name: array}`` of a Keras HDF5 weights file (keyed by layer name) of the model ``model_name``.

    A layer that holds layers (resnet18's ``BasicBlock``, named ``layer1__block_1``) keeps their weights in its own
    group, each named by its scope: ``resnet18/layer1__block_1/layer1__block_1__bn1/gamma:0``. The weight's layer is
    then the inner one (``layer1__block_1__bn1``): the group's name and the weight's last part alone would give its
    two BNs' gammas one name."""
    import h5py
    with h5py.File(path, "r") as f:
        if "layer_names" not in f.attrs:
            raise UserError(f"{path}: not a Keras HDF5 weights file keyed by layer name (save it with"
                            " model.save_weights('x.h5'), not '.weights.h5' or '.keras')")
        values = {}
        for layer in f.attrs["layer_names"]:
            layer = layer.decode() if isinstance(layer, bytes) else layer
            group = f[layer]
            for weight in group.attrs["weight_names"]:
                weight = weight.decode() if isinstance(weight, bytes) else weight
                parts = weight.split("/")
                owner = parts[-2] if len(parts) > 1 and parts[-2].startswith(layer + "__") else layer
                values[legacy_name(model_name, owner, parts[-1])] = group[weight][()]
    return values


def read_run_h5(run, name):
    """``{legacy name: array}`` of the run's weights file ``name`` (a Keras half's ``best.h5``, keyed by layer
    name); a run that has none yet is a one-line error."""
    path = run.path(name)
    if not os.path.exists(path):
        raise UserError(f"{run.folder}: this {run.impl} run has no {name} yet; train it for an epoch first")
    return read_h5(path, models.scope(run.model))


def _tf1_prefix(folder):
    import tensorflow as tf
    return tf.train.latest_checkpoint(folder)


def exists(src):
    """Whether ``src`` names something ``read`` could open (a path, or a Saver prefix with its ``.index``)."""
    return os.path.exists(src) or os.path.exists(src + ".index")


def read(src, model_name=None):
    """``(values {legacy name: array}, description)`` of the checkpoint at ``src`` (see the module docstring).

    ``model_name`` names the model of a bare ``.h5`` file (its layers' names do not say it); a run directory
    says it itself.
    """
    if not exists(src):
        raise UserError(f"{src}: no such checkpoint, run directory or file")
    run = Run.read(src) if os.path.isdir(src) else None
    if run is not None:  # its half knows its files
        return halves.half(run.impl).read_weights(run), f"{run.impl} run {src}"
    if src.endswith(".h5"):
        if model_name is None:
            raise UserError(f"{src}: a bare weights file does not say its model; give --model")
        return read_h5(src, model_name), f"Keras weights {src}"
    prefix = _tf1_prefix(src) if os.path.isdir(src) else src
    if prefix is None:
        raise UserError(f"{src}: no run.json and no TF1 checkpoint in this folder")
    return read_tf1(prefix), f"TF1 checkpoint {prefix}"


def models_in(values):
    """The top-level scopes of ``values`` that hold model variables (a guess at the checkpoint's model)."""
    return sorted({n.split("/")[0] for n in values if "/" in n and model_variables([n], n.split("/")[0])})


def write_h5(path, values):
    """Write ``values`` ``{legacy name: array}`` as a Keras HDF5 weights file keyed by layer name, the layout
    ``read_h5`` reads and tf_keras's ``save_weights('x.h5')`` writes (a group per layer, ``weight_names`` naming
    ``<layer>/<weight>:0``; ``model.load_weights(path, by_name=True)`` of tf_keras takes it). Keras 3 writes
    only ``.weights.h5``, keyed by class and order: the keras3 half writes its weights with this."""
    import h5py
    layers = {}
    for name, value in values.items():
        _, layer, weight = modern_name(name)
        layers.setdefault(layer, []).append((f"{layer}/{weight}:0", value))
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [layer.encode() for layer in layers]
        # tf_keras reads "keras_version" only to convert files of Keras 1 (which this is not)
        f.attrs["backend"], f.attrs["keras_version"] = b"tensorflow", b"2 (core.checkpoints.write_h5)"
        for layer, weights in layers.items():
            group = f.create_group(layer)
            group.attrs["weight_names"] = [weight.encode() for weight, _ in weights]
            for weight, value in weights:
                group.create_dataset(weight, data=value)


# --- choosing --------------------------------------------------------------------------------------------

def excluded(name, model_name, scopes):
    """Whether variable ``name`` lies under one of ``scopes`` (``logits`` or ``<model>/logits``)."""
    relative = name[len(model_name) + 1:]
    for scope in scopes:
        scope = scope.strip("/")
        scope = scope[len(model_name) + 1:] if scope.startswith(model_name + "/") else scope
        if relative == scope or relative.startswith(scope + "/"):
            return True
    return False


def select(wanted, values, model_name, exclude_scopes=(), source="the checkpoint"):
    """``{name: array}`` for every name of ``wanted`` (``{legacy name: shape}``) outside ``exclude_scopes``.

    A variable the model wants and the checkpoint lacks, a model variable of the checkpoint the model does
    not have, or a shape that differs (all outside the excluded scopes) is a UserError listing them.
    """
    keep = {n for n in wanted if not excluded(n, model_name, exclude_scopes)}
    offered = {n for n in model_variables(values, model_name) if not excluded(n, model_name, exclude_scopes)}
    if not offered and values:
        raise UserError(f"{source} holds no variables of {model_name} (it has {', '.join(models_in(values)) or 'none'})")
    missing, extra = sorted(keep - offered), sorted(offered - keep)
    misshaped = sorted(f"{n} {list(values[n].shape)} vs {list(wanted[n])}" for n in keep & offered
                       if list(values[n].shape) != list(wanted[n]))
    if missing or extra or misshaped:
        problems = [f"{label}: {', '.join(items[:4])}{' ...' if len(items) > 4 else ''} ({len(items)})"
                    for label, items in (("missing", missing), ("unexpected", extra), ("wrong shape", misshaped))
                    if items]
        hint = " (--exclude-scopes leaves scopes such as logits to be trained anew)" if misshaped or extra else ""
        raise UserError(f"{source} does not match {model_name}: " + "; ".join(problems) + hint)
    return {n: values[n] for n in keep}


# --- what a converter does to a checkpoint ---------------------------------------------------------------
# convert_checkpoint.py's options, in the order it applies them: --rename, --use-ema, --drop-background-class.

def renamed(values, rules):
    """``values`` with every name rewritten by ``rules`` (``[(regex, replacement), ...]``, ``re.sub`` in order):
    a checkpoint saved under another top-level scope (``--rename '^tower_0/=InceptionV3/'``)."""
    import re
    out = {}
    for name, value in values.items():
        new = name
        for pattern, replacement in rules:
            new = re.sub(pattern, replacement, new)
        if new in out:
            raise UserError(f"--rename maps two variables to {new}")
        out[new] = value
    return out


def averaged(values):
    """``values`` with each variable's ``<name>/ExponentialMovingAverage`` shadow in its place where one exists
    (the raw value elsewhere), the shadows themselves dropped: what research/slim's eval restores with
    ``--moving_average_decay``. Returns ``(values, how many were replaced)``; none is a UserError."""
    shadows = {n[:-len(EMA)]: v for n, v in values.items() if n.endswith(EMA)}
    if not shadows:
        raise UserError("--use-ema: the checkpoint holds no <variable>/ExponentialMovingAverage shadows")
    return {n: shadows.get(n, v) for n, v in values.items() if not n.endswith(EMA)}, len(shadows)


def without_background(values, heads):
    """``values`` with class 0 (research/slim's ``background``, its ``--labels_offset 1``) cut from the last axis
    of every variable under the scopes ``heads`` (the classifier, and inception_v3's auxiliary one): class k + 1
    of the checkpoint becomes class k."""
    out = dict(values)
    cut = [n for n in values if any(n.startswith(h + "/") for h in heads) and not n.endswith(SLOT_SUFFIXES + (EMA,))]
    if not cut:
        raise UserError(f"--drop-background-class: the checkpoint has no {', '.join(heads)} variables")
    for name in cut:
        out[name] = values[name][..., 1:]
    return out


def prepared(values, heads, use_ema=False, labels_offset=0):
    """``(values, shadows)``: ``values`` after ``--use-ema`` (``averaged``) and ``--drop-background-class``
    (``without_background`` of the model's ``heads``); ``shadows`` names the variables whose average was taken."""
    shadows = set()
    if use_ema:
        shadows = {n[:-len(EMA)] for n in values if n.endswith(EMA)}
        values, _ = averaged(values)
    if labels_offset:
        values = without_background(values, heads)
    return values, shadows


def identify(values, candidates):
    """The one model among ``candidates`` whose top-level scope ``values`` holds, or None when not exactly one."""
    found = [m for m in candidates if models.scope(m) in models_in(values)]
    return found[0] if len(found) == 1 else None


def class_names(num_classes, given=None):
    """``given`` names, else 0..N-1; research/slim's 1001 classes have ``background`` first (so 1,000 names, or
    0..999, follow it)."""
    background = num_classes == 1001
    if given is None:
        return ["background"] * background + [str(i) for i in range(num_classes - background)]
    return ["background"] * (background and len(given) == 1000) + list(given)


def resized_aux(wanted, values, model):
    """``[(the checkpoint's layer, the model's layer)]``: the layers of ``model``'s auxiliary head whose kernel,
    and so whose name, follows the input size and differs between the checkpoint (``values``) and the model
    (``wanted``, ``{name: shape}``): inception_v3's ``AuxLogits/Conv2d_2a_{k}x{k}``, k = min(5, the pooled
    ``Mixed_6e``'s side), 5x5 in research/slim's checkpoints (299) and 3x3 at 224. ``[]`` where the names agree.

    A converter leaves both out of the name matching (the model's layer keeps its initial values): a kxk kernel
    over a kxk map is no other kernel over another map (cropping or resampling it computes something else), and
    the auxiliary head is training-only, so every prediction and export of the converted run is exactly the
    checkpoint's at the new size; fine-tuning trains the layer anew, as it does an excluded head.
    """
    kernel_in_name = re.compile(r"_\d+x\d+$")  # tf_slim's ``Conv2d_2a_5x5``: a layer named by its kernel
    scope = models.scope(model)
    aux = tuple(f"{scope}/{a}/" for a in models.aux_scopes(model))

    def layers(names):  # {layer without its kernel suffix: layer}, of the auxiliary head's layers
        found = {"/".join(n[len(scope) + 1:].split("/")[:2]) for n in names if n.startswith(aux)}
        return {kernel_in_name.sub("", layer): layer for layer in found if kernel_in_name.search(layer)}

    theirs, ours = layers(model_variables(values, scope)), layers(wanted)
    return sorted((theirs[k], ours[k]) for k in theirs.keys() & ours.keys() if theirs[k] != ours[k])


def fates(wanted, values, model_name, averaged_names=()):
    """``[(name, shape, fate)]`` for every variable of the checkpoint and every one the model wants but it lacks
    (``--list``): matched, other shape, unexpected, missing, optimizer slot, global_step, EMA shadow (used, when
    its variable's name is in ``averaged_names``)."""
    rows = []
    for name in sorted(set(values) | set(wanted)):
        shape = list(values[name].shape) if name in values else list(wanted[name])
        if name not in values:
            fate = "missing"
        elif name in NOT_MODEL:
            fate = name if name == "global_step" else "optimizer slot"
        elif name.endswith(EMA):
            fate = "EMA shadow" + (" (used)" if name[:-len(EMA)] in averaged_names else "")
        elif name.endswith(SLOT_SUFFIXES):
            fate = "optimizer slot"
        elif name not in wanted:
            fate = "unexpected"
        elif list(values[name].shape) != list(wanted[name]):
            fate = f"other shape (the model's: {list(wanted[name])})"
        else:
            fate = "matched"
        rows.append((name, shape, fate))
    return rows


def listing(wanted, raw, values, shadows, model, image_size):
    """``fates`` of the checkpoint as read (``raw``, its shadows listed as such) and as prepared (``values``),
    with inception_v3's size-dependent auxiliary kernel (``resized_aux``) said left out / initialised."""
    listed = {**{n: v for n, v in raw.items() if n.endswith(EMA)}, **values}
    rows = fates(wanted, listed, models.scope(model), shadows)
    scope = models.scope(model)
    for theirs, ours in resized_aux(wanted, values, model):
        fate = {f"{scope}/{theirs}/": f"left out (at {image_size} the layer is {ours})",
                f"{scope}/{ours}/": "initialised (its kernel follows the image size)"}
        rows = [(name, shape, next((f for prefix, f in fate.items() if name.startswith(prefix)), old))
                for name, shape, old in rows]
    return rows
