"""A frozen inference graph the TF1 way: research/slim's ``export_inference_graph.py`` and ``freeze_graph``
(twin: modern/freeze.py).

What a slim codebase ships to its mobile and C++ users is one ``GraphDef`` file (``frozen.pb``):

* ``export_inference_graph.py`` builds the network in inference mode on a placeholder named ``input``
  (float32 ``[batch_size, S, S, 3]``, the batch ``None`` unless fixed: already preprocessed pixels, no
  decoding or resizing inside) and writes the graph without weights; the classifier's probabilities are slim's
  ``slim.softmax(logits, scope="Predictions")`` under the model's scope, so the output tensor is
  ``<scope>/Predictions/Reshape_1`` (``InceptionV3/Predictions/Reshape_1`` in slim's own example);
* ``freeze_graph`` restores a checkpoint into that graph and folds every variable into a constant
  (``tf.compat.v1.graph_util.convert_variables_to_constants``), keeping only what the output nodes need;
  a variable's constant keeps the variable's name (``lenet5/conv1/weights``);
* a user runs it by name: ``tf.import_graph_def`` into a graph of its own and ``sess.run("<output>:0",
  {"input:0": images})`` (label_image's ``--input_layer`` / ``--output_layer``).

``freeze`` does both steps in one process (what most forks of the two scripts ended up doing) and returns the
tensor names; ``FrozenGraph`` runs the ``.pb``. A frozen graph carries no signature: the names are the contract.
The logits are whatever node the model's head ends in (``lenet5/logits/add``, ``vgg13/logits/BiasAdd``),
returned by ``freeze``: slim users found them with ``summarize_graph``.

Sections, in the same order as the twin: the inference graph, weights, writing, running.
"""

import os

import legacy
from core import files, models
from legacy.slim_compat import slim, tf, tf1_hashing

INPUT = "input"  # export_inference_graph's placeholder
PREDICTIONS = "Predictions"  # slim.softmax's scope in slim's nets: "<scope>/Predictions/Reshape_1"


# --- the inference graph ------------------------------------------------------------------------------------

def inference_graph(name, num_classes, image_size=None, batch_size=None):
    """export_inference_graph: ``(graph, input, {"logits": tensor, "predictions": tensor})`` of model ``name``
    in inference mode on a float32 placeholder named ``input``, ``[batch_size, S, S, 3]``."""
    size = image_size or models.default_input_size(name)
    scope = models.scope(name)
    graph = tf.Graph()
    with graph.as_default(), tf1_hashing():
        images = tf.placeholder(tf.float32, [batch_size, size, size, 3], name=INPUT)
        logits, _ = legacy.build(name, images, num_classes, is_training=False)
        try:  # tf_slim's own nets (inception) already end in slim's Predictions
            predictions = graph.get_tensor_by_name(f"{scope}/{PREDICTIONS}/Reshape_1:0")
        except KeyError:
            with tf.name_scope(scope + "/"):  # re-enter the model's name scope itself, not "<scope>_1"
                predictions = slim.softmax(logits, scope=PREDICTIONS)
    return graph, images, {"logits": logits, "predictions": predictions}


# --- weights ------------------------------------------------------------------------------------------------

def frozen_graph_def(graph, checkpoint, outputs):
    """freeze_graph: the ``GraphDef`` of ``graph`` with its variables restored from ``checkpoint`` (a Saver prefix,
    or the folder of one) and folded into constants; only what ``outputs`` (tensors) need is kept."""
    if os.path.isdir(checkpoint):
        checkpoint = tf.train.latest_checkpoint(checkpoint)
    with graph.as_default():
        saver = tf.train.Saver(tf.global_variables())  # by name; the checkpoint's other variables are left
    with tf.Session(graph=graph) as sess:
        saver.restore(sess, checkpoint)
        graph_def = graph.as_graph_def()
        for node in graph_def.node:  # freeze_graph's clear_devices
            node.device = ""
        return tf.graph_util.convert_variables_to_constants(
            sess, graph_def, sorted({t.op.name for t in outputs.values()}))


# --- writing ------------------------------------------------------------------------------------------------

def freeze(name, num_classes, checkpoint, output_file, image_size=None, batch_size=None):
    """Write model ``name``'s frozen inference graph with the weights of ``checkpoint`` to ``output_file``
    (binary ``GraphDef``, under a temporary name, then renamed); return ``{"input": name, "logits": name,
    "predictions": name}``, the tensor names a user feeds and fetches."""
    graph, images, outputs = inference_graph(name, num_classes, image_size, batch_size)
    graph_def = frozen_graph_def(graph, str(checkpoint), outputs)
    with files.atomic(os.path.abspath(output_file)) as tmp, tf.io.gfile.GFile(tmp, "wb") as f:
        f.write(graph_def.SerializeToString())
    return {"input": images.name, **{key: tensor.name for key, tensor in outputs.items()}}


# --- running ------------------------------------------------------------------------------------------------

class FrozenGraph:
    """A frozen ``.pb`` imported into its own graph and Session: ``frozen(images) -> {key: array}``.

    ``outputs`` maps keys to tensor names (``freeze``'s answer); by default the one ``.../Predictions/Reshape_1``
    of the graph. Imported with ``name=""`` so the tensors keep the names they were frozen under.
    """

    def __init__(self, path, outputs=None):
        graph_def = tf.GraphDef()
        with tf.io.gfile.GFile(str(path), "rb") as f:
            graph_def.ParseFromString(f.read())
        self.graph = tf.Graph()
        with self.graph.as_default():
            tf.import_graph_def(graph_def, name="")
        if outputs is None:
            found = [n.name for n in graph_def.node if n.name.endswith(f"/{PREDICTIONS}/Reshape_1")]
            if len(found) != 1:
                raise ValueError(f"{path}: no single .../{PREDICTIONS}/Reshape_1 node ({found}); pass outputs")
            outputs = {"predictions": found[0] + ":0"}
        self.input = self.graph.get_tensor_by_name(INPUT + ":0")
        self.outputs = {key: self.graph.get_tensor_by_name(tensor) for key, tensor in outputs.items()}
        self.sess = tf.Session(graph=self.graph)

    def __call__(self, images):
        return self.sess.run(self.outputs, {self.input: images})

    def close(self):
        self.sess.close()
