"""The keras3 half's models against TF1, on each Keras 3 backend in a process of its own.

Every model of the table is built in Keras 3 from ``kerasnets``' nets (the same code as modern's, with Keras 3's
layer kit), and every code path of them holds the parameters counted by hand (tests/test_zoo.py's ``hand_counts``:
published totals and layer-by-layer sums, not either half's count): all models but ``ANOTHER_ROW``, the deeper
ResNets and the larger DenseNets, which run the code of a counted one with another row of its table (and take 70
of the 115 s that counting all 32 takes on TensorFlow; modern's are counted in tests/test_resnet.py and
tests/test_zoo.py). One net per family has exactly the variables of legacy's TF1 graph
(tf_slim's own for research/slim's nets), names and shapes, and loads a checkpoint that graph wrote with random
weights, every weight by name, giving its logits. The Keras 3 side runs in one subprocess per backend (the
backend is fixed when Keras is first imported, and this process has it on TensorFlow); the reference is built
here.

On JAX only the nets of ``LOGITS`` are built: a Keras 3 model's weights are initialised by XLA programs compiled
per shape, and building all 32 models there took over 10 minutes of one core (the layers and their names are the
same code on both backends; only ``BatchNorm``'s and ``DepthFilling``'s computations differ, and those the logits
compare).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from core import models
from core.keras_backend import BACKENDS
from helpers import QUIET_TF, REPO, legacy_run, max_relative_error
from test_zoo import hand_counts

# a Keras 3 process per backend building 25 nets (3-4 minutes of one worker on 2 cores): outside `make test-fast`
pytestmark = pytest.mark.slow

# one net per family, each at size_of(name) (vgg's fc6 is a 7x7 VALID convolution of a 224 image's pool5)
LOGITS = ["jianshu_resnet_50", "resnet_v1_50", "resnet_v2_50", "inception_v3", "vgg_16"]
CLASSES = 10
ANOTHER_ROW = {*(f"{family}_{depth}" for family in ("jianshu_resnet", "resnet_v1", "resnet_v2")
                 for depth in (101, 152, 200)), "densenet_100x24", "densenet_161x48", "densenet_169x32",
               "densenet_201x32"}
COUNTED = [n for n in models.list_models() if n not in ANOTHER_ROW]


def size_of(name):
    """The size every model is built at here: 32, or the smallest it takes."""
    return max(32, models.spec(name).min_size)


KERAS3 = """
import json, sys
import numpy as np
import keras
import keras3
from core import checkpoints, models
from keras3 import naming
job, out = json.loads(open(sys.argv[1]).read()), {"backend": keras.backend.backend(), "variables": {}, "counts": {},
                                     "logits": {}}
def built(name, size):  # auxiliary heads included, as in legacy's graph and the hand counts
    return keras3.build(name, job["classes"], input_shape=(size, size, 3),
                        aux_logits=models.spec(name).aux_head is not None)
if keras.backend.backend() == "tensorflow":
    for name, size in job["counts"]:
        out["counts"][name] = built(name, size).count_params()
        keras.backend.clear_session()
for name, prefix, images in job["logits"]:  # the checkpoint holds every variable, the auxiliary head's too
    x = np.load(images)
    model = built(name, x.shape[1])
    out["variables"][name] = {n: [int(d) for d in w.shape] for n, w in naming.weight_names(model).items()}
    values, _ = checkpoints.read(prefix)
    assert sorted(naming.assign(model, values)) == sorted(out["variables"][name])
    logits = model(x, training=False)
    out["logits"][name] = prefix + f".{keras.backend.backend()}.npy"
    np.save(out["logits"][name], keras.ops.convert_to_numpy(logits[0] if isinstance(logits, (list, tuple)) else logits))
    keras.backend.clear_session()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """``(job file, {name: reference logits}, {name: {TF1 variable: shape}})``: the checkpoints legacy's graphs
    wrote for LOGITS, their variables, and what the subprocesses build."""
    base = tmp_path_factory.mktemp("keras3")
    job = {"classes": CLASSES, "logits": [],
           "counts": [[n, models.spec(n).input_size] for n in COUNTED]}
    logits, variables = {}, {}
    for i, name in enumerate(LOGITS):
        size = size_of(name)
        images = np.random.default_rng(i).uniform(-1, 1, (2, size, size, 3)).astype(np.float32)
        prefix, logits[name], _, variables[name] = legacy_run(name, images, CLASSES, base, seed=i)
        np.save(base / f"{name}.images.npy", images)
        job["logits"].append([name, prefix, str(base / f"{name}.images.npy")])
    (base / "job.json").write_text(json.dumps(job))
    return base / "job.json", logits, variables


@pytest.fixture(scope="module", params=BACKENDS)
def keras3(request, references):
    """What the keras3 half built and predicted on one backend, in a process of its own."""
    env = {**os.environ, **QUIET_TF, "KERAS_BACKEND": request.param}
    proc = subprocess.run([sys.executable, "-c", KERAS3, str(references[0])], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["backend"] == request.param
    return out


def test_every_model_holds_the_hand_counted_parameters(keras3):
    if keras3["backend"] != "tensorflow":
        pytest.skip("on JAX only the nets of LOGITS are built (see the module docstring)")
    hand = hand_counts()
    assert sorted(keras3["counts"]) == sorted(COUNTED) and len(COUNTED) == 20
    assert {n: c for n, c in keras3["counts"].items() if c != hand[n, CLASSES]} == {}


@pytest.mark.parametrize("name", LOGITS)
def test_one_net_per_family_has_exactly_legacys_variables(keras3, references, name):
    expected, got = references[2][name], keras3["variables"][name]
    assert got == expected, (name, sorted(set(got) ^ set(expected))[:6])


@pytest.mark.parametrize("name", LOGITS)
def test_a_checkpoint_tf1_wrote_gives_the_same_logits(keras3, references, name):
    reference = references[1][name]
    assert reference.std() > 0.1
    got = np.load(keras3["logits"][name])
    assert max_relative_error(got, reference) <= 1e-5, (keras3["backend"], max_relative_error(got, reference))
