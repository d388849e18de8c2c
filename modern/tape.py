"""The third way to train: a hand-written ``tf.GradientTape`` step in a ``tf.function`` (no twin: it mirrors
modern/train.py's ``compile`` / ``fit``, whose training step it writes out, and legacy/train.py's train op).

Article 004 trains its VGG-13 so. What ``fit`` does for free must be done by hand, or the step is another one:

* ``model(images, training=True)``: BN on batch statistics with its moving averages updated (Keras updates them
  inside the call; nothing like UPDATE_OPS to depend on), dropout active;
* the loss is the compiled loss (here ``loss_fn``, e.g. ``SparseCategoricalCrossentropy(from_logits=True)``:
  the mean over the batch) plus ``sum(model.losses)``, the layers' ``kernel_regularizer`` terms — read inside the
  tape, since they are computed from the weights when read; legacy added the REGULARIZATION_LOSSES collection;
* gradients of that total over ``model.trainable_variables`` (BN's moving statistics are not trainable), applied
  by the optimizer, which counts its ``iterations`` (a learning-rate schedule's step) as ``fit``'s does;
* under a ``mixed_float16`` policy ``compile`` wraps the optimizer in a ``LossScaleOptimizer``: the loss is scaled
  before the gradients and they are unscaled after, as ``fit`` does through ``optimizer.minimize``.

``train_step``'s step is a ``tf.function``: traced once per model / optimizer / loss and input signature, then
run as a graph; unlike ``fit`` it runs no callbacks and syncs no metrics between two steps (``train`` below is the
whole loop).

Sections: the step, the loop.
"""

import tensorflow as tf
import tf_keras as keras


# --- the step -----------------------------------------------------------------------------------------------

def train_step(model, optimizer, loss_fn, images, labels):
    """One training step of ``model`` on a batch: the same update as ``fit``'s; returns the loss ``fit`` reports
    (the data loss plus the regularization losses).

    The optimizer's slots are made here, eagerly, before the ``tf.function``: a ``tf.function`` lets only its
    first trace create variables, so a second model or optimizer through the same function (a second run in one
    process, a test) raised "tf.function only supports singleton tf.Variables created on the first call" from
    inside ``apply_gradients``. ``fit`` has no such problem: each model makes its own train function.
    """
    optimizer.build(model.trainable_variables)  # nothing once built
    return compiled_step(model, optimizer, loss_fn, images, labels)


@tf.function
def compiled_step(model, optimizer, loss_fn, images, labels):
    """``train_step``'s graph: traced once per model / optimizer / loss and input signature."""
    scaling = isinstance(optimizer, keras.mixed_precision.LossScaleOptimizer)
    variables = model.trainable_variables
    with tf.GradientTape() as tape:
        logits = model(images, training=True)
        loss = loss_fn(labels, logits)
        if model.losses:  # read inside the tape: the regularizers are computed from the weights here
            loss += tf.add_n(model.losses)
        scaled = optimizer.get_scaled_loss(loss) if scaling else loss
    gradients = tape.gradient(scaled, variables)
    if scaling:
        gradients = optimizer.get_unscaled_gradients(gradients)
    optimizer.apply_gradients(zip(gradients, variables))
    return loss


# --- the loop -----------------------------------------------------------------------------------------------

def train(model, optimizer, loss_fn, batches):
    """``train_step`` over ``batches`` (an iterable of ``(images, labels)``, e.g. a ``tf.data.Dataset``); returns
    the losses as floats. Callbacks, metrics and checkpoints are the caller's: ``fit`` is where they come free."""
    return [float(train_step(model, optimizer, loss_fn, images, labels)) for images, labels in batches]
