"""The model zoo of the other four articles (docs/DESIGN.md §3), in both halves: counts, names, numbers, training.

Parametrized over every registered model that is not one of the big slim ResNets (tests/test_resnet.py). The
counts are the articles' published totals (DenseNets, ResNet-50) or computed by hand from the architecture,
with the arithmetic beside them — never what either half reports.
"""

import json
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import legacy
import modern
from helpers import (IMPLS, INCEPTION_COUNTS, QUIET_TF, REPO, RESNET_COUNTS, SLIM_CONVNET_COUNTS, legacy_run,
                     max_relative_error, run_script)
from legacy.slim_compat import tf
from modern import naming


def conv(k, c_in, c_out, bias=True):
    return k * k * c_in * c_out + (c_out if bias else 0)


def fc(n_in, n_out):
    return n_in * n_out + n_out


def bn(c):
    return 4 * c  # gamma, beta (trainable) + moving mean, moving variance


def inception(c_in, f1, f3r, f3, f5r, f5, fp):
    return (conv(1, c_in, f1) + conv(1, c_in, f3r) + conv(3, f3r, f3) + conv(1, c_in, f5r) + conv(5, f5r, f5)
            + conv(1, c_in, fp))


def cifar_stage(c_in, f, first):  # article 000: two blocks, no conv bias, projection on the first if it strides
    block1 = conv(3, c_in, f, False) + conv(3, f, f, False) + 2 * bn(f)
    block1 += conv(1, c_in, f, False) + bn(f) if first else 0
    return block1 + 2 * conv(3, f, f, False) + 2 * bn(f)


def basic_stage(c_in, f, first):  # article 004: two blocks, conv biases, a bare 1x1 conv shortcut
    block1 = conv(3, c_in, f) + conv(3, f, f) + 2 * bn(f) + (conv(1, c_in, f) if first else 0)
    return block1 + 2 * conv(3, f, f) + 2 * bn(f)


# name: (total parameters, non-trainable) at 10 classes and the model's default input
COUNTS = {
    # conv1 5x5x3x6, conv3 5x5x6x16, conv5 5x5x16x120, fc6 120x84, logits 84x10, all with biases
    "lenet5": (conv(5, 3, 6) + conv(5, 6, 16) + conv(5, 16, 120) + fc(120, 84) + fc(84, 10), 0),
    # 224 -> conv1/4 56 -> pool 27 -> pool 13 -> pool 6: 6x6x256 into fc6
    "alexnet": (conv(11, 3, 96) + conv(5, 96, 256) + conv(3, 256, 384) + conv(3, 384, 384) + conv(3, 384, 256)
                + fc(6 * 6 * 256, 512) + fc(512, 256) + fc(256, 10), 0),
    # five units of two 3x3 convs (32 -> 1 after five pools): 1x1x512 into fc6
    "vgg13": (conv(3, 3, 64) + conv(3, 64, 64) + conv(3, 64, 128) + conv(3, 128, 128) + conv(3, 128, 256)
              + conv(3, 256, 256) + conv(3, 256, 512) + 3 * conv(3, 512, 512) + fc(512, 256) + fc(256, 128)
              + fc(128, 10), 0),
    # stem 7x7x64; inception modules 64 -> 256 -> 480 -> 512 channels (1x1 + 3x3 + 5x5 + pool projection)
    "googlenet_cifar": (conv(7, 3, 64) + inception(64, 64, 96, 128, 16, 32, 32)
                        + inception(256, 128, 128, 192, 32, 96, 64) + inception(480, 192, 96, 208, 16, 48, 64)
                        + fc(512, 10), 0),
    # 3x3 stem (no bias) + BN, four stages of two blocks (64, 128, 256, 512), logits 512x10
    "resnet18_cifar": (conv(3, 3, 64, False) + bn(64) + cifar_stage(64, 64, False) + cifar_stage(64, 128, True)
                       + cifar_stage(128, 256, True) + cifar_stage(256, 512, True) + fc(512, 10),
                       2 * (64 + 2 * 2 * 64 + 3 * 128 + 2 * 128 + 3 * 256 + 2 * 256 + 3 * 512 + 2 * 512)),
    "resnet18": (conv(3, 3, 64) + bn(64) + basic_stage(64, 64, False) + basic_stage(64, 128, True)
                 + basic_stage(128, 256, True) + basic_stage(256, 512, True) + fc(512, 10),
                 2 * (64 + 4 * 64 + 4 * 128 + 4 * 256 + 4 * 512)),
    # article 003: 23,600,006 at 6 classes; 4 more classes add 4 x (2048 weights + 1 bias)
    "resnet50_keras": (23_600_006 + 4 * 2049, 53_120),
    # article 001's printed totals (and its trainable / non-trainable split)
    "densenet_100x12": (793_150, 23_988),
    "densenet_100x24": (3_068_482, 47_976),
    "densenet_121x32": (7_039_818, 83_520),
    "densenet_169x32": (12_651_594, 158_272),
    "densenet_201x32": (18_333_258, 228_928),
    "densenet_161x48": (26_702_122, 219_744),
}
ZOO = sorted(COUNTS)
BIG = {"densenet_169x32", "densenet_201x32", "densenet_161x48", "densenet_121x32"}  # 5-20 s per build
ZOO_PARAMS = [pytest.param(n, marks=pytest.mark.slow) if n in BIG else n for n in ZOO]


def test_the_zoo_is_every_registered_model_but_the_resnets_and_tf_slims_nets():
    assert sorted(set(legacy.list_models()) - set(ZOO)) == sorted(
        [*RESNET_COUNTS, *SLIM_CONVNET_COUNTS, "inception_v1", "inception_v2", "inception_v3"])


def legacy_variables(name, size, num_classes):
    graph = tf.Graph()
    with graph.as_default():
        logits, _ = legacy.build(name, tf.placeholder(tf.float32, [2, size, size, 3]), num_classes)
        trainable = {v.op.name for v in tf.trainable_variables()}
        return logits.shape.as_list(), {v.op.name: (v.shape.as_list(), v.op.name in trainable)
                                        for v in tf.global_variables()}


@pytest.mark.parametrize("name", ZOO_PARAMS)
def test_counts_shapes_and_names_agree_between_halves_and_with_the_articles(name):
    size = legacy.default_input_size(name)
    assert modern.default_input_size(name) == size
    legacy_shape, variables = legacy_variables(name, size, 10)
    model = modern.build(name, 10)
    total, non_trainable = COUNTS[name]
    legacy_total = sum(int(np.prod(s)) for s, _ in variables.values())
    legacy_frozen = sum(int(np.prod(s)) for s, t in variables.values() if not t)
    assert (legacy_total, legacy_frozen) == (total, non_trainable)
    frozen = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    assert (model.count_params(), frozen) == (total, non_trainable)
    assert legacy_shape == [2, 10] and model(np.zeros((2, size, size, 3), np.float32)).shape == (2, 10)
    # every legacy variable is exactly one modern weight of the same shape, and back
    weights = naming.weight_names(model)
    assert {n: s for n, (s, _) in variables.items()} == {n: w.shape.as_list() for n, w in weights.items()}


def test_resnet50_keras_has_the_articles_23600006_parameters_at_6_classes():
    assert modern.build("resnet50_keras", 6).count_params() == 23_600_006


# the four the issue names, and the rest; outside `make test-fast` except the quickest (its 5-minute budget)
PARITY = ["lenet5"] + [pytest.param(n, marks=pytest.mark.slow) for n in (
    "densenet_100x12", "resnet18_cifar", "resnet50_keras", "resnet18", "vgg13", "googlenet_cifar", "alexnet")]


@pytest.mark.parametrize("name", PARITY)
def test_legacy_weights_give_the_same_logits_in_the_modern_model(name, tmp_path):
    size = legacy.default_input_size(name)
    images = np.random.default_rng(1).uniform(0, 1, (8, size, size, 3)).astype(np.float32)
    prefix, inference, training, _ = legacy_run(name, images, 10, tmp_path)
    assert inference.std() > 0.1
    model = modern.build(name, 10)
    naming.load(model, prefix)
    assert max_relative_error(model(images, training=False).numpy(), inference) <= 1e-5
    if name != "alexnet":  # its dropout makes training-mode logits random
        assert max_relative_error(model(images, training=True).numpy(), training) <= 1e-4
    # the guard: one perturbed weight fails the same comparison
    kernel = next(w for n, w in naming.weight_names(model).items() if n.endswith("weights") and w.shape.rank == 4)
    perturbed = kernel.numpy()
    perturbed.flat[7] += 0.5
    kernel.assign(perturbed)
    assert max_relative_error(model(images, training=False).numpy(), inference) > 1e-5


def train_one(impl, name, records, run_dir):
    """Train ``name`` in ``impl`` for one short epoch; return a problem, or None."""
    size = min(legacy.default_input_size(name), 64)  # alexnet: a few steps at 64x64, not 224
    proc = run_script("train.py", "--impl", impl, "--model", name, "--data", records, "--image-size", size,
                      "--epochs", 1, "--batch-size", 12, "--lr", 0.01, "--no-flip", "--run-dir", run_dir, "--quiet",
                      "--no-export",
                      env={**os.environ, **QUIET_TF})
    if proc.returncode != 0:
        return impl, name, proc.stderr[-1500:]
    run = json.loads((run_dir / "run.json").read_text())
    if not (run["state"] == "complete" and len(run["epochs"]) == 1 and np.isfinite(run["epochs"][0]["loss"])):
        return impl, name, run["epochs"]
    return None


@pytest.mark.slow
def test_every_zoo_model_trains_through_train_py_in_one_half_and_each_half_trains_half_of_them(tiny, tmp_path):
    """Three steps of each model on the tiny records, in one half, the halves taking turns in the models' order
    (the parity test above holds both halves' forward pass of every model to each other, in training mode too),
    three training processes at a time (much of each run is starting Python and TensorFlow and tracing the graph,
    which one core does). The four ImageNet DenseNets (BIG) and densenet_100x24 are densenet_100x12's family
    builder with other settings of the table: they are built, counted and compared by logits above. Every model in
    both halves took 5.4 minutes of the suite on a 2-core AVX2 CPU."""
    names = sorted(set(ZOO) - BIG - {"densenet_100x24"})
    jobs = [(IMPLS[i % len(IMPLS)], name) for i, name in enumerate(names)]
    jobs.sort(key=lambda job: job[1] != "resnet50_keras")  # the longest first, so none runs alone at the end
    with ThreadPoolExecutor(max_workers=3) as pool:
        problems = list(pool.map(lambda job: train_one(*job, tiny[1], tmp_path / "-".join(job)), jobs))
    assert [p for p in problems if p] == []


def hand_counts():
    """``{(model, classes): parameters}``, counted by hand or published (not by either half): every model at 10
    classes (inception_v3 with its auxiliary head at 299), and at the classes of research/slim's checkpoints."""
    return {**{(n, 10): total for n, (total, _) in COUNTS.items()},
            **{(n, 10): total_10 for n, (_, _, total_10) in RESNET_COUNTS.items()},
            # resnet_v2's checkpoints have 1001 classes: one more logit of 2048 weights and a bias
            **{(n, 1000 + n.startswith("resnet_v2")): total + 2049 * n.startswith("resnet_v2")
               for n, (total, _, _) in RESNET_COUNTS.items() if "jianshu" not in n},
            **{(n, 10): total - 990 * 4097 for n, total in SLIM_CONVNET_COUNTS.items()},
            **{(n, 1000): total for n, total in SLIM_CONVNET_COUNTS.items()},
            **{(n, classes): total for n, pair in INCEPTION_COUNTS.items()
               for classes, total in zip((1001, 10), pair)}}


def test_the_readmes_model_table_is_the_script_s_with_the_hand_counted_parameters():
    """The README's table is what scripts/model_table.py writes, with the counts pinned here and in
    tests/test_resnet.py (which also hold the built models to them) instead of building all 19 models."""
    hand = hand_counts()
    assert sorted({n for n, _ in hand}) == sorted(modern.list_models())
    from cli import model_table
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    current = readme.split(model_table.BEGIN, 1)[1].split(model_table.END, 1)[0].strip()
    assert current == model_table.table(count=lambda name, classes: hand[name, classes])
