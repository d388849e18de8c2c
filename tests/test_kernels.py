"""The CPU kernels each command chooses before TensorFlow starts (core/kernels.py), and oneDNN's crash guard for
every family under that choice.

The expected choices are written out per CPU class from TensorFlow 2.21's own policy (``DefaultOneDnnPolicy`` in
tensorflow/core/util/util.cc: oneDNN by default on Linux only with AVX512_VNNI, AVX512_BF16, AVX_VNNI or AMX) and
the measurements behind the choice (bench/kernels_bench.py, DESIGN §8): they are not computed by the module.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from core import kernels
from helpers import IMPLS, REPO, read_run

# /proc/cpuinfo flags of real CPUs (the parts the choice reads)
BASE = {"fpu", "sse2", "sse4_1", "sse4_2", "avx"}
ZEN3 = frozenset(BASE | {"avx2", "fma"})  # AMD EPYC 7003, AVX2 only
SKYLAKE_SP = frozenset(ZEN3 | {"avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl"})
CASCADE_LAKE = frozenset(SKYLAKE_SP | {"avx512_vnni"})
ALDER_LAKE = frozenset(ZEN3 | {"avx_vnni"})  # AVX2 with VEX VNNI, no AVX-512
SAPPHIRE_RAPIDS = frozenset(CASCADE_LAKE | {"avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16"})
SANDY_BRIDGE = frozenset(BASE)

# (flags, TensorFlow's own default, train's choice, predict's choice)
CLASSES = {
    "zen3": (ZEN3, False, True, False),
    "skylake_sp": (SKYLAKE_SP, False, True, False),
    "cascade_lake": (CASCADE_LAKE, True, True, True),
    "alder_lake": (ALDER_LAKE, True, True, True),
    "sapphire_rapids": (SAPPHIRE_RAPIDS, True, True, True),
    "sandy_bridge": (SANDY_BRIDGE, False, False, False),
}


@pytest.mark.parametrize("cpu", CLASSES)
def test_each_cpu_class_trains_on_onednn_from_avx2_up_and_predicts_on_tensorflows_default(cpu):
    flags, default, train, predict = CLASSES[cpu]
    for purpose, want in (("train", train), ("predict", predict), ("bfloat16", True)):
        got = kernels.decide(purpose, flags)
        assert (got.onednn, got.changed, got.asked) == (want, want != default, None), (purpose, got)


def test_the_callers_variable_always_wins_and_nothing_is_changed():
    for asked, on in (("0", False), ("1", True), ("false", False), ("True", True)):
        for flags in (ZEN3, SAPPHIRE_RAPIDS, None):
            got = kernels.decide("train", flags, asked=asked)
            assert (got.onednn, got.changed, got.asked) == (on, False, asked)
    # a value TensorFlow's ReadBoolFromEnvVar does not take (it lower-cases, and does not strip) leaves its policy
    for asked in ("yes", " 1", ""):
        assert [kernels.decide("train", flags, asked=asked).onednn for flags in (ZEN3, SAPPHIRE_RAPIDS, None)] == [
            False, True, None]
    assert kernels.decide("bfloat16", ZEN3, asked="0").onednn is False  # legacy then refuses bfloat16 in one line


def test_off_linux_x86_tensorflows_default_stays():
    got = kernels.decide("train", None)
    assert (got.onednn, got.changed) == (None, False)


def test_onednn_max_cpu_isa_emulates_an_older_cpu_for_the_choice_but_not_for_tensorflows_default():
    # on a Sapphire Rapids TensorFlow switches oneDNN on whatever the cap; capped to AVX2 or AVX-512 without
    # VNNI, prediction takes the emulated class's default (off), which changes TensorFlow's
    for cap, isa in (("AVX2", "AVX2"), ("avx512_core", "AVX512_CORE")):
        got = kernels.decide("predict", SAPPHIRE_RAPIDS, cap)
        assert (got.onednn, got.changed) == (False, True) and got.isa == f"{isa} (ONEDNN_MAX_CPU_ISA={cap})", got
        assert kernels.decide("train", SAPPHIRE_RAPIDS, cap).changed is False
    assert kernels.decide("predict", SAPPHIRE_RAPIDS, "AVX512_CORE_VNNI").onednn is True
    assert kernels.decide("train", SAPPHIRE_RAPIDS, "SSE41").onednn is False  # below AVX2: the class's default
    assert kernels.decide("predict", SAPPHIRE_RAPIDS, "no such isa").changed is False  # oneDNN ignores it too
    assert kernels.decide("train", ZEN3, "AVX2").isa == "AVX2"  # a cap that lowers nothing is not named


def test_unknown_purpose_is_a_bug():
    with pytest.raises(ValueError, match="purpose"):
        kernels.decide("serve", ZEN3)


def test_this_machines_flags_are_read_without_tensorflow():
    flags = kernels.cpu_flags()
    if flags is None:
        assert not (sys.platform == "linux" and os.uname().machine == "x86_64")
    else:
        assert "sse2" in flags  # every x86-64 CPU has it


CHOOSE = """
import json, sys
sys.path.insert(0, {repo!r})
from core import kernels
kernels.cpu_flags = lambda: frozenset({flags!r})
kernels.choose({purpose!r})
from core.quiet import quiet_tensorflow
quiet_tensorflow()  # as the commands import it: TensorFlow's start-up lines hidden, ours left
kernels.say("train")
kernels.say("train")  # once
print(json.dumps(kernels.record()))
"""


def choose_in_a_process(flags, purpose, **env):
    """A process that replaces the CPU's flags, chooses, imports TensorFlow; (its record, its stderr)."""
    environ = {k: v for k, v in os.environ.items() if k not in (kernels.VARIABLE, "ONEDNN_MAX_CPU_ISA", "TF_LOGS")}
    proc = subprocess.run([sys.executable, "-c", CHOOSE.format(repo=str(REPO), flags=sorted(flags), purpose=purpose)],
                          env={**environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env}, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


@pytest.mark.parametrize("flags, purpose, env, onednn, line", [
    # an AVX2 CPU: TensorFlow would run Eigen's kernels; the choice switches oneDNN on and says so in one line
    (ZEN3, "train", {}, True, "train: oneDNN's kernels switched on for this AVX2 CPU (TensorFlow leaves them off here)"),
    # the caller's variable: obeyed, nothing said
    (ZEN3, "train", {kernels.VARIABLE: "0"}, False, None),
    # an emulated AVX2 CPU predicting: the class's default, off, where TensorFlow reads AMX and would switch it on
    (SAPPHIRE_RAPIDS, "predict", {"ONEDNN_MAX_CPU_ISA": "AVX2"}, False,
     "train: oneDNN's kernels switched off for this AVX2 (ONEDNN_MAX_CPU_ISA=AVX2) CPU (TensorFlow leaves them on here)"),
])
def test_tensorflow_runs_what_was_chosen_and_run_json_records_it(flags, purpose, env, onednn, line):
    record, stderr = choose_in_a_process(flags, purpose, **env)
    assert record["onednn"] is onednn and record["chosen"] == ("oneDNN" if onednn else "Eigen"), record
    assert record["asked"] == env.get(kernels.VARIABLE)
    if line is None:
        assert stderr == "", stderr
    else:
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(line), stderr
        assert (kernels.OPT_OUT if onednn else f"{kernels.VARIABLE}=1") in lines[0]


def test_each_halfs_run_records_the_kernels_it_trained_on(runs, keras3_runs):
    # the suite's processes get conftest's choice as the caller's variable, which train.py read before TensorFlow
    # started ("why"; after it, the record says so) and TensorFlow then obeyed ("onednn")
    asked = os.environ.get(kernels.VARIABLE)
    for run_dir in [runs[impl] for impl in IMPLS] + list(keras3_runs.values()):
        record = read_run(run_dir)["kernels"]
        assert record["asked"] == asked, (run_dir, record)
        if asked is not None:
            assert record["why"] == f"{kernels.VARIABLE}={asked} in the environment", (run_dir, record)
            assert record["onednn"] is (asked == "1"), (run_dir, record)


# one net of every family, each at a small size it accepts, one training step: what oneDNN's graph rewrite and
# kernels must survive wherever the choice switches them on (an AVX2 CPU, emulated)
FAMILIES = {"jianshu_resnet_50": 32, "densenet_100x12": 32, "resnet18": 32, "vgg13": 32, "alexnet_v2": 195,
            "inception_v3": 107}
GUARD = {
    "legacy": """
        import numpy as np, legacy
        from legacy.slim_compat import tf
        for name, size in {families}.items():
            print(name, flush=True)
            graph = tf.Graph()
            with graph.as_default():
                images, labels = tf.random.uniform([2, size, size, 3]), tf.constant([0, 1], tf.int64)
                logits, _ = legacy.build(name, images, 3, is_training=True)
                loss = tf.losses.sparse_softmax_cross_entropy(labels, logits) + tf.losses.get_regularization_loss()
                with tf.control_dependencies(tf.get_collection(tf.GraphKeys.UPDATE_OPS)):
                    step = tf.train.MomentumOptimizer(0.01, 0.9).minimize(loss)
                with tf.Session(graph=graph) as sess:
                    sess.run(tf.global_variables_initializer())
                    sess.run(step)
                    assert np.isfinite(sess.run(loss))
    """,
    # the Keras halves alike: modern on tf_keras, keras3 on Keras 3 (KERAS_BACKEND=tensorflow, set below)
    **{half: f"""
        import numpy as np, {half}, {package} as keras
        for name, size in {{families}}.items():
            print(name, flush=True)
            model = {half}.build(name, 3, input_shape=(size, size, 3))
            model.compile(keras.optimizers.SGD(0.01, momentum=0.9),
                          keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            history = model.fit(np.random.rand(2, size, size, 3), np.array([0, 1]), verbose=0)
            assert np.isfinite(history.history["loss"][0])
    """ for half, package in (("modern", "tf_keras"), ("keras3", "keras"))},
}


@pytest.mark.slow
@pytest.mark.parametrize("half", GUARD)
def test_every_family_trains_a_step_on_onednn_at_avx2(half):
    """A process of its own: a segfault in oneDNN's rewrite (DESIGN §8) fails this test, naming the net, instead
    of killing the suite."""
    env = {"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "2", "TF_USE_LEGACY_KERAS": "1",
           "KERAS_BACKEND": "tensorflow", kernels.VARIABLE: "1", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    code = textwrap.dedent(GUARD[half]).format(families=FAMILIES)
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=900)
    reached = proc.stdout.split()
    assert proc.returncode == 0, f"{half} exited {proc.returncode} in {reached[-1:]}: {proc.stderr[-2000:]}"
    assert reached == list(FAMILIES)
