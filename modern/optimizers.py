"""research/slim's training recipe in tf_keras (docs/DESIGN.md §10) (twin: legacy/optimizers.py): the Keras schedule
of the global step and the optimizer a ``core.run_dir.Hyper`` names, computing TF1's update exactly.

tf_keras's class is used where its update is TF1's; where it is not (Momentum, RMSProp), a small subclass says in
its docstring what differs; the schedule and the arguments are TF1's in Keras's names, shared with keras3/
(``core.recipe.keras_optimizer``: Adagrad's epsilon 0, the decays rounded to float32 by ``f32``).
Every class also carries ``Recipe``: slim's ``--trainable-scopes`` (``restrict``) and ``--moving-average-decay``
(``average``, ``swap_averages``). Both live in the optimizer so that ``fit``'s compiled step does them on every step
under any strategy, and their state is saved with the optimizer's (BackupAndRestore, ``.keras``).
The caller's order, before the first step:

    opt = optimizer(hyper, decay_steps)
    opt.restrict(trained)                     # optional: only these are updated (no slots for the others)
    opt.average(model.weights, decay)         # optional: the shadows of these (BN's moving statistics too)
    opt.build(trained)                        # slots, then shadows: ``opt.variables`` has a fixed order

``restrict`` and ``average`` are not part of ``get_config`` (they name variables, not hyper-parameters): after
loading, the caller sets them again before building. tests/test_optimizers.py holds each class to TF1's.

Sections, in the same order as the twin: schedules, optimizers.
"""

import tensorflow as tf
import tf_keras as keras

from core import recipe

# --- schedules -------------------------------------------------------------------------------------------

def schedule(hyper, decay_steps):
    """``hyper.lr`` decayed by ``hyper.learning_rate_decay_type`` every ``decay_steps`` global steps, as tf_keras
    schedules (``core.recipe.keras_schedule``): a float (fixed) or a ``LearningRateSchedule`` (TF1's
    ``exponential_decay(staircase=True)``, ``polynomial_decay(power=1, cycle=False)``). Keras calls it with the
    count of the steps before this one, which is TF1's global step as long as ``iterations`` is restored with the
    run."""
    return recipe.keras_schedule(keras.optimizers.schedules, hyper, decay_steps)


# --- optimizers ------------------------------------------------------------------------------------------

register = keras.saving.register_keras_serializable(package="modern")


def _move(average, value, decay):
    """TF1's ``assign_moving_average`` (zero_debias off): ``shadow -= (shadow - value) * (1 - decay)``."""
    average.assign_sub((average - tf.cast(value, average.dtype)) * (1.0 - decay))


class Recipe:
    """What every optimizer of the recipe adds to its tf_keras class (mixed in before it).

    * ``restrict(variables)``: slim's ``--trainable-scopes`` (its optimizer's var_list). The gradients of the
      other variables are dropped before the update, and they get no slots.
    * ``average(variables, decay)``: slim's ``ExponentialMovingAverage(decay, num_updates=global_step)`` of the
      model variables, applied after each step (slim groups the two and leaves their order open; legacy/train.py
      orders them so), so that its ``num_updates`` is the incremented step t: ``decay_t = min(decay, (1 + t) /
      (10 + t))``. tf_keras's own ``use_ema`` has no such warm-up (a fixed ``ema_momentum``) and averages only the
      trained variables, not BN's moving statistics. The shadows are optimizer variables created by ``build``
      after the slots, from the variables' values then (TF1's shadows start at the variables' initial values).
    * ``swap_averages()``: every averaged variable's value exchanged with its shadow; twice restores them.

    Both must be called before the optimizer is built, and then ``build`` explicitly (``fit`` would build it only
    at its first step, after BackupAndRestore or a caller looked for the state to restore into).
    """

    _restricted = None  # the keys of the variables to update; None: every variable that has a gradient
    _averaged = ()
    _averages = ()
    _average_decay = None

    def restrict(self, variables):
        """Update only ``variables`` (None: all): the others' gradients are dropped, and they get no slots."""
        self._unbuilt("restrict")
        self._restricted = None if variables is None else frozenset(self._var_key(v) for v in variables)

    def average(self, variables, decay):
        """Keep TF1's moving average of ``variables`` (trainable or not) at ``decay`` (with its warm-up)."""
        self._unbuilt("average")
        self._averaged = self._no_dependency(list(variables))  # the model's variables: the model tracks them
        self._average_decay = float(decay)

    def _unbuilt(self, what):
        """A RuntimeError once the slots exist: they would not match what ``what`` asks."""
        if getattr(self, "_built", False):
            raise RuntimeError(f"optimizer.{what}() must come before the optimizer is built")

    def build(self, var_list):
        """The slots of the variables of ``var_list`` the optimizer updates, then the shadows, in that order."""
        if getattr(self, "_built", False):
            return
        self._build_slots([v for v in var_list if self._updates(v)])
        self._averages = [self.add_variable_from_reference(v, "average", initial_value=v) for v in self._averaged]
        self._built = True

    def _build_slots(self, var_list):
        """The tf_keras class's own build."""
        super().build(var_list)

    def _updates(self, variable):
        """Whether ``restrict`` left ``variable`` to the optimizer."""
        return self._restricted is None or self._var_key(variable) in self._restricted

    def apply_gradients(self, grads_and_vars, *args, **kwargs):
        """tf_keras's, on the pairs whose variable the optimizer updates (before aggregating them)."""
        return super().apply_gradients([(g, v) for g, v in grads_and_vars if self._updates(v)], *args, **kwargs)

    def _distributed_apply_gradients_fn(self, distribution, grads_and_vars, **kwargs):
        """tf_keras's step (where it keeps its own ``use_ema`` averages), then TF1's moving averages."""
        step = tf.cast(self.iterations + 1, tf.float32)  # the global step once this step is counted
        iteration = super()._distributed_apply_gradients_fn(distribution, grads_and_vars, **kwargs)
        if self._averages:
            decay = tf.minimum(tf.constant(self._average_decay, tf.float32), (1.0 + step) / (10.0 + step))
            for variable, average in zip(self._averaged, self._averages):
                distribution.extended.update(average, _move, args=(variable, decay), group=False)
        return iteration

    def swap_averages(self):
        """Exchange every averaged variable's value with its shadow (validation and saving use the averages)."""
        for variable, average in zip(self._averaged, self._averages):
            value = tf.identity(variable.read_value())
            variable.assign(tf.cast(average, variable.dtype))
            average.assign(tf.cast(value, average.dtype))


@register
class Momentum(Recipe, keras.optimizers.SGD):
    """TF1's MomentumOptimizer: ``a = m*a + g; w -= lr*a`` (the slot holds ``a``); at momentum 0 TF1's
    GradientDescentOptimizer, ``w -= lr*g``, with no slot (as TF1's; tf_keras's SGD keeps one of zeros).

    tf_keras's SGD computes ``v = m*v - lr*g; w += v``: the same only while lr is constant (v = -lr*a). After a
    drop from lr0 to lr1 its v still holds lr0: the k-th step after the drop (k = 1, 2, ...) moves by
    ``m^k * (lr0 - lr1) * a0`` more than TF1's (a0 the accumulator at the drop), in total ``m/(1-m) * (lr0 - lr1)
    * a0``: at m 0.9 and lr x 0.9 per epoch, 0.09 * lr0 * a0 on the first step after the drop, 0.9 * lr0 * a0 in
    all (nearly one whole step), still 1% of the first difference 44 steps later.
    """

    def _build_slots(self, var_list):
        """SGD's slots only with momentum (TF1's GradientDescentOptimizer has none)."""
        if self.momentum:
            super()._build_slots(var_list)
        else:
            keras.optimizers.Optimizer.build(self, var_list)

    def update_step(self, gradient, variable):
        """TF1's ApplyMomentum (use_nesterov=False) or ApplyGradientDescent kernel."""
        lr = tf.cast(self.learning_rate, variable.dtype)
        gradient = tf.convert_to_tensor(gradient)  # IndexedSlices: TF1's dense update (its sparse one is lazier)
        if not self.momentum:
            variable.assign_sub(gradient * lr)
            return
        accumulator = self.momentums[self._index_dict[self._var_key(variable)]]
        accumulator.assign(accumulator * tf.cast(self.momentum, variable.dtype) + gradient)
        variable.assign_sub(accumulator * lr)


@register
class RMSProp(Recipe, keras.optimizers.RMSprop):
    """TF1's RMSPropOptimizer: its mean square (slot ``rms``) starts at 1, tf_keras's ``velocity`` at 0.

    The update is otherwise the same, ``ms = rho*ms + (1-rho)*g^2; mom = momentum*mom + lr*g/sqrt(ms + eps);
    w -= mom`` (epsilon inside the square root and lr inside the momentum in both; at momentum 0 tf_keras keeps
    no ``mom`` slot and moves by the same ``lr*g/sqrt(ms + eps)``). With slim's rho 0.9 and epsilon 1.0 a
    velocity started at 0 makes the first step 1.35x (g = 1) to 1.38x (small g) TF1's, the excess fading as
    0.9^t; with Keras's own epsilon 1e-7 it would be ~3/|g| times TF1's.
    """

    def add_variable_from_reference(self, model_variable, variable_name, shape=None, initial_value=None):
        """tf_keras's, with TF1's initial mean square of 1."""
        if variable_name == "velocity":
            dtype = getattr(model_variable, "true_dtype", model_variable.dtype)
            initial_value = tf.ones(model_variable.shape, dtype=dtype)
        return super().add_variable_from_reference(model_variable, variable_name, shape, initial_value)


@register
class Adam(Recipe, keras.optimizers.Adam):
    """TF1's AdamOptimizer: tf_keras's update is the same (the "epsilon hat" form, ``w -= lr*sqrt(1-b2^t)/(1-b1^t)
    * m / (sqrt(v) + eps)``); TF1 keeps ``b1^t``, ``b2^t`` in two variables (``beta1_power``, ``beta2_power``),
    Keras computes them from ``iterations + 1``: the same while ``iterations`` counts the run's steps. TF1's
    default epsilon is 1e-8 and Keras's 1e-7; slim passes its own (``--opt-epsilon`` 1.0) to both. The betas are
    given rounded to float32 (``f32``), else ``v`` is 1.3e-5 off TF1's at beta2 0.999."""


@register
class Adagrad(Recipe, keras.optimizers.Adagrad):
    """TF1's AdagradOptimizer: tf_keras's ``w -= lr*g/sqrt(acc + eps)`` with eps 0 (TF1's has none; Keras's
    default 1e-7 would move a weight by up to 5e-7 relative less at slim's initial accumulator 0.1)."""


@register
class Adadelta(Recipe, keras.optimizers.Adadelta):
    """TF1's AdadeltaOptimizer: tf_keras's update is the same (both slots start at 0, epsilon inside both
    square roots, ``w -= lr * sqrt(acc_update + eps) / sqrt(acc + eps) * g``)."""


@register
class Ftrl(Recipe, keras.optimizers.Ftrl):
    """TF1's FtrlOptimizer (ApplyFtrl: no l2 shrinkage, beta 0): tf_keras's update is the same, accumulator
    started at ``initial_accumulator_value``, ``quadratic = acc_new^(-lr_power)/lr + 2*l2`` and the weight set to
    ``(clip(linear, -l1, l1) - linear) / quadratic`` (TF1: 0 where ``|linear| <= l1``, the same value)."""


# optimizer name -> its class; the arguments are core.recipe's KERAS_ARGUMENTS (TF1's, in Keras's names)
CLASSES = {"adadelta": Adadelta, "adagrad": Adagrad, "adam": Adam, "ftrl": Ftrl, "momentum": Momentum,
           "rmsprop": RMSProp, "sgd": Momentum}


def optimizer(hyper, decay_steps):
    """The optimizer ``hyper.optimizer`` names, on ``schedule(hyper, decay_steps)``, with the Hyper's parameters
    (``core.recipe.keras_optimizer``: slim's flags, clipnorm as slim's ``create_train_op``). Not built: see the
    module's docstring."""
    return recipe.keras_optimizer(CLASSES, keras.optimizers.schedules, hyper, decay_steps)
