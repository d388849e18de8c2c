"""scripts/check_port.py and portcheck: a porter's own port checked against its TF1 original.

This project's legacy/modern pairs pass it (one net per family at 32x32); each broken port of
portcheck/examples.py (the correct small port with one realistic mistake) fails at the right stage, naming the
right end point and, for the mistakes probing recognises, the cause; bad input is one line and exit status 2.
"""

import json
import os
import subprocess
import sys

import pytest

from helpers import QUIET_TF, REPO, assert_user_error, run_script

ENV = {**os.environ, **QUIET_TF}
SIZE = 32


def check(legacy, modern, **options):
    from portcheck import check as run_check
    from portcheck import examples
    return run_check(getattr(examples, legacy), getattr(examples, modern), image_size=SIZE, **options)


# one net per family that builds at 32x32 (slim_convnets' take 195 and more): legacy's graph against modern's model
FAMILIES = ["resnet_v1_50", "jianshu_resnet_50", "inception_v2", "densenet_100x12", "lenet5", "resnet18"]


@pytest.mark.slow  # 5-23 s each
@pytest.mark.parametrize("name", FAMILIES)
def test_this_projects_ports_pass_every_stage(name):
    import legacy
    import modern
    from portcheck import check as run_check

    def slim_fn(images, num_classes, is_training):
        return legacy.build(name, images, num_classes, is_training=is_training)

    report = run_check(slim_fn, lambda num_classes: modern.build(name, num_classes, input_shape=(SIZE, SIZE, 3)))
    stages = report["stages"]
    assert report["passed"], stages
    matched = stages["matched"]
    assert matched["matched"] >= 8 and matched["parameters"]["tf1"] == matched["parameters"]["keras"]
    assert stages["logits"]["difference"] < 1e-5
    if name == "resnet18":  # a subclassed model: no layer outputs to read, the logits alone are compared
        assert stages["first_divergence"]["compared"] == 0 and "subclassed" in stages["first_divergence"]["why"]
    else:
        assert stages["first_divergence"]["compared"] >= 3  # slim's end points with a layer standing for them
    step = stages["training_step"]
    if step["status"] == "SKIP":  # dropout in training: the masks would differ
        assert "dropout" in step["why"] and name in ("inception_v2", "lenet5", "densenet_100x12")
    else:
        assert step["status"] == "PASS" and step["weights"] == matched["matched"]


def test_a_slim_function_returning_only_logits_is_compared_through_its_end_points_collection():
    from port_fixtures import logits_only
    from portcheck import check as run_check
    from portcheck import examples
    report = run_check(logits_only, examples.small_keras_no_relu, image_size=SIZE)
    assert report["stages"]["first_divergence"]["end_point"] == "small_net/conv3"


def test_rename_maps_a_checkpoint_scope_onto_the_ports_model_name():
    from port_fixtures import small_keras_as_small
    from portcheck import check as run_check
    from portcheck import examples
    plain = run_check(examples.small_net, small_keras_as_small, image_size=SIZE)
    assert plain["stages"]["matched"]["status"] == "FAIL" and "small_net/conv1/weights" in plain["stages"][
        "matched"]["missing"]
    renamed = run_check(examples.small_net, small_keras_as_small, image_size=SIZE, renames=[("^small_net/", "small/")])
    assert renamed["passed"] and renamed["stages"]["training_step"]["status"] == "PASS", renamed["stages"]
    assert renamed["stages"]["first_divergence"]["compared"] == 4  # small_net/conv1 is small's conv1 too


def test_the_correct_small_port_passes_and_its_step_moved_the_weights():
    report = check("small_net", "small_keras")
    stages = report["stages"]
    assert report["passed"] and all(s["status"] == "PASS" for s in stages.values()), stages
    assert stages["first_divergence"]["compared"] == 4 and not stages["first_divergence"]["not_compared"]
    assert stages["training_step"]["regularization"]["tf1"] > 0


# broken port -> (the stage that fails, the end point or variable it names, what the cause says)
BROKEN = {
    "small_keras_epsilon": ("first_divergence", "small_net/conv1", "BN epsilon: conv1__BatchNorm has 0.001"),
    "small_keras_decay": ("training_step", "small_net/conv1/BatchNorm/moving_mean", "BN decay: conv1__BatchNorm"),
    "small_keras_same_padding": ("first_divergence", "small_net/conv2", "padding: TF1 pads small_net/conv2's input"),
    "small_keras_swapped_kernel": ("first_divergence", "small_net/conv3", "conv3 reads small_net/conv3/weights with"
                                   " its spatial axes swapped"),
    "small_keras_no_relu": ("first_divergence", "small_net/conv3", "a ReLU missing in the port"),
    "small_keras_weight_decay": ("training_step", None, "use L2(wd / 2)"),
    "small_keras_misnamed": ("matched", "small_net/conv3/weights", "name its layer conv3"),
}


@pytest.mark.parametrize("port", BROKEN)
def test_each_broken_port_fails_at_its_stage_naming_the_place_and_the_cause(port):
    stage, place, cause = BROKEN[port]
    report = check("small_net", port)
    stages = report["stages"]
    assert not report["passed"] and stages[stage]["status"] == "FAIL", stages
    order = ["matched", "logits", "first_divergence", "training_step"]
    assert all(stages[s]["status"] == "PASS" for s in order[:order.index(stage)] if s != "logits"), stages
    if stage == "first_divergence":
        assert stages[stage]["end_point"] == place
        assert any(cause in c for c in stages[stage]["causes"]), stages[stage]["causes"]
    elif stage == "training_step":
        assert stages[stage]["first_differing"] == place or place is None
        assert any(cause in c for c in stages[stage]["causes"]), stages[stage]["causes"]
    else:
        assert place in stages[stage]["missing"] and any(cause in h for h in stages[stage]["hints"])


@pytest.mark.slow
def test_the_command_reports_a_port_that_passes_and_one_that_does_not():
    """The passing port's slim function is given its arg scope on the command line, as for a net whose function
    expects the caller's (``--arg-scope``)."""
    passed = run_script("check_port.py", "portcheck.examples:small_net_unscoped", "portcheck.examples:small_keras",
                        "--arg-scope", "portcheck.examples:small_arg_scope", "--image-size", SIZE, env=ENV)
    assert passed.returncode == 0, passed.stderr[-2000:]
    lines = passed.stdout.strip().splitlines()
    assert lines[-1] == "PASS: the port computes what TF1 does" and lines[1].split()[:2] == ["matched", "PASS"]
    unscoped = check("small_net_unscoped", "small_keras")["stages"]["matched"]  # without it: biases, no BN
    assert unscoped["status"] == "FAIL" and "small_net/conv1/biases" in unscoped["missing"]
    failed = run_script("check_port.py", "portcheck.examples:small_net", "portcheck.examples:small_keras_no_relu",
                        "--image-size", SIZE, "--json", env=ENV)
    assert failed.returncode == 1, failed.stderr[-2000:]
    report = json.loads(failed.stdout)
    assert report["stages"]["first_divergence"]["end_point"] == "small_net/conv3" and not report["passed"]


@pytest.mark.parametrize("legacy, modern, message", [
    ("no_such_module:net", "portcheck.examples:small_keras", "LEGACY no_such_module:net: cannot import"),
    pytest.param("port_fixtures:no_is_training", "portcheck.examples:small_keras", "does not take (images,"
                 " num_classes, is_training)", marks=pytest.mark.slow),
    pytest.param("portcheck.examples:small_net", "port_fixtures:two_kernels", "two weights map to"
                 " small_net/conv1/weights", marks=pytest.mark.slow),
])
def test_bad_input_is_one_line_and_exit_status_2(legacy, modern, message):
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "check_port.py"), legacy, modern,
                           "--image-size", str(SIZE)], cwd=REPO / "tests", env=ENV, capture_output=True, text=True,
                          timeout=600)
    assert_user_error(proc, message)


# --- Keras 3 ports ------------------------------------------------------------------------------------------

def test_a_keras3_port_passes_every_stage():
    """On this process's backend (TensorFlow), the small net ported to Keras 3 with keras3's BatchNorm."""
    report = check("small_net", "small_keras3")
    assert report["passed"] and all(s["status"] == "PASS" for s in report["stages"].values()), report["stages"]


@pytest.mark.slow
def test_a_keras3_port_on_jax_passes_through_the_command():
    proc = run_script("check_port.py", "portcheck.examples:jianshu_resnet_50",
                      "portcheck.examples:jianshu_resnet_50_keras3", "--keras-backend", "jax", "--json", env=ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["passed"] and report["stages"]["training_step"]["status"] == "PASS"
    assert report["stages"]["first_divergence"]["compared"] >= 10 and report["stages"]["logits"]["difference"] < 1e-5
    assert report["stages"]["training_step"]["loss"]["difference"] < 1e-4
