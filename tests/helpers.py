"""Shared test helpers and constants (conftest.py holds the fixtures only): real image files written by Pillow,
real subprocess runs of the scripts, the tiny runs' arguments, run.json read as the file it is, and the parity
helpers (a real Saver checkpoint of a legacy graph with random weights, and its logits)."""

import io
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

REPO = Path(__file__).resolve().parent.parent

IMPLS = ["legacy", "modern"]
KERAS3_BACKENDS = ("tensorflow", "jax")  # the keras3 half's, each its own process
CLASSES = ["circle", "square", "stripes"]
EPOCHS, BATCH = 2, 4
QUIET_TF = {"TF_CPP_MIN_LOG_LEVEL": "2"}

# The ResNets' parameters (pinned numbers, held by tests/test_resnet.py and the README's table):
# (total, trainable) at 1000 classes, total at 10 classes.
RESNET_COUNTS = {
    "jianshu_resnet_50": (22_788_584, 22_769_384, 20_760_074),
    "jianshu_resnet_101": (41_780_712, 41_744_104, 39_752_202),
    "jianshu_resnet_152": (57_424_360, 57_372_392, 55_395_850),
    # tf_slim's own totals; trainable = total - 2 x BN channels (moving mean and variance), e.g. for 50:
    # stem 64 + per unit b + b + 4b (+ 4b shortcut on each block's first unit), b = 64/128/256/512 over
    # [3, 4, 6, 3] units = 64 + 1408 + 3584 + 10240 + 11264 = 26,560 channels -> 53,120 non-trainable.
    # 10 classes: 990 fewer logits, each with 2048 weights and a bias.
    "resnet_v1_50": (25_610_152, 25_610_152 - 53_120, 25_610_152 - 2049 * 990),
    "resnet_v1_101": (44_654_504, 44_654_504 - 105_344, 44_654_504 - 2049 * 990),
    "resnet_v1_152": (60_344_232, 60_344_232 - 151_424, 60_344_232 - 2049 * 990),
    # the same count over [3, 24, 36, 3] units (88,000 BN channels)
    "resnet_v1_200": (64_849_832, 64_849_832 - 176_000, 64_849_832 - 2049 * 990),
    # resnet_v2: tf_keras.applications.ResNet{50,101,152}V2's published totals and trainable counts (the same
    # layout under other names: biased stem, pre-activation units with biased conv3 / shortcut, a head BN);
    # per unit the BN channels are in + b + b (preact, conv1, conv2), plus 2048 for postnorm. 200: the same
    # arithmetic over [3, 24, 36, 3] units.
    "resnet_v2_50": (25_613_800, 25_568_360, 25_613_800 - 2049 * 990),
    "resnet_v2_101": (44_675_560, 44_577_896, 44_675_560 - 2049 * 990),
    "resnet_v2_152": (60_380_648, 60_236_904, 60_380_648 - 2049 * 990),
    "resnet_v2_200": (64_894_440, 64_726_120, 64_894_440 - 2049 * 990),
}
# tf_slim's plain convnets at 1000 classes. VGG-11 ("A"), VGG-16, VGG-19 as published (Simonyan & Zisserman's
# configurations; tf_keras.applications.VGG16 / VGG19 state the same totals). AlexNet v2 and OverFeat counted
# by hand from tf_slim's layer list, (k*k*in + 1) * out per convolution. Each has a 4096-wide fc7, so 10
# classes drop 990 x (4096 + 1).
SLIM_CONVNET_COUNTS = {
    "vgg_a": 132_863_336, "vgg_16": 138_357_544, "vgg_19": 143_667_240,
    "alexnet_v2": sum((k * k * c_in + 1) * c_out for k, c_in, c_out in (
        (11, 3, 64), (5, 64, 192), (3, 192, 384), (3, 384, 384), (3, 384, 256), (5, 256, 4096), (1, 4096, 4096),
        (1, 4096, 1000))),  # 50,303,912
    "overfeat": sum((k * k * c_in + 1) * c_out for k, c_in, c_out in (
        (11, 3, 64), (5, 64, 256), (3, 256, 512), (3, 512, 1024), (3, 1024, 1024), (6, 1024, 3072),
        (1, 3072, 4096), (1, 4096, 1000))),  # 145,704,424
}


def aux(classes):
    """v3's AuxLogits: Conv2d_1b_1x1 768 -> 128 and Conv2d_2a_5x5 128 -> 768, each with BN (beta, moving mean,
    moving variance), then Conv2d_2b_1x1 768 -> classes with biases."""
    return 768 * 128 + 3 * 128 + 5 * 5 * 128 * 768 + 3 * 768 + 768 * classes + classes


# Totals at 1001 classes (research/slim's checkpoints: ImageNet's 1000 and a background class) and at 10. tf_slim's
# own tests pin the bases (inception_vN_base's model variables, BN's moving mean and variance included); the head
# is a 1x1 convolution with biases from the last block's 1024 (v3: 2048) channels; tf_slim always builds v3's
# AuxLogits.
INCEPTION_COUNTS = {
    "inception_v1": (5_607_184 + 1024 * 1001 + 1001, 5_607_184 + 1024 * 10 + 10),  # 6,633,209
    "inception_v2": (10_173_112 + 1024 * 1001 + 1001, 10_173_112 + 1024 * 10 + 10),  # 11,199,137
    "inception_v3": (21_802_784 + 2048 * 1001 + 1001 + aux(1001), 21_802_784 + 2048 * 10 + 10 + aux(10)),
}


def shape_image(kind, seed):
    """A 32x32 picture of ``kind`` with a random colour, position jitter and noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:32, 0:32]
    cy, cx = rng.integers(12, 20, 2)
    if kind == "circle":
        mask = (y - cy) ** 2 + (x - cx) ** 2 < 64
    elif kind == "square":
        mask = (abs(y - cy) < 8) & (abs(x - cx) < 8)
    else:
        mask = (x // 4) % 2 == 0
    colour = rng.integers(80, 255, 3)
    pixels = np.where(mask[..., None], colour, 255 - colour // 3) + rng.normal(0, 8, (32, 32, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def run_script(name, *args, timeout=600, **kwargs):
    """Run ``scripts/<name>`` with this interpreter; return the CompletedProcess (text, captured)."""
    return subprocess.run([sys.executable, str(REPO / "scripts" / name), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, **kwargs)


def assert_user_error(proc, *words):
    """Exit status 2, one line on stderr, no traceback, and the line names ``words``."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


def pattern(height, width, seed=0):
    """A smooth colour image with some noise: JPEG-realistic, different per seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 / max(width - 1, 1), y * 255 / max(height - 1, 1),
                    (x + y) * 127 / max(width + height - 2, 1)], axis=-1)
    rgb += rng.normal(0, 20, rgb.shape) + rng.integers(0, 80)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def save(path, img, fmt, **params):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, fmt, **params)
    return path


def exif_rotated_jpeg(path, seed=0):
    """A 20x12 JPEG whose EXIF orientation (6) says: rotate 90° clockwise to view it (12 wide, 20 high)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return save(path, Image.fromarray(pattern(12, 20, seed)), "JPEG", quality=92, exif=exif.tobytes())


def animated_gif(path):
    frames = [Image.fromarray(pattern(16, 16, s)).convert("P") for s in (1, 2)]
    return save(path, frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


def gray16_png(path):
    samples = (np.arange(24 * 16).reshape(16, 24) * 170).astype(np.uint16)  # up to 65,110
    return save(path, Image.fromarray(samples), "PNG")


def bomb_png(path):
    """A tiny PNG whose header claims 20,000 x 20,000 pixels: Pillow refuses it before decoding."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 20001)) + chunk(b"IEND", b"")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(data)
    return Path(path)


def truncated_jpeg(path):
    buf = io.BytesIO()
    Image.fromarray(pattern(40, 40, 7)).save(buf, "JPEG", quality=90)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return Path(path)


def pillow_rgb(path):
    """The reference pixels of a file, built here from Pillow alone (not flowio's code)."""
    img = Image.open(path)
    img = ImageOps.exif_transpose(img)
    if img.mode == "I;16":
        gray = (np.asarray(img).astype(np.uint32) >> 8).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    return np.asarray(img.convert("RGB"))


def mixed_tree(root, outside):
    """Every format and trap of the FlowIO issue under ``root``; return ``(valid, skipped, kept)``.

    ``valid`` maps relative paths to class names, ``skipped`` relative paths to a word of the reason,
    ``kept`` lists the files whose original bytes the records must keep.
    """
    root = Path(root)
    img = lambda h, w, s: Image.fromarray(pattern(h, w, s))  # noqa: E731
    save(root / "cat s" / "rgb photo.jpg", img(30, 40, 1), "JPEG", quality=90)
    save(root / "cat s" / "gray.jpg", img(24, 24, 2).convert("L"), "JPEG", quality=90)
    save(root / "cat s" / "cmyk.jpg", img(24, 20, 3).convert("CMYK"), "JPEG", quality=90)
    exif_rotated_jpeg(root / "cat s" / "rotated.jpg", seed=4)
    save(root / "cat s" / "nested" / "deeper" / "rgb.png", img(18, 22, 5), "PNG")
    save(root / "狗" / "palette.png", img(20, 20, 6).convert("P"), "PNG")
    save(root / "狗" / "rgba.png", img(16, 18, 7).convert("RGBA"), "PNG")
    gray16_png(root / "狗" / "gray16.png")
    save(root / "狗" / "图片 1.bmp", img(15, 17, 8), "BMP")
    animated_gif(root / "狗" / "anim.gif")
    save(root / "bird" / "x.webp", img(20, 24, 9), "WEBP", lossless=True)
    save(root / "bird" / "x.tiff", img(14, 12, 10), "TIFF")
    save(root / "bird" / "gray.png", img(19, 21, 11).convert("L"), "PNG")
    target = save(Path(outside) / "linked target.png", img(20, 20, 12), "PNG")
    os.symlink(target, root / "bird" / "link.png")
    save(root / "bird" / ".hidden.png", img(20, 20, 13), "PNG")
    save(root / ".hidden dir" / "x.png", img(20, 20, 14), "PNG")
    (root / "cat s" / "notes.txt").write_text("not an image\n")
    (root / "cat s" / "empty.jpg").write_bytes(b"")
    truncated_jpeg(root / "狗" / "truncated.jpg")
    bomb_png(root / "bird" / "bomb.png")
    (root / "README.txt").write_text("loose file\n")

    valid = {
        "cat s/rgb photo.jpg": "cat s", "cat s/gray.jpg": "cat s", "cat s/cmyk.jpg": "cat s",
        "cat s/rotated.jpg": "cat s", "cat s/nested/deeper/rgb.png": "cat s",
        "狗/palette.png": "狗", "狗/rgba.png": "狗", "狗/gray16.png": "狗", "狗/图片 1.bmp": "狗",
        "狗/anim.gif": "狗", "bird/x.webp": "bird", "bird/x.tiff": "bird", "bird/gray.png": "bird",
        "bird/link.png": "bird",
    }
    skipped = {"cat s/notes.txt": "not an image", "cat s/empty.jpg": "empty", "狗/truncated.jpg": "truncated",
               "bird/bomb.png": "decompression bomb", "README.txt": "not inside a class folder"}
    kept = ["cat s/rgb photo.jpg", "cat s/gray.jpg", "cat s/nested/deeper/rgb.png", "bird/gray.png",
            "bird/link.png"]
    return valid, skipped, kept


def tree_bytes(folder):
    """``{relative path: bytes}`` of every file in ``folder`` outside hidden files and folders."""
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)}


def processes_naming(path):
    """PIDs of live processes whose command line contains ``path``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{pid}/stat") as f:
                zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            continue
        if str(path).encode() in cmdline and not zombie:
            found.append(int(pid))
    return found


# slim's own recipe (its default optimizer, with its epsilon 1.0) with moving averages and label smoothing: the
# shared runs, the kill test's and the continued ones train so, so that every resume path carries RMSProp's slots
# and the averages (the article's momentum recipe is the fixtures', tests/test_fixtures.py)
SLIM_RECIPE = ("--optimizer", "rmsprop", "--opt-epsilon", 1.0, "--moving-average-decay", 0.9,
               "--label-smoothing", 0.1)


# The tiny runs' model: a BN ResNet a third the size of the default jianshu_resnet_50 (11.2M parameters, not
# 20.8M), whose training process takes 30 s instead of 42 (both halves, 18 steps at 32x32 on a 2-core AVX2 CPU,
# `time python scripts/train.py ...` with train_args): the suite starts some forty of them
TINY_MODEL = "resnet18"


def train_args(impl, records, run_dir, *extra, epochs=EPOCHS, export=False):
    """The train.py arguments of the tiny runs: TINY_MODEL at 32x32, batch 4, BN decay 0.9, slim's recipe, a
    checkpoint every 4 steps, and no export at the end unless ``export`` (the shared runs export;
    tests/test_export.py checks what they wrote). A ``--model`` in ``extra`` wins (argparse keeps the last)."""
    return ["--impl", impl, "--model", TINY_MODEL, "--data", records, "--image-size", 32, "--epochs", epochs,
            "--batch-size", BATCH,
            "--lr", 0.01, "--bn-decay", 0.9, *SLIM_RECIPE, "--no-flip", "--save-every", 4, "--run-dir", run_dir,
            "--quiet", *([] if export else ["--no-export"]), *extra]


def train_run(impl, records, run_dir, *extra, epochs=EPOCHS, export=False, env=None, **kwargs):
    return run_script("train.py", *train_args(impl, records, run_dir, *extra, epochs=epochs, export=export),
                      env={**os.environ, **QUIET_TF, **(env or {})}, **kwargs)


def script(name, *args):
    """The command line that runs scripts/``name`` with ``args`` in this interpreter."""
    return [sys.executable, str(REPO / "scripts" / name), *map(str, args)]


def kill_when(proc, ready, delay, what, limit=300):
    """SIGKILL ``proc`` ``delay`` seconds after ``ready()`` first holds; fail if it ended before."""
    deadline = time.time() + limit
    while time.time() < deadline and proc.poll() is None and not ready():
        time.sleep(0.01)
    time.sleep(delay)
    assert proc.poll() is None, f"the run ended before it could be killed ({what})"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def event_tags(folder):
    """The summary tags of the TensorBoard event files in ``folder``."""
    import tensorflow as tf
    tags = set()
    for path in Path(folder).glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags |= {v.tag for v in event.summary.value}
    return tags


def read_run(run_dir):
    """A run folder's ``run.json`` as the plain JSON it is (not through core.run_dir's record)."""
    return json.loads((Path(run_dir) / "run.json").read_text())


# --- parity: the same network in both halves ---------------------------------------------------------------
# A real Saver checkpoint of a legacy graph with random weights (BN statistics included, so nothing is at its
# trivial initial value) and its logits, to load into the modern model.

def random_value(name, shape, rng):
    """A plausible random value for a variable, by what its name says it is."""
    if name.endswith(("weights", "kernel")):
        fan_in = int(np.prod(shape[:-1]))
        return rng.normal(0, np.sqrt(2.0 / fan_in), shape)
    if name.endswith(("gamma", "moving_variance")):
        return rng.uniform(0.5, 1.5, shape)
    return rng.normal(0, 0.2, shape)  # biases, beta, moving_mean


def set_values(sess, values):
    """Assign ``values`` (``{variable: array}``) in one run of their initializers, the initial values fed.

    ``Variable.load`` adds an assign op per call and the session extends its graph each time: setting the 1,000
    variables of a ResNet-50 and its shadows so takes 80 s, this 1 s."""
    sess.run([v.initializer for v in values],
             {v.initializer.inputs[1]: np.asarray(x, dtype=v.dtype.base_dtype.as_numpy_dtype)
              for v, x in values.items()})


def random_values(variables, rng):
    """``{variable: plausible random value}`` (``random_value``) for ``variables``, in their order."""
    return {v: random_value(v.op.name, v.shape.as_list(), rng) for v in variables}


def legacy_run(name, images, num_classes, tmp_path, seed=0):
    """Build ``name`` in a fresh graph, set random weights, save a Saver checkpoint, and compute logits.

    Returns ``(checkpoint prefix, inference logits, training-mode logits, {variable name: shape})``.
    """
    import legacy
    from legacy.slim_compat import tf
    rng = np.random.default_rng(seed)
    logits = {}
    prefix = str(tmp_path / f"{name}.ckpt")
    for is_training in (False, True):
        graph = tf.Graph()
        with graph.as_default():
            x = tf.placeholder(tf.float32, images.shape)
            out, _ = legacy.build(name, x, num_classes, is_training=is_training)
            variables = tf.global_variables()
            with tf.Session(graph=graph) as sess:
                if not is_training:
                    sess.run(tf.global_variables_initializer())
                    set_values(sess, random_values(variables, rng))
                    tf.train.Saver().save(sess, prefix, write_meta_graph=False)
                    shapes = {v.op.name: v.shape.as_list() for v in variables}
                else:
                    tf.train.Saver().restore(sess, prefix)
                logits[is_training] = sess.run(out, {x: images})  # update ops not run: a pure forward pass
    return prefix, logits[False], logits[True], shapes


def rename_variable(prefix, old, new, out_prefix):
    """Copy checkpoint ``prefix`` to ``out_prefix`` with variable ``old`` saved as ``new``."""
    from legacy.slim_compat import tf
    reader = tf.train.load_checkpoint(prefix)
    graph = tf.Graph()
    with graph.as_default():
        copies = {new if n == old else n: tf.Variable(reader.get_tensor(n))
                  for n in reader.get_variable_to_shape_map()}
        with tf.Session(graph=graph) as sess:
            sess.run(tf.global_variables_initializer())
            tf.train.Saver(copies).save(sess, out_prefix, write_meta_graph=False)
    return out_prefix


def best_values(run_dir):
    """``{TF1 name: array}`` of a run's best checkpoint, whichever half wrote it."""
    from core import checkpoints
    from core.run_dir import Run
    return checkpoints.read(str(run_dir), Run.read(run_dir).model)[0]


def best_cross_entropy(run_dir, records):
    """``(mean cross-entropy, examples)`` of a modern or keras3 run's best.h5 on the validation split of
    ``records``, computed here in float64 from its logits (what a run records as val_loss when it trains without
    label smoothing or weight decay)."""
    from core.run_dir import Run
    from modern.weights import Predictor
    import flowio
    run = Run.read(run_dir)
    batches = flowio.dataset(records, "validation", run.image_size, 4).as_numpy_iterator()
    images, labels = (np.concatenate(a) for a in zip(*batches))
    logits = Predictor(run)(images).astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(len(labels)), labels])), len(labels)


def max_relative_error(got, reference):
    return float(np.max(np.abs(got - reference)) / np.max(np.abs(reference)))


# --- parity tolerances (docs/DESIGN.md §7, "Tolerances") ---------------------------------------------------
# One step from the same values: both halves run the same kernels (oneDNN's convolutions, FusedBatchNormV3) in
# the same order, and agree within 2e-6 of each array's largest value here (AMD EPYC), as on an Intel Xeon. Not
# a noise floor: the same half one ulp off, or on Eigen's kernels, moves the step of a near-zero BN beta at the
# nets' initial values by up to 4e-2 of 0.01 (bench/tolerance_floors.py), so the comparison holds the halves to
# the same arithmetic, which is what a one-step port check is for.
ONE_STEP = 1e-4

# Several steps: each bound is MARGIN times the larger of the comparison's floor and what another CPU showed.
# A floor is the largest self-difference of either half under changed arithmetic that leaves the maths equal
# (TF_ENABLE_ONEDNN_OPTS=0, TF_NUM_INTRAOP_THREADS=1, the starting values or fed gradients one ulp off), measured
# by `python bench/tolerance_floors.py` (TF 2.21, AMD EPYC Zen 5) in each test's own measure; the halves'
# own difference, and the known mistakes' (tf_keras's RMSprop, Keras SGD for TF1's Momentum, L2(wd) for
# slim's l2_regularizer(wd)), are in the note beside each.
MARGIN = 3
FLOORS = {
    # tests/test_recipe.py, jianshu_resnet_50 32x32, ten steps from warm weights (max over both recipes); halves
    # 1.2e-6 / 4.0e-4 / 3.0e-4; mistakes >= 9.0e-2 / 6.9e-1 / 6.2e-1 (Keras's RMSprop), >= 2.2 (Keras SGD)
    "recipe ten losses": 8.5e-5,
    "recipe ten weights": 7.8e-3,  # of max(largest value, 0.01): small BN betas and conv3 biases set it
    "recipe ten averages": 6.6e-3,
    # tests/test_checkpoints.py, ten steps from warm weights: halves 4.0e-6 and 1.4e-7; L2(wd) 0.86 and 0.72
    "jianshu_resnet_50 ten losses": 1.4e-4,
    # tests/test_optimizers.py's BN net, every optimizer x schedule (adadelta under oneDNN off sets it); halves
    # <= 1.6e-6; Keras's RMSprop 0.33, Keras SGD after the drops 0.19 (exponential), 0.56 (polynomial)
    "bn net ten losses": 1.7e-4,
    # tests/test_keras3_optimizers.py's BN net on JAX, one step: TF1's own gradients (its fused BN kernel's, which
    # TensorFlow's Keras 3 and tf_keras call too) are this far from a float64 computation of the same step at
    # conv1's BN gamma and beta (beneath global average pooling the BN gradient cancels), where JAX's float32
    # autodiff stays within 5.6e-6 of it; either backend against itself one ulp off <= 8.3e-6
    "bn net one step on jax": 3.5e-4,
    # tests/test_harness.py's tiny net (no BN), six steps: losses and saved weights; halves 1.0e-7 and 7.0e-8
    "harness six steps": 2.4e-7,
    # tests/test_keras3_train.py, keras3's three fit steps of resnet18 at 64x64 (rmsprop, averages): the "halves"
    # are JAX and TensorFlow (3.8e-5 / 4.6e-3 / 3.4e-3); each backend one ulp off sets the floors (TensorFlow on one
    # thread 6.0e-4 of the weights; oneDNN off and XLA's Eigen on one thread change nothing here)
    "keras3 three steps losses": 2.6e-5,
    "keras3 three steps weights": 4.4e-3,  # of max(largest value, 0.01): the stem conv and the first BN betas
    "keras3 three steps averages": 3.3e-3,
}
# issue 22: on an Intel Xeon with AMX the rmsprop recipe's averages ended 1.3e-3 apart (3.9e-5 of a beta's 0.030)
OTHER_CPU = {"recipe ten averages": 1.3e-3}


def tolerance(comparison):
    """The bound of a multi-step parity ``comparison`` (a key of FLOORS): MARGIN x max(floor, other CPU)."""
    return MARGIN * max(FLOORS[comparison], OTHER_CPU.get(comparison, 0.0))


# --- clones (tests/test_clones.py, tests/clone_steps.py) --------------------------------------------------

CLONE_LR = 0.1  # slim's sgd: a step is -lr x the gradient, so steps on two shares average to the clones' step


def clone_run(impl, model, batch_size):
    """The run record of one clone step: ``model`` at 32x32 on three classes, slim's plain ``sgd`` at a fixed
    CLONE_LR, BN decay 0.9 where the net has BN, no averages, no smoothing."""
    from core import models
    from core.run_dir import Hyper, Run
    bn_decay = 0.9 if models.spec(model).bn_decay else None
    return Run(folder="unused", impl=impl, model=model, num_classes=len(CLASSES), labels=CLASSES, image_size=32,
               hyper=Hyper(batch_size=batch_size, epochs=1, optimizer="sgd", lr=CLONE_LR,
                           learning_rate_decay_type="fixed", batch_norm_decay=bn_decay))


def free_ports(count):
    """``count`` TCP ports of 127.0.0.1 free a moment ago (a cluster's addresses in TF_CONFIG), below Linux's
    ephemeral range (``ip_local_port_range``, 32768 up here): a port the kernel hands out for binding to port 0
    is also one it hands out as the source port of an outgoing connection (a gRPC channel, a reachability probe),
    which could take it before the task meant to serve there binds it."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except OSError:  # not Linux
        low = 0
    rng = np.random.default_rng()  # unseeded: two test processes of pytest-xdist pick apart
    ports = []
    while len(ports) < count:
        # no room below the range (or not Linux): the kernel's choice
        port = int(rng.integers(max(1024, low - 12_000), low)) if low > 2048 else 0
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:  # in use (or lingering in TIME_WAIT): another
                continue
            port = s.getsockname()[1]
        if port not in ports:
            ports.append(port)
    return ports


def session_steps(run, cases, initial):
    """``{case: {name: array, "loss": loss}}``: one plain-Session step of ``run``'s legacy training graph on each
    of ``cases`` (``{case: (images, labels, clones)}``, model_deploy's clones on the CPU), every one from the
    weights ``initial["values"]``. Without them, the first case's graph's own initial weights become them (and
    are saved to ``initial["checkpoint"]``, a TF1 checkpoint prefix, when it is given)."""
    from legacy import train
    from legacy.slim_compat import tf
    results = {}
    for case, (images, labels, clones) in cases.items():
        graph = tf.Graph()
        with graph.as_default():
            _, _, _, train_op = train.training_graph(run, tf.constant(images), tf.constant(labels), decay_steps=1000,
                                                     deployment=train.deployment_config(clones, clone_on_cpu=True))
            variables = {v.op.name: v for v in tf.global_variables() if v.op.name != "global_step"}
            with tf.Session(graph=graph) as sess:
                sess.run(tf.global_variables_initializer())
                if "values" not in initial:
                    initial["values"] = sess.run(variables)
                    if "checkpoint" in initial:
                        tf.train.Saver(tf.model_variables()).save(sess, initial["checkpoint"], write_meta_graph=False)
                for name, variable in variables.items():
                    variable.load(initial["values"][name], sess)
                loss = sess.run(train_op)
                results[case] = {**sess.run(variables), "loss": loss}
    return results
