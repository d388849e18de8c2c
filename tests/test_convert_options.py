"""convert_checkpoint.py on the checkpoints research/slim's users have, each made here by tf_slim's own graph.

One checkpoint of ``tf_slim.nets.resnet_v2.resnet_v2_50`` as research/slim publishes its ImageNet nets: 1001
classes (class 0 = background), one real Momentum step taken (so it holds the slots and ``global_step``) and
``tf.train.ExponentialMovingAverage`` shadows of every model variable that differ from the raw weights. Each
option is checked against tf_slim's graph evaluating the same numbers: ``--drop-background-class`` (class k + 1
becomes class k), ``--use-ema`` (tf_slim's graph restored from the shadows, as research/slim's eval does),
``--rename`` (the same checkpoint saved under ``tower_0/``), ``--list`` (every variable's fate, nothing written).
"""


import numpy as np
import pytest

from cli import convert_checkpoint  # its argument parser
from core import checkpoints
from core.errors import UserError
from core.run_dir import Run
from helpers import assert_user_error, max_relative_error, random_values, read_run, run_script, set_values
from legacy.slim_compat import slim, tf, tf1_hashing

NAME = "resnet_v2_50"
IMAGES = np.random.default_rng(3).uniform(-1, 1, (4, 64, 64, 3)).astype(np.float32)
pytestmark = pytest.mark.slow  # tf_slim's ResNet-50 three times and a conversion per test: about a minute


def slim_logits(prefix, averaged):
    """tf_slim's own resnet_v2_50 in inference mode, restored from ``prefix`` (its raw variables, or the moving
    averages as research/slim's eval_image_classifier restores them)."""
    from tf_slim.nets import resnet_utils, resnet_v2
    graph = tf.Graph()
    with graph.as_default(), tf1_hashing():
        with slim.arg_scope(resnet_utils.resnet_arg_scope()):
            logits, _ = resnet_v2.resnet_v2_50(tf.constant(IMAGES), 1001, is_training=False)
        # research/slim's eval_image_classifier: variables_to_restore(slim.get_model_variables())
        restore = (tf.train.ExponentialMovingAverage(0.999).variables_to_restore(tf.model_variables()) if averaged
                   else tf.model_variables())
        with tf.Session(graph=graph) as sess:
            tf.train.Saver(restore).restore(sess, prefix)
            return sess.run(logits)[:, 0, 0, :]


@pytest.fixture(scope="module")
def slim_ckpt(tmp_path_factory):
    """``(prefix, raw logits, averaged logits)`` of the checkpoint, and the same saved under ``tower_0/``."""
    from tf_slim.nets import resnet_utils, resnet_v2
    folder = tmp_path_factory.mktemp("slim")
    rng = np.random.default_rng(0)
    graph = tf.Graph()
    with graph.as_default(), tf1_hashing():
        with slim.arg_scope(resnet_utils.resnet_arg_scope()):
            logits, _ = resnet_v2.resnet_v2_50(tf.constant(IMAGES), 1001, is_training=True)
        loss = tf.losses.sparse_softmax_cross_entropy(tf.constant([1, 7, 500, 1000]), tf.squeeze(logits, [1, 2]))
        step = tf.train.MomentumOptimizer(1e-3, 0.9).minimize(loss, tf.train.get_or_create_global_step())
        ema = tf.train.ExponentialMovingAverage(0.999)
        with tf.control_dependencies([step]):
            train_op = ema.apply(tf.model_variables())
        with tf.Session(graph=graph) as sess:
            sess.run(tf.global_variables_initializer())
            set_values(sess, random_values(tf.model_variables(), rng))
            # shadows well away from the weights: the same kind of value, drawn again
            set_values(sess, {ema.average(v): x for v, x in random_values(tf.model_variables(), rng).items()})
            sess.run(train_op)
            prefix = tf.train.Saver().save(sess, str(folder / "model.ckpt"), global_step=1, write_meta_graph=False)
            copies = {"tower_0/" + v.op.name: v for v in tf.global_variables()}
            tower = tf.train.Saver(copies).save(sess, str(folder / "tower.ckpt"), write_meta_graph=False)
    raw, averaged = slim_logits(prefix, False), slim_logits(prefix, True)
    assert raw.std() > 0.1 and averaged.std() > 0.1 and max_relative_error(averaged, raw) > 0.1
    return prefix, tower, raw, averaged


def converted_logits(run_dir):
    from modern.weights import Predictor
    return Predictor(Run.read(str(run_dir)))(IMAGES)


def convert(src, out, *options):
    proc = run_script("convert_checkpoint.py", src, "--out", out, "--image-size", 64, *options)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_a_1001_class_checkpoint_keeps_class_0_as_background_or_drops_it(slim_ckpt, tmp_path):
    prefix, _, raw, _ = slim_ckpt
    kept = convert(prefix, tmp_path / "kept")
    run = read_run(kept)
    assert run["num_classes"] == 1001 and run["labels"][:2] == ["background", "0"]
    assert max_relative_error(converted_logits(kept), raw) <= 1e-5

    dropped = convert(prefix, tmp_path / "dropped", "--drop-background-class")
    run = read_run(dropped)
    assert run["num_classes"] == 1000 and run["labels"][:2] == ["0", "1"]
    assert run["converted_from"]["labels_offset"] == 1
    assert max_relative_error(converted_logits(dropped), raw[:, 1:]) <= 1e-5  # class k+1 of tf_slim's is k here
    head, _ = checkpoints.read(str(dropped / "best.h5"), NAME)
    theirs, _ = checkpoints.read(prefix)
    np.testing.assert_array_equal(head[f"{NAME}/logits/weights"], theirs[f"{NAME}/logits/weights"][..., 1:])
    # slim's own flag name says the same
    assert convert_checkpoint.parse_args([prefix, "--out", "x", "--labels-offset", "1"]).labels_offset == 1
    assert convert_checkpoint.parse_args([prefix, "--out", "x", "--labels-offset", "0"]).labels_offset == 0


def test_use_ema_takes_the_moving_averages_as_research_slims_eval_does(slim_ckpt, tmp_path):
    prefix, _, raw, averaged = slim_ckpt
    out = convert(prefix, tmp_path / "ema", "--use-ema")
    got = converted_logits(out)
    assert max_relative_error(got, averaged) <= 1e-5 and max_relative_error(got, raw) > 0.1
    assert read_run(out)["converted_from"]["use_ema"] is True


def test_rename_maps_a_checkpoint_saved_under_another_scope(slim_ckpt, tmp_path):
    _, tower, raw, _ = slim_ckpt
    assert_user_error(run_script("convert_checkpoint.py", tower, "--out", tmp_path / "no"), "cannot tell the model",
                      "tower_0")
    out = convert(tower, tmp_path / "renamed", "--rename", "^tower_0/=")
    assert max_relative_error(converted_logits(out), raw) <= 1e-5
    assert read_run(out)["converted_from"]["rename"] == ["^tower_0/="]
    with pytest.raises(UserError, match="--rename maps two variables to x"):
        checkpoints.renamed(checkpoints.read(tower)[0], [("^tower_0/.*", "x")])


def test_list_gives_every_variables_fate_and_writes_nothing(slim_ckpt, tmp_path):
    prefix, _, _, _ = slim_ckpt
    out = tmp_path / "not-written"
    proc = run_script("convert_checkpoint.py", prefix, "--list", "--out", out, "--use-ema", "--num-classes", 10,
                      "--rename", "conv1/biases$=conv1/bias")
    assert proc.returncode == 0, proc.stderr[-3000:]
    fates = {line.split()[0]: line.split("  ")[-1].strip() for line in proc.stdout.splitlines()[:-1]}
    values, _ = checkpoints.read(prefix)
    assert len(fates) == len(values) + 1  # the checkpoint's, and the one the model misses
    assert fates[f"{NAME}/conv1/biases"] == "missing" and fates[f"{NAME}/conv1/bias"] == "unexpected"
    assert fates["global_step"] == "global_step"
    assert fates[f"{NAME}/block1/unit_1/bottleneck_v2/conv1/weights/Momentum"] == "optimizer slot"
    assert fates[f"{NAME}/block1/unit_1/bottleneck_v2/conv1/weights/ExponentialMovingAverage"] == "EMA shadow (used)"
    assert fates[f"{NAME}/block1/unit_1/bottleneck_v2/conv1/weights"] == "matched"
    assert fates[f"{NAME}/logits/weights"] == "other shape (the model's: [1, 1, 2048, 10])"
    assert not out.exists() and "nothing written" in proc.stdout.splitlines()[-1]
