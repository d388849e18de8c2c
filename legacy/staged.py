"""The staged path of TensorFlow's model-mapping guide: the tf_slim model, unchanged, run eagerly inside a Keras
layer and trained by ``fit`` (no twin: it mirrors legacy/train.py's ``training_graph`` — the same
``legacy.build`` — and modern/train.py's ``compiled_model`` — the same ``compile`` / ``fit``).

Step one of a port that cannot rewrite every model at once: keep the slim code, drop the Session.

* ``SlimLayer.call`` is decorated with ``tf.compat.v1.keras.utils.track_tf1_style_variables`` and calls
  ``legacy.build`` (which opens the model's ``tf.compat.v1.variable_scope``). The decorator gives the layer every
  variable ``tf.compat.v1.get_variable`` and the slim / ``tf.compat.v1.layers`` layers create, under their TF1
  names (``lenet5/conv1/weights``, ``resnet18/stem/bn/moving_mean``), reuses them on every later call (the shim
  always auto-reuses), and puts the ``weights_regularizer`` terms into ``layer.losses``, which ``fit`` adds
  to the loss as legacy added the REGULARIZATION_LOSSES collection.
* Keras's ``training`` argument becomes slim's ``is_training`` (a Python bool: slim's layers take no
  tensor). Under ``fit`` the BN moving averages are updated where they are computed (eager and ``tf.function``
  run stateful ops; no UPDATE_OPS collection to depend on).
* ``keras`` here is ``tf.compat.v1.keras``, which is tf_keras's v1 API (Keras 2) only because
  ``legacy.slim_compat`` set ``TF_USE_LEGACY_KERAS=1`` before its first access: under Keras 3 it raises, and
  Keras 3 has no ``track_tf1_style_variables``. Its ``Layer`` and ``Model`` are tf_keras's own classes.
* Its checkpoint is a TF1 name-based one (``tf.compat.v1.train.Saver`` with an explicit ``var_list`` works
  eagerly), so it loads into the legacy graph by Saver and into the native modern model by name
  (``modern.naming``), the step that ends the port.

Sections: the layer, the model, checkpoints.
"""

import os

import legacy
from core import checkpoints, models
from legacy.slim_compat import tf

keras = tf.keras  # tf.compat.v1.keras: tf_keras's v1 API, Keras 2 (see the docstring)


# --- the layer ----------------------------------------------------------------------------------------------

class SlimLayer(keras.layers.Layer):
    """``legacy.build(model_name, images, ...)``'s logits as a Keras layer, its variables tracked by TF1 name."""

    def __init__(self, model_name, num_classes, weight_decay=None, batch_norm_decay=None, **kwargs):
        super().__init__(**kwargs)
        self.model_name, self.num_classes = model_name, num_classes
        self.weight_decay, self.batch_norm_decay = weight_decay, batch_norm_decay

    @tf.keras.utils.track_tf1_style_variables
    def call(self, images, training=None):
        logits, _ = legacy.build(self.model_name, images, self.num_classes, is_training=bool(training),
                                 weight_decay=self.weight_decay, batch_norm_decay=self.batch_norm_decay)
        return logits

    def get_config(self):
        return {**super().get_config(), "model_name": self.model_name, "num_classes": self.num_classes,
                "weight_decay": self.weight_decay, "batch_norm_decay": self.batch_norm_decay}


# --- the model ----------------------------------------------------------------------------------------------

def staged_model(name, num_classes, image_size=None, weight_decay=None, batch_norm_decay=None):
    """A functional Keras model ``images [N, S, S, 3] -> logits`` around ``SlimLayer``; its variables exist once it
    is built (the functional call runs ``legacy.build`` once, symbolically). Compile and ``fit`` it as any."""
    size = image_size or models.default_input_size(name)
    images = keras.Input(shape=(size, size, 3), name="images")
    layer = SlimLayer(name, num_classes, weight_decay, batch_norm_decay, name="slim")
    return keras.Model(images, layer(images), name=models.scope(name))


# --- checkpoints --------------------------------------------------------------------------------------------

def tf1_variables(model):
    """``{TF1 variable name: variable}`` of the staged model (``lenet5/conv1/weights``): the names legacy's graph
    gives the same variables."""
    names = {}
    for variable in model.variables:
        name = variable.name.split(":")[0]
        if name in names:
            raise ValueError(f"two variables named {name}")
        names[name] = variable
    return names


def save(model, prefix):
    """Write the model's variables as a TF1 name-based checkpoint at ``prefix`` (Saver, eagerly); return the prefix
    (what ``tf.train.Saver.restore``, ``core.checkpoints.read`` and ``modern.naming.load`` read)."""
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    return tf.train.Saver(tf1_variables(model)).save(None, str(prefix), write_meta_graph=False)


def load(model, checkpoint, exclude_scopes=()):
    """Assign the model's variables by TF1 name from ``checkpoint`` (a Saver prefix or its folder, a modern
    ``.h5``, a run directory); missing, unexpected or mis-shaped names raise a UserError listing them. Returns the
    names assigned."""
    wanted = tf1_variables(model)
    values, source = checkpoints.read(str(checkpoint), model.name)
    chosen = checkpoints.select({n: v.shape.as_list() for n, v in wanted.items()}, values, model.name,
                                exclude_scopes, source)
    for name, value in chosen.items():
        wanted[name].assign(value)
    return sorted(chosen)
