"""research/slim's training recipe in Keras 3 (docs/DESIGN.md §10), on the TensorFlow and the JAX backend: the
schedule of the global step and the optimizer a ``core.run_dir.Hyper`` names, computing TF1's update exactly
(tf_keras's: modern/optimizers.py; TF1's: legacy/optimizers.py).

Keras 3's class is used where its update is TF1's (Adam, Adagrad with epsilon 0, Adadelta, Ftrl); where it is not,
a small subclass says what differs, written as Keras 3's own optimizers are (``update_step`` in ``keras.ops`` on
``self.assign``, slots from ``add_optimizer_variables``), so that one class runs eagerly, in a ``tf.function``
and in JAX's ``stateless_apply`` under ``jit``. The schedule and the arguments are TF1's in Keras's names
(``core.recipe.keras_optimizer``, shared with modern/).

The rest of slim's recipe is not the optimizer's here, unlike tf_keras's:

* ``--trainable-scopes`` (TF1's ``var_list``): the other variables are marked ``variable.trainable = False``
  (the variable's flag, not the layer's: a layer's ``trainable = False`` switches Keras 3's BatchNormalization
  to inference mode, which slim's frozen layers are not in). Keras 3's trainers then take no gradient of them
  and the optimizer makes no slot for them, as TF1's.
* ``--moving-average-decay`` (TF1's ``ExponentialMovingAverage(decay, num_updates=global_step)``):
  ``average_decay`` and ``moving_average`` below, pure functions of values that the train step applies after the
  update. Keras 3's own ``use_ema`` has a fixed decay (no warm-up) and averages the trainable variables only;
  slim's averages BN's moving statistics too, which on JAX are not the optimizer's state but the train step's.

tests/test_keras3_optimizers.py holds each class, on each backend, to TF1's in a Session.

Sections, in the same order as modern/optimizers.py: schedules, optimizers (and the moving averages).
"""

import keras
from keras import ops

from core import recipe

# --- schedules -------------------------------------------------------------------------------------------

def schedule(hyper, decay_steps):
    """``hyper.lr`` decayed by ``hyper.learning_rate_decay_type`` every ``decay_steps`` global steps, as Keras 3
    schedules (``core.recipe.keras_schedule``, which modern/ shares): a float (fixed) or a ``LearningRateSchedule``
    of the optimizer's ``iterations`` (TF1's ``exponential_decay(staircase=True)``, ``polynomial_decay(power=1,
    cycle=False)``)."""
    return recipe.keras_schedule(keras.optimizers.schedules, hyper, decay_steps)


# --- optimizers ------------------------------------------------------------------------------------------

register = keras.saving.register_keras_serializable(package="keras3")


@register
class Momentum(keras.optimizers.SGD):
    """TF1's MomentumOptimizer: ``a = m*a + g; w -= lr*a`` (the slot holds ``a``); at momentum 0 Keras 3's own SGD,
    which is TF1's GradientDescentOptimizer (``w -= lr*g``, no slot).

    Keras 3's SGD computes ``v = m*v - lr*g; w += v``, as tf_keras's: the same only while lr is constant
    (v = -lr*a); after a drop from lr0 to lr1 the k-th step moves by ``m^k * (lr0 - lr1) * a0`` more than TF1's
    (modern/optimizers.py's ``Momentum`` has the figures).
    """

    def update_step(self, gradient, variable, learning_rate):
        """TF1's ApplyMomentum kernel (use_nesterov=False)."""
        if not self.momentum:
            return super().update_step(gradient, variable, learning_rate)
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        accumulator = self.momentums[self._get_variable_index(variable)]
        self.assign(accumulator, ops.add(ops.multiply(accumulator, ops.cast(self.momentum, variable.dtype)),
                                         gradient))
        self.assign_sub(variable, ops.multiply(accumulator, lr))


@register
class RMSProp(keras.optimizers.RMSprop):
    """TF1's RMSPropOptimizer: its mean square (slot ``rms``) starts at 1, Keras 3's ``velocity`` at 0.

    The update is otherwise the same, ``ms = rho*ms + (1-rho)*g^2; mom = momentum*mom + lr*g/sqrt(ms + eps);
    w -= mom``; at momentum 0 Keras 3 keeps no ``mom`` slot and moves by the same ``lr*g/sqrt(ms + eps)``. A
    velocity started at 0 makes the first step 1.35x to 1.38x TF1's at slim's rho 0.9 and epsilon 1.0.
    """

    def add_optimizer_variables(self, trainable_variables, name, initializer="zeros"):
        """Keras 3's, with TF1's initial mean square of 1."""
        return super().add_optimizer_variables(trainable_variables, name,
                                               "ones" if name == "velocity" else initializer)


# optimizer name -> its class: Keras 3's Adam, Adagrad, Adadelta and Ftrl compute TF1's update as they are, with
# core.recipe's KERAS_ARGUMENTS (TF1's, in Keras's names, which modern/ shares: the decays rounded to float32,
# Adagrad's epsilon 0)
CLASSES = {"adadelta": keras.optimizers.Adadelta, "adagrad": keras.optimizers.Adagrad, "adam": keras.optimizers.Adam,
           "ftrl": keras.optimizers.Ftrl, "momentum": Momentum, "rmsprop": RMSProp, "sgd": Momentum}


def optimizer(hyper, decay_steps):
    """The optimizer ``hyper.optimizer`` names, on ``schedule(hyper, decay_steps)``, with the Hyper's parameters
    (``core.recipe.keras_optimizer``: slim's flags; clipnorm as slim's ``create_train_op``, Keras 3's
    ``_clip_by_norm`` being ``tf.clip_by_norm``'s formula)."""
    return recipe.keras_optimizer(CLASSES, keras.optimizers.schedules, hyper, decay_steps)


def average_decay(decay, step):
    """The decay TF1's ``ExponentialMovingAverage(decay, num_updates=step)`` applies at global step ``step`` (the
    step just taken, counted): ``min(decay, (1 + step) / (10 + step))``, in float32 as TF1's."""
    step = ops.cast(step, "float32")
    return ops.minimum(ops.cast(decay, "float32"), ops.divide(1.0 + step, 10.0 + step))


def moving_average(average, value, decay):
    """TF1's ``assign_moving_average`` (zero_debias off) as a value: ``average - (average - value) * (1 - decay)``."""
    return ops.subtract(average, ops.multiply(ops.subtract(average, ops.cast(value, average.dtype)),
                                              ops.cast(1.0 - decay, average.dtype)))
