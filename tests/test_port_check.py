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


@pytest.mark.slow  # 12-23 s each
@pytest.mark.parametrize("name", ["resnet_v1_50", "resnet_v2_50", "inception_v2", "jianshu_resnet_50"])
def test_this_projects_ports_pass_every_stage(name):
    report = check(name, f"{name}_keras")
    stages = report["stages"]
    assert report["passed"], stages
    matched = stages["matched"]
    assert matched["matched"] > 50 and matched["parameters"]["tf1"] == matched["parameters"]["keras"]
    assert stages["logits"]["difference"] < 1e-5
    assert stages["first_divergence"]["compared"] >= 10  # slim's end points with a layer standing for them
    step = stages["training_step"]
    if name == "inception_v2":  # dropout in training: the masks would differ
        assert step["status"] == "SKIP"
    else:
        assert step["status"] == "PASS" and step["weights"] == matched["matched"]


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
