"""research/slim's training recipe in Keras 3 (docs/DESIGN.md §10), on the TensorFlow and the JAX backend: the
schedule of the global step and the optimizer a ``core.run_dir.Hyper`` names, computing TF1's update exactly
(tf_keras's: modern/optimizers.py; TF1's: legacy/optimizers.py).

Keras 3's class is used where its update is TF1's (Adam, Adagrad with epsilon 0, Adadelta, Ftrl); where it is not,
a small subclass says what differs, written as Keras 3's own optimizers are (``update_step`` in ``keras.ops`` on
``self.assign``, slots from ``add_optimizer_variables``), so that one class runs eagerly, in a ``tf.function``
and in JAX's ``stateless_apply`` under ``jit``. The arguments are TF1's (the decays rounded to float32: ``f32``).

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

import numpy as np
import keras
from keras import ops

# --- schedules -------------------------------------------------------------------------------------------

# (hyper, decay_steps) -> the rate, or a schedule of the optimizer's ``iterations`` (the steps before this one:
# TF1's global step while ``iterations`` is restored with the run)
SCHEDULES = {
    "exponential": lambda h, n: keras.optimizers.schedules.ExponentialDecay(
        h.lr, n, h.learning_rate_decay_factor, staircase=True),
    "fixed": lambda h, n: h.lr,
    "polynomial": lambda h, n: keras.optimizers.schedules.PolynomialDecay(
        h.lr, n, h.end_learning_rate, power=1.0, cycle=False),
}


def schedule(hyper, decay_steps):
    """``hyper.lr`` decayed by ``hyper.learning_rate_decay_type`` every ``decay_steps`` global steps: a float
    (fixed) or a ``LearningRateSchedule`` (TF1's ``exponential_decay(staircase=True)``, ``polynomial_decay(power=1,
    cycle=False)``)."""
    if hyper.learning_rate_decay_type not in SCHEDULES:
        raise ValueError(f"learning_rate_decay_type [{hyper.learning_rate_decay_type}] was not recognized")
    return SCHEDULES[hyper.learning_rate_decay_type](hyper, decay_steps)


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


def f32(decay):
    """``decay`` rounded to float32, as TF1's kernels receive it: they compute ``1 - decay`` in float32 from the
    rounded value, Keras in float64 from the decimal (1 - 0.999 is 0.001 in Keras, 0.00099998713 in TF1: Adam's
    ``v`` 1.3e-5 relative off TF1's at every step). Given the rounded value, Keras's ``1 - decay`` is TF1's."""
    return float(np.float32(decay))


# optimizer name -> (class, its arguments from the Hyper besides the learning rate and clipnorm): Keras 3's Adam,
# Adagrad, Adadelta and Ftrl compute TF1's update as they are (the betas and rho rounded, Adagrad's epsilon 0: TF1
# has none; Keras's 1e-7 moves a weight by up to 5e-7 relative less at slim's initial accumulator 0.1)
OPTIMIZERS = {
    "adadelta": (keras.optimizers.Adadelta, lambda h: dict(rho=f32(h.adadelta_rho), epsilon=h.opt_epsilon)),
    "adagrad": (keras.optimizers.Adagrad,
                lambda h: dict(initial_accumulator_value=h.adagrad_initial_accumulator_value, epsilon=0.0)),
    "adam": (keras.optimizers.Adam,
             lambda h: dict(beta_1=f32(h.adam_beta1), beta_2=f32(h.adam_beta2), epsilon=h.opt_epsilon)),
    "ftrl": (keras.optimizers.Ftrl, lambda h: dict(
        learning_rate_power=h.ftrl_learning_rate_power, initial_accumulator_value=h.ftrl_initial_accumulator_value,
        l1_regularization_strength=h.ftrl_l1, l2_regularization_strength=h.ftrl_l2)),
    "momentum": (Momentum, lambda h: dict(momentum=h.momentum, name="Momentum")),
    "rmsprop": (RMSProp, lambda h: dict(rho=f32(h.rmsprop_decay), momentum=h.rmsprop_momentum,
                                        epsilon=h.opt_epsilon)),
    "sgd": (Momentum, lambda h: dict(momentum=0.0, name="GradientDescent")),
}

# TF1's slot name -> the attribute of the Keras 3 class holding that slot (a list, one per updated variable, in
# the order the optimizer was built with: ``optimizer._get_variable_index``)
SLOTS = {
    "momentum": {"momentum": "momentums"},
    "sgd": {},
    "rmsprop": {"rms": "_velocities", "momentum": "_momentums"},
    "adam": {"m": "_momentums", "v": "_velocities"},
    "adagrad": {"accumulator": "_accumulators"},
    "adadelta": {"accum": "_accumulated_grads", "accum_update": "_accumulated_delta_vars"},
    "ftrl": {"accum": "_accumulators", "linear": "_linears"},
}


def optimizer(hyper, decay_steps):
    """The optimizer ``hyper.optimizer`` names, on ``schedule(hyper, decay_steps)``, with the Hyper's parameters
    (slim's flags); ``hyper.clip_gradient_norm`` > 0 clips each gradient by its own norm (``clipnorm``, as slim's
    ``create_train_op``: Keras 3's ``_clip_by_norm`` is ``tf.clip_by_norm``'s formula)."""
    if hyper.optimizer not in OPTIMIZERS:
        raise ValueError(f"Optimizer [{hyper.optimizer}] was not recognized")
    cls, arguments = OPTIMIZERS[hyper.optimizer]
    clipnorm = hyper.clip_gradient_norm if hyper.clip_gradient_norm > 0 else None  # 0: no clipping, as slim
    return cls(learning_rate=schedule(hyper, decay_steps), clipnorm=clipnorm, **arguments(hyper))


def average_decay(decay, step):
    """The decay TF1's ``ExponentialMovingAverage(decay, num_updates=step)`` applies at global step ``step`` (the
    step just taken, counted): ``min(decay, (1 + step) / (10 + step))``, in float32 as TF1's."""
    step = ops.cast(step, "float32")
    return ops.minimum(ops.cast(decay, "float32"), ops.divide(1.0 + step, 10.0 + step))


def moving_average(average, value, decay):
    """TF1's ``assign_moving_average`` (zero_debias off) as a value: ``average - (average - value) * (1 - decay)``."""
    return ops.subtract(average, ops.multiply(ops.subtract(average, ops.cast(value, average.dtype)),
                                              ops.cast(1.0 - decay, average.dtype)))
