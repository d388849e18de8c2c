"""research/slim's eval preprocessing (``inception``, ``vgg``) through every path that feeds a model.

The reference is written here in numpy from research/slim's ``inception_preprocessing.preprocess_for_eval`` /
``vgg_preprocessing.preprocess_for_eval`` and TF1's ``resize_bilinear`` kernel (``half_pixel_centers=False``),
not from flowio's code; vgg's sides rounded with rint as research/slim's ``_smallest_size_at_least`` is today, or
truncated as in 2016 (tensorflow/models#3355), which a run recorded before the rint keeps. Checked on real JPEG
files of several sizes and aspect ratios: flowio's ``preprocess`` equals it; and end to end, tf_slim's own graph
on the reference pixels gives the logits and top-5 that a converted, exported run gives through use_model.py
(TensorFlow and LiteRT), the SavedModel (encoded bytes) and the LiteRT model on decoded pixels.
"""

import json

import numpy as np
import pytest
import tensorflow as tf2
from PIL import Image

import flowio
from core import lite
from core.run_dir import Run
from helpers import max_relative_error, pattern, random_values, read_run, run_script, save, set_values
from legacy.slim_compat import slim, tf, tf1_hashing

SIZE = 64
SHAPES = [(37, 53), (120, 80), (64, 64), (90, 141)]  # (height, width): landscape, portrait, square, odd
VGG_MEANS = np.array([123.68, 116.78, 103.94], np.float32)


def tf1_resize_bilinear(image, height, width):
    """TF1's ResizeBilinear, align_corners=False, half_pixel_centers=False: output pixel y samples the input at
    y * in / out (float32), between floor and floor + 1 (clamped), lerped along x, then y."""
    def axis(out, size):
        position = np.arange(out, dtype=np.float32) * np.float32(size / out)
        low = np.floor(position).astype(int)
        return low, np.minimum(low + 1, size - 1), (position - low).astype(np.float32)[:, None]
    (y0, y1, dy), (x0, x1, dx) = axis(height, image.shape[0]), axis(width, image.shape[1])
    image = image.astype(np.float32)
    top = image[y0][:, x0] + (image[y0][:, x1] - image[y0][:, x0]) * dx[None, :, :]
    bottom = image[y1][:, x0] + (image[y1][:, x1] - image[y1][:, x0]) * dx[None, :, :]
    return top + (bottom - top) * dy[:, :, None]


def inception_reference(image, size):
    """convert_image_dtype, central_crop(0.875), resize_bilinear, (x - 0.5) * 2."""
    image = image.astype(np.float32) * np.float32(1 / 255)
    h, w = image.shape[:2]
    top, left = int((h - h * 0.875) / 2), int((w - w * 0.875) / 2)
    image = image[top:h - top, left:w - left]
    return (tf1_resize_bilinear(image, size, size) - 0.5) * 2


def vgg_reference(image, size, side, rounding="rint"):
    """_aspect_preserving_resize(side) (float32 scale; sides rint, or truncated as 2016 slim's), _central_crop, minus
    the means."""
    h, w = image.shape[:2]
    scale = np.float32(side) / np.float32(min(h, w))
    exact = np.float32(h) * scale, np.float32(w) * scale
    new_h, new_w = (int(np.rint(n) if rounding == "rint" else n) for n in exact)
    image = tf1_resize_bilinear(image, new_h, new_w)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return image[top:top + size, left:left + size] - VGG_MEANS


VGG_SIDE = round(SIZE * 8 / 7)  # the project's rule below research/slim's sizes (224..256, where it is 256)
REFERENCE = {"inception": lambda image: inception_reference(image, SIZE),
             "vgg": lambda image: vgg_reference(image, SIZE, VGG_SIDE)}


def old_vgg_record(size, side):
    """A vgg ``preprocessing`` record as run.json held it before the rint: no ``rounding``, its own smaller side."""
    record = json.loads(json.dumps(flowio.preprocessing_spec(size, recipe="vgg")))
    del record["resize"]["rounding"]
    record["resize"]["smaller_side"], record["train_augmentation"]["smaller_side"] = side, [side, 2 * side]
    return record


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """JPEG files of SHAPES in a folder, and their decoded pixels (Pillow, what flowio's decoders equal)."""
    folder = tmp_path_factory.mktemp("photos")
    paths = [save(folder / f"{h}x{w}.jpg", Image.fromarray(pattern(h, w, seed)), "JPEG", quality=90)
             for seed, (h, w) in enumerate(SHAPES)]
    return [str(p) for p in paths], [flowio.load_image(str(p)) for p in paths]


@pytest.mark.parametrize("recipe", ["inception", "vgg"])
def test_flowio_preprocess_is_research_slims_eval_preprocessing(recipe, photos):
    _, images = photos
    for image in images:
        ours = flowio.preprocess(image, SIZE, recipe).numpy()
        reference = REFERENCE[recipe](image)
        assert ours.shape == reference.shape == (SIZE, SIZE, 3)
        np.testing.assert_allclose(ours, reference, atol=1e-5 * np.abs(reference).max())
    # the convention matters: TF2's tf.image.resize (half-pixel centres) gives another image; tf.compat.v1's
    # tf.image.resize (resize_images_v1) keeps TF1's, so a port that swaps compat.v1 for TF2 changes the pixels
    image = tf.image.central_crop(images[0] * (1 / 255), 0.875)
    expected = (REFERENCE["inception"](images[0]) + 1) / 2
    np.testing.assert_allclose(tf.image.resize(image, [SIZE, SIZE]).numpy(), expected, atol=1e-6)
    assert np.abs(tf2.image.resize(image, [SIZE, SIZE]).numpy() - expected).max() > 1e-2


def test_vgg_rounds_its_sides_as_research_slim_does_now_and_takes_256_at_slims_sizes():
    from flowio.recipes.vgg import aspect_preserving_resize
    # tensorflow/models#3355's case: float32(224 / 1080) * 1080 is 223.99998, which truncation made 223
    image = tf2.zeros([1080, 1920, 3])
    assert aspect_preserving_resize(image, 224).shape[:2] == (224, 398)
    assert aspect_preserving_resize(image, 224, "truncate").shape[:2] == (223, 398)
    sides = {size: flowio.preprocessing_spec(size, recipe="vgg") for size in (32, 64, 223, 224, 231, 256, 257, 262)}
    assert {size: record["resize"]["smaller_side"] for size, record in sides.items()} == {
        32: 37, 64: 73, 223: 255, 224: 256, 231: 256, 256: 256, 257: 294, 262: 299}
    assert sides[231]["train_augmentation"]["smaller_side"] == [256, 512]  # slim's 256..512
    assert sides[64]["train_augmentation"]["smaller_side"] == [73, 146]
    assert {record["resize"]["rounding"] for record in sides.values()} == {"rint"}


def test_a_vgg_run_recorded_before_the_rint_keeps_its_truncated_sides_and_its_own_smaller_side(photos):
    """A record without ``rounding`` truncates, and its ``smaller_side`` is used whatever this version would pick;
    the 37x53 photo shows why it matters: 53 · 73 / 37 = 104.6 is 104 truncated, 105 rounded, another crop."""
    _, images = photos
    for side in (VGG_SIDE, 80):
        record = old_vgg_record(SIZE, side)
        for image in images:
            reference = vgg_reference(image, SIZE, side, rounding="truncate")
            ours = flowio.preprocess(image, SIZE, record).numpy()
            np.testing.assert_allclose(ours, reference, atol=1e-5 * np.abs(reference).max())
    old, new = old_vgg_record(SIZE, VGG_SIDE), "vgg"
    truncated, rounded = (flowio.preprocess(images[0], SIZE, record).numpy() for record in (old, new))
    assert np.abs(truncated - rounded).max() > 10


# --- end to end: tf_slim's graph against a converted, exported run -------------------------------------------

def slim_reference(pixels, prefix):
    """tf_slim's own resnet_v2_50 (10 classes, random weights) saved at ``prefix``; its logits on ``pixels``."""
    from tf_slim.nets import resnet_utils, resnet_v2
    graph = tf.Graph()
    with graph.as_default(), tf1_hashing():
        x = tf.placeholder(tf.float32, [None, SIZE, SIZE, 3])
        with slim.arg_scope(resnet_utils.resnet_arg_scope()):
            logits, _ = resnet_v2.resnet_v2_50(x, 10, is_training=False)
        with tf.Session(graph=graph) as sess:
            sess.run(tf.global_variables_initializer())
            values = random_values(tf.global_variables(), np.random.default_rng(0))
            set_values(sess, values)
            # the head scaled to logits of spread 3, so that the softmax's top 5 are not ties at 0 and 1
            spread = sess.run(logits, {x: pixels}).std()
            set_values(sess, {v: value * 3 / spread for v, value in values.items() if "/logits/" in v.op.name})
            tf.train.Saver().save(sess, prefix, write_meta_graph=False)
            return sess.run(logits, {x: pixels})[:, 0, 0, :]


@pytest.mark.slow
def test_a_converted_slim_net_predicts_as_tf_slim_did_on_its_recipes_pixels(photos, tmp_path):
    """inception (resnet_v2_50's here: research/slim's README evaluates its resnet_v2 checkpoints with it at 299,
    though its preprocessing factory maps resnet_v2 to vgg) end to end; vgg's exported paths are the next test's."""
    paths, images = photos
    recipe = "inception"
    reference = slim_reference(np.stack([REFERENCE[recipe](image) for image in images]), str(tmp_path / "slim.ckpt"))
    assert reference.std() > 0.1
    out = tmp_path / "run"
    proc = run_script("convert_checkpoint.py", tmp_path / "slim.ckpt", "--out", out, "--image-size", SIZE)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert read_run(out)["preprocessing"]["recipe"] == recipe  # the net's own, from the model table
    proc = run_script("export.py", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    top5 = np.argsort(-reference, axis=1, kind="stable")[:, :5]
    # use_model.py on LiteRT (its TensorFlow path is the half's Predictor, checked below in this process)
    proc = run_script("use_model.py", *paths, "--run-dir", out, "--backend", "litert", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout)["results"]
    assert [[int(p["class"]) for p in r["predictions"]] for r in results] == top5.tolist()
    run = Run.read(str(out))
    from modern.weights import Predictor  # use_model's TensorFlow path: the half's Predictor on flowio's pixels
    pixels = np.stack([flowio.preprocess(image, SIZE, recipe).numpy() for image in images])
    assert max_relative_error(Predictor(run)(pixels), reference) <= 1e-4
    for image, expected in zip(images, reference):  # LiteRT: one image size per batch
        litert = lite.LitePredictor(lite.model_path(run)).logits(image[None])
        assert max_relative_error(litert[0], expected) <= 1e-4
    serving = tf2.saved_model.load(str(out / "saved_model")).signatures["serving_default"]
    encoded = tf2.constant([open(p, "rb").read() for p in paths])
    assert max_relative_error(serving(images=encoded)["logits"].numpy(), reference) <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("rounding", ["rint", "truncate"])
def test_the_exports_run_the_vgg_recipe_as_flowio_does(rounding, photos, tmp_path):
    """vgg through modern.export's two paths, on a small model (vgg13 at 64, random weights): the LiteRT model on
    decoded pixels and the SavedModel on encoded bytes give the model's logits on flowio's pixels; a run recorded
    before the rint (``truncate``) is exported with its truncated sides."""
    import modern
    from core.run_dir import MODERN_BEST
    from modern.export import export
    paths, images = photos
    run = Run.in_memory("modern", "vgg13", 10, SIZE)
    run.folder = str(tmp_path)
    run.preprocessing = (flowio.preprocessing_spec(SIZE, flip=False, recipe="vgg") if rounding == "rint" else
                         old_vgg_record(SIZE, VGG_SIDE))
    model = modern.build("vgg13", 10, input_shape=(SIZE, SIZE, 3))
    model.save_weights(run.path(MODERN_BEST))
    run.save()
    export(run)
    expected = model(np.stack([vgg_reference(image, SIZE, VGG_SIDE, rounding) for image in images])).numpy()
    assert expected.std() > 0.1
    for image, reference in zip(images, expected):
        assert max_relative_error(lite.LitePredictor(lite.model_path(run)).logits(image[None])[0], reference) <= 1e-4
    serving = tf2.saved_model.load(str(tmp_path / "saved_model")).signatures["serving_default"]
    encoded = tf2.constant([open(p, "rb").read() for p in paths])
    assert max_relative_error(serving(images=encoded)["logits"].numpy(), expected) <= 1e-4


def test_each_recipe_is_one_record_in_its_own_module_named_as_the_model_table_names_it():
    """flowio.recipes: one module per recipe of core.models.RECIPES, holding its whole record (the run.json spec,
    evaluation, training's resize and scaling); the reader runs whichever record a run names."""
    from core import models
    from flowio import recipes
    image = pattern(40, 56, 0)
    assert tuple(recipes.RECIPES) == models.RECIPES
    for name, recipe in recipes.RECIPES.items():
        assert getattr(recipes, name).RECIPE is recipe  # the module flowio.recipes.<name>
        record = recipe.spec(32, True)
        assert record["recipe"] == name and recipes.of(record) is recipe
        direct = recipe.evaluate(tf2.cast(image, tf2.float32), 32, record)
        np.testing.assert_array_equal(flowio.preprocess(image, 32, record).numpy(), direct.numpy())
        assert flowio.augment(image, 32, tf2.constant([1, 2]), recipe=record).shape == (32, 32, 3)
