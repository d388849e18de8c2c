"""A port checked stage by stage against its TF1 original (``check``), and the report.

The stages (docs/MIGRATION.md, "Checking your own port"):

1. the TF1 graph built from the porter's slim function, given values that expose mistakes, written as a checkpoint;
2. the checkpoint mapped onto the Keras model by the naming rule (and ``--rename``): every variable unmatched either
   way or of another shape, and the parameter counts;
3. the logits in inference mode, then each end point, naming the first that differs while every end point it
   depends on agrees, with the causes probing can tell apart (BN epsilon, padding before a stride-2 convolution,
   a kernel's axes, a missing or extra ReLU);
4. one training step from the same values on the same batch: the loss, every weight and BN statistic, the
   regularization (with the causes: BN decay, a weight decay of another scale).

"Differs" is beyond float32's noise: ``TOLERANCE`` of the TF1 array's largest value (of 0.01 at least, for the
training step's nearly-zero values). This project's own ports agree within 2e-6 (tests/test_port_check.py).
"""

import inspect
import os
import tempfile

import numpy as np

from core import checkpoints
from core.errors import UserError
from core.run_dir import Hyper

TOLERANCE = 1e-4
JAX_STEP = 1e-2  # a training step's trained weights, Keras 3 on JAX (compare_steps)
BATCH = 4
PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


def check_signature(fn, what, wanted, *arguments, **keywords):
    """``fn`` must take ``arguments`` and ``keywords`` (``wanted`` names them): a UserError otherwise."""
    try:
        inspect.signature(fn).bind(*arguments, **keywords)
    except TypeError as err:
        raise UserError(f"{what}: {fn.__module__}.{fn.__qualname__} does not take ({wanted}): {err}") from None
    except ValueError:  # no signature to read (a builtin): calling it will tell
        pass


def difference(got, want, floor=0.0):
    """max |got - want| over max(max |want|, ``floor``), the arrays reshaped alike when their sizes agree."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.size != want.size:
        return float("inf")
    return float(np.max(np.abs(got.reshape(want.shape) - want), initial=0.0)
                 / max(float(np.max(np.abs(want), initial=0.0)), floor, 1e-30))


def check(legacy_fn, modern_fn, image_size=None, num_classes=10, arg_scope=None, renames=(), optimizer="momentum",
          seed=0):
    """Check the Keras port ``modern_fn(num_classes) -> tf_keras or Keras 3 Model`` against the slim function
    ``legacy_fn(images, num_classes, is_training) -> logits or (logits, end_points)``; returns the report, a
    dict (``format_report`` prints it; ``report["passed"]``)."""
    check_signature(legacy_fn, "LEGACY", "images, num_classes, is_training", None, num_classes, is_training=False)
    check_signature(modern_fn, "MODERN", "num_classes", num_classes)
    from portcheck import keras as port
    from portcheck import tf1
    # tf_keras invalidates the models made before a TF1 graph builds its layers (slim's BN is one): the port is
    # built here for its input size and name, and again once every TF1 graph is done
    first_build = port.build(modern_fn, num_classes)
    fixed = port.input_size(first_build)
    if image_size and fixed and image_size != fixed:
        raise UserError(f"--image-size {image_size}: MODERN's model takes {fixed}x{fixed} images")
    size = image_size or fixed or 224
    report = {"image_size": size, "num_classes": num_classes, "model": first_build.name, "stages": {}}
    del first_build
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1.0, 1.0, (BATCH, size, size, 3)).astype(np.float32)
    labels = np.eye(num_classes, dtype=np.float32)[rng.integers(0, num_classes, BATCH)]

    # 1. the TF1 graph, its exposing values, a checkpoint; its outputs, and one training step
    net = tf1.Net(legacy_fn, size, num_classes, BATCH, is_training=False, arg_scope=arg_scope)
    values = tf1.expose(net, images, seed)
    with tempfile.TemporaryDirectory() as folder:
        read = checkpoints.read_tf1(tf1.write_checkpoint(net, values, os.path.join(folder, "tf1")))
    read = checkpoints.renamed(read, renames)  # what the port is given, by its names
    keras_name = {old: new for new, old in checkpoints.renamed({n: n for n in values}, renames).items()}
    want_outputs = tf1.outputs(net, values, images)
    hyper = Hyper(optimizer=optimizer, lr=0.01, learning_rate_decay_type="fixed")
    training = tf1.Net(legacy_fn, size, num_classes, BATCH, is_training=True, arg_scope=arg_scope)
    if any(op.type.startswith(("RandomUniform", "StatelessRandomUniform")) and "/Initializer/" not in op.name
           for op in training.graph.get_operations()):
        want_step = "the TF1 graph draws random numbers in training (dropout): the two steps would not see the same"\
                    " masks"
    elif set(training.names()) != set(values):
        want_step = "the training graph has other variables than the inference graph"
    else:
        want_step = tf1.training_step(training, values, images, labels, hyper)
        want_step["values"] = {keras_name[n]: v for n, v in want_step["values"].items()}
        want_step["regularizers"] = {keras_name.get(n, n): v for n, v in want_step["regularizers"].items()}

    # 2. the mapping
    model = port.build(modern_fn, num_classes)
    mapping = port.Mapping(model, {n: v.shape for n, v in read.items()})
    counts = {"tf1": parameters(net.variables), "keras": parameters(model.weights),
              "tf1_trainable": parameters(net.trainable), "keras_trainable": parameters(model.trainable_weights)}
    report["stages"]["matched"] = {
        "status": PASS if mapping.complete and counts["tf1"] == counts["keras"] else FAIL,
        "matched": len(mapping.matched), "missing": mapping.missing, "unexpected": mapping.unexpected,
        "misshaped": mapping.misshaped, "parameters": counts,
        "hints": naming_hints(mapping)}
    if not mapping.complete:
        for stage in ("logits", "first_divergence", "training_step"):
            report["stages"][stage] = {"status": SKIP, "why": "the weights do not map (above)"}
        return finish(report)
    mapping.assign(read)

    # 3. the logits, then the end points
    compare_outputs(report, net, want_outputs, model, mapping, read, images, renames)

    # 4. one training step
    if isinstance(want_step, str):
        report["stages"]["training_step"] = {"status": SKIP, "why": want_step}
        return finish(report)
    got = port.training_step(model, mapping, read, images, labels, hyper)
    compare_steps(report, [keras_name[n] for n in training.names()], model, read, want_step, got)
    return finish(report)


def parameters(variables):
    return int(sum(np.prod([int(d) for d in v.shape]) for v in variables))


def finish(report):
    report["passed"] = all(s["status"] != FAIL for s in report["stages"].values())
    return report


def naming_hints(mapping):
    """For each missing TF1 variable, the unexpected weight of the same shape and leaf whose name is closest,
    and the ``--rename`` or layer name that would match it."""
    import difflib
    hints = []
    for name in mapping.missing:
        leaf = name.rsplit("/", 1)[-1]
        candidates = [n for n in mapping.unexpected if n.rsplit("/", 1)[-1] == leaf]
        close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.5)
        if close:
            hints.append(f"{close[0]} looks like {name}: name its layer {layer_of(name)}")
    return hints


def layer_of(tf1_name):
    return checkpoints.modern_name(tf1_name)[1]


# --- stage 3 --------------------------------------------------------------------------------------------

def compare_outputs(report, net, want_outputs, model, mapping, read, images, renames=()):
    """Stage 3: the logits and end points ``net`` gave (``want_outputs``) against the port's on ``read`` (the same
    values by the port's names; an end point's name renamed as the variables' are), in the graph's order."""
    from portcheck import keras as port
    order, depends = net.order()
    ported = {name: next(iter(checkpoints.renamed({name: None}, renames))) for name in order}
    layers = {name: port.layer_for(model, ported[name]) if port.functional(model) else None for name in order}
    compared = [n for n in order if layers[n] is not None]
    probe = port.Probe(model, [layers[n] for n in compared])
    want_logits, want = want_outputs
    got_logits, got = probe(images)
    logits = difference(got_logits, want_logits)
    report["stages"]["logits"] = {"status": PASS if logits <= TOLERANCE else FAIL, "difference": logits}
    differences = {n: difference(got[layers[n].name], want[n]) for n in compared}
    first = next((n for n in compared if differences[n] > TOLERANCE
                  and all(differences.get(d, 0.0) <= TOLERANCE for d in depends[n])), None)
    stage = {"compared": len(compared), "not_compared": [n for n in order if layers[n] is None],
             "differences": differences}
    if not order or not compared:
        stage.update(status=FAIL if logits > TOLERANCE else PASS,
                     why="LEGACY returns no end points and its graph has no slim end_points collection: the first"
                     " divergence cannot be located" if not order else "MODERN is a subclassed model, whose layers'"
                     " outputs cannot be read: the first divergence cannot be located")
    elif first is None:
        stage.update(status=PASS if logits <= TOLERANCE else FAIL)
        if logits > TOLERANCE:
            stage["why"] = "every compared end point agrees: the difference is after the last one"
    else:
        layer = layers[first]
        stage.update(status=FAIL, end_point=first, layer=layer.name, difference=differences[first],
                     causes=causes_at(net, model, probe, first, ported[first], layer, want[first], got[layer.name],
                                      read, mapping, images))
    report["stages"]["first_divergence"] = stage


def causes_at(net, model, probe, end_point, ported, layer, want, got, values, mapping, images):
    """What probing tells of the first divergent end point (TF1's ``end_point``, the port's name ``ported``): each
    cause found, as a sentence."""
    from portcheck import keras as port
    keras, _ = port.package(model)
    found = []
    members = port.end_point_layers(model, ported)
    base = port.end_point_layer_name(model, ported)

    def scope_of(item):  # the TF1 scope of a layer of the end point: the end point's, and the layer's rest
        return end_point + checkpoints.scope_name(item.name[len(base):])

    for item in members:
        if isinstance(item, keras.layers.BatchNormalization):
            epsilon = tf1_epsilon(net, scope_of(item))
            if epsilon is not None and abs(float(item.epsilon) - epsilon) > 1e-7:
                found.append(f"BN epsilon: {item.name} has {float(item.epsilon):g}, TF1's {scope_of(item)}"
                             f" {epsilon:g} (slim's arg scope sets it; Keras's default is 1e-3)")
        if isinstance(item, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)) and max(item.strides) > 1:
            padded = tf1_explicit_padding(net, scope_of(item))
            if padded and item.padding == "same":
                found.append(f"padding: TF1 pads {scope_of(item)}'s input explicitly before its"
                             f" stride-{max(item.strides)} VALID convolution (slim's conv2d_same), {item.name} uses"
                             " padding='same', which pads more at the end than at the start")
    if difference(np.maximum(got, 0), want) <= TOLERANCE:
        found.append(f"a ReLU missing in the port: {layer.name}'s output with a ReLU applied is TF1's")
    elif difference(got, np.maximum(want, 0)) <= TOLERANCE:
        found.append(f"an extra ReLU in the port: TF1's {end_point} with a ReLU applied is {layer.name}'s output")
    found.extend(kernel_axes(model, probe, layer, members, want, mapping, values, images))
    return found or [f"no probe recognised it: compare the layers {', '.join(m.name for m in members)} with TF1's"
                     f" ops under {end_point} by hand"]


def tf1_epsilon(net, scope):
    """The epsilon of TF1's batch norm under ``scope``: the fused kernel's attribute, or slim's non-fused
    ``batchnorm/add``'s constant."""
    op = net.op_under(scope, ("FusedBatchNormV3", "FusedBatchNorm"))
    if op is not None:
        return float(op.get_attr("epsilon"))
    for op in net.graph.get_operations():
        if op.name.startswith(scope + "/") and op.name.endswith("batchnorm/add/y") and op.type == "Const":
            return float(np.asarray(op.get_attr("value").float_val[0]))
    return None


def tf1_explicit_padding(net, scope):
    """Whether TF1's convolution under ``scope`` is VALID on an explicitly padded input (slim's conv2d_same)."""
    op = net.op_under(scope, ("Conv2D", "DepthwiseConv2dNative"))
    if op is None or op.get_attr("padding") != b"VALID":
        return False
    return op.inputs[0].op.type in ("Pad", "PadV2")


def kernel_axes(model, probe, layer, members, want, mapping, values, images):
    """Try each square kernel of the end point's layers with its two spatial axes, or its input and output axes,
    swapped: a swap that makes the end point agree is the cause."""
    names = {id(w): n for n, w in mapping.matched.items()}
    found = []
    for item in members:
        for weight in item.weights:
            name = names.get(id(weight))
            shape = list(weight.shape)
            if name is None or len(shape) not in (2, 4):
                continue
            swaps = []
            if len(shape) == 4 and shape[0] == shape[1]:
                swaps.append(("spatial", (1, 0, 2, 3)))
            if shape[-2] == shape[-1]:
                swaps.append(("input and output", tuple(range(len(shape) - 2)) + (len(shape) - 1, len(shape) - 2)))
            for what, axes in swaps:
                weight.assign(np.transpose(values[name], axes))
                _, got = probe(images)
                weight.assign(values[name])
                if difference(got[layer.name], want) <= TOLERANCE:
                    found.append(f"a kernel's axes: {item.name} reads {name} with its {what} axes swapped")
    return found


# --- stage 4 --------------------------------------------------------------------------------------------

def compare_steps(report, order, model, values, want, got):
    """Stage 4: the loss, the regularization and every value after one step (``order``: the TF1 variables'
    order, by the port's names), with the causes of a difference probing recognises."""
    from portcheck import keras as port
    keras, _ = port.package(model)
    loss = difference(got["loss"], want["loss"])
    regularization = difference(got["regularization"], want["regularization"])
    differences = {n: difference(got["values"][n], want["values"][n], floor=0.01) for n in order}
    # on JAX a step's gradients through BN are TF1's fused kernel's within that kernel's own error (docs/DESIGN.md
    # §8: 3.5e-4 off float64 where TF1's BN gradient cancels; 1.5e-3 of jianshu_resnet_50's conv1 here), so the
    # trained weights are held to JAX_STEP there; BN's statistics, the loss and the penalties to TOLERANCE
    trained = JAX_STEP if keras.__name__ == "keras" and keras.backend.backend() == "jax" else TOLERANCE
    bound = {n: TOLERANCE if n.rsplit("/", 1)[-1].startswith("moving_") else trained for n in order}
    first = next((n for n in order if differences[n] > bound[n]), None)
    causes = []
    if regularization > TOLERANCE:
        causes.extend(regularization_causes(want["regularizers"], got["regularizers"]))
    if first is not None and first.rsplit("/", 1)[-1] in ("moving_mean", "moving_variance"):
        try:
            layer = model.get_layer(checkpoints.modern_name(first)[1])
        except ValueError:  # nested in another layer
            layer = None
        moved_want = want["values"][first] - values[first]
        moved_got = got["values"][first] - values[first]
        ratio = float(np.median(moved_got / np.where(moved_want == 0, np.nan, moved_want)))
        if isinstance(layer, keras.layers.BatchNormalization) and np.isfinite(ratio) and ratio > 0:
            decay = 1.0 - (1.0 - float(layer.momentum)) / ratio
            causes.append(f"BN decay: {layer.name}'s moving statistics moved {ratio:.3g}x TF1's in one step: its"
                          f" momentum is {float(layer.momentum):g}, TF1's decay {decay:.4g}")
    status = PASS if loss <= TOLERANCE and regularization <= TOLERANCE and first is None else FAIL
    report["stages"]["training_step"] = {
        "status": status, "loss": {"tf1": want["loss"], "keras": got["loss"], "difference": loss},
        "regularization": {"tf1": want["regularization"], "keras": got["regularization"],
                           "difference": regularization},
        "weights": len(order), "largest_difference": max(differences.values(), default=0.0),
        "first_differing": first, "causes": causes}


def regularization_causes(want, got):
    """The kernels whose penalty is not TF1's, grouped by the ratio (2: Keras's ``L2(wd)`` for slim's
    ``l2_regularizer(wd)``, which is ``wd * sum(w**2) / 2``), and those with a penalty on one side only."""
    out, ratios = [], {}
    for name in sorted(set(want) | set(got)):
        if name not in got:
            out.append(f"no regularizer on {name} in the port (TF1's penalty {want[name]:.4g})")
        elif name not in want:
            out.append(f"a regularizer on {name} that TF1 does not have ({got[name]:.4g})")
        elif difference(got[name], want[name]) > TOLERANCE:
            ratios.setdefault(f"{got[name] / want[name]:.4g}" if want[name] else "inf", []).append(name)
    for ratio, names in ratios.items():
        extra = (": slim's l2_regularizer(wd) is wd * sum(w**2) / 2, Keras's L2(wd) wd * sum(w**2); use L2(wd / 2)"
                 if ratio == "2" else "")
        out.append(f"the penalty on {names[0]}{f' and {len(names) - 1} more' if len(names) > 1 else ''} is"
                   f" {ratio}x TF1's{extra}")
    return out


# --- the report -----------------------------------------------------------------------------------------

def format_report(report):
    """The short text report: one line per stage, PASS / FAIL / SKIP with its figure, then what went wrong."""
    stages, lines = report["stages"], [f"port check: {report['model']} at {report['image_size']}x"
                                       f"{report['image_size']}, {report['num_classes']} classes"]
    m = stages["matched"]
    p = m["parameters"]
    lines.append(f"  matched          {m['status']}  {m['matched']} variables; parameters TF1 {p['tf1']:,},"
                 f" Keras {p['keras']:,}")
    for name in m["missing"][:10]:
        lines.append(f"      TF1 variable with no Keras weight: {name}")
    for name, shape in list(m["unexpected"].items())[:10]:
        lines.append(f"      Keras weight with no TF1 variable: {name} {shape}")
    for name, (a, b) in list(m["misshaped"].items())[:10]:
        lines.append(f"      other shape: {name} TF1 {a}, Keras {b}")
    lines.extend(f"      hint: {hint}" for hint in m["hints"][:5])
    for key, title in (("logits", "logits"), ("first_divergence", "end points"), ("training_step", "training step")):
        stage = stages[key]
        figure = ""
        if key == "logits" and "difference" in stage:
            figure = f"  {stage['difference']:.2e} of the largest logit"
        if key == "first_divergence" and stage["status"] != SKIP:
            figure = f"  {stage.get('compared', 0)} compared"
            if stage.get("end_point"):
                figure += (f"; first divergence: {stage['end_point']} (Keras layer {stage['layer']}),"
                           f" {stage['difference']:.2e}")
        if key == "training_step" and stage["status"] != SKIP:
            figure = (f"  loss {stage['loss']['difference']:.2e}, regularization"
                      f" {stage['regularization']['difference']:.2e}, weights {stage['largest_difference']:.2e}")
            if stage["first_differing"]:
                figure += f"; first differing: {stage['first_differing']}"
        lines.append(f"  {title:<16} {stage['status']}{figure}")
        if stage.get("why"):
            lines.append(f"      {stage['why']}")
        lines.extend(f"      likely cause: {cause}" for cause in stage.get("causes", []))
    lines.append("PASS: the port computes what TF1 does" if report["passed"] else "FAIL: the port differs")
    return "\n".join(lines)
