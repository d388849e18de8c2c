"""research/slim's training recipe in TF1 (docs/DESIGN.md §10; twin: modern/optimizers.py): the learning rate on the
global step and the ``tf.compat.v1.train`` optimizer a ``core.run_dir.Hyper`` names, as slim's
``train_image_classifier.py`` builds them (``_configure_learning_rate``, ``_configure_optimizer``), its flags being
the Hyper's fields. This half is the reference: modern/optimizers.py computes the same numbers with tf_keras, and
tests/test_optimizers.py holds the two together step by step.

Sections, in the same order as the twin: schedules, optimizers.
"""

from legacy.slim_compat import tf

# --- schedules -------------------------------------------------------------------------------------------

# slim's _configure_learning_rate: (hyper, global_step, decay_steps) -> the rate of that step, with slim's op names
SCHEDULES = {
    "exponential": lambda h, step, n: tf.train.exponential_decay(
        h.lr, step, n, h.learning_rate_decay_factor, staircase=True, name="exponential_decay_learning_rate"),
    "fixed": lambda h, step, n: tf.constant(h.lr, name="fixed_learning_rate"),
    "polynomial": lambda h, step, n: tf.train.polynomial_decay(
        h.lr, step, n, h.end_learning_rate, power=1.0, cycle=False, name="polynomial_decay_learning_rate"),
}


def learning_rate(hyper, global_step, decay_steps):
    """The learning rate as a scalar tensor of ``global_step``: ``hyper.lr`` decayed by
    ``hyper.learning_rate_decay_type`` every ``decay_steps`` global steps (``core.recipe.decay_steps``)."""
    if hyper.learning_rate_decay_type not in SCHEDULES:
        raise ValueError(f"learning_rate_decay_type [{hyper.learning_rate_decay_type}] was not recognized")
    return SCHEDULES[hyper.learning_rate_decay_type](hyper, global_step, decay_steps)


# --- optimizers ------------------------------------------------------------------------------------------

# slim's _configure_optimizer: optimizer name -> (class, its arguments after the learning rate from the Hyper)
OPTIMIZERS = {
    "adadelta": (tf.train.AdadeltaOptimizer, lambda h: dict(rho=h.adadelta_rho, epsilon=h.opt_epsilon)),
    "adagrad": (tf.train.AdagradOptimizer,
                lambda h: dict(initial_accumulator_value=h.adagrad_initial_accumulator_value)),
    "adam": (tf.train.AdamOptimizer, lambda h: dict(beta1=h.adam_beta1, beta2=h.adam_beta2, epsilon=h.opt_epsilon)),
    "ftrl": (tf.train.FtrlOptimizer, lambda h: dict(
        learning_rate_power=h.ftrl_learning_rate_power, initial_accumulator_value=h.ftrl_initial_accumulator_value,
        l1_regularization_strength=h.ftrl_l1, l2_regularization_strength=h.ftrl_l2)),
    "momentum": (tf.train.MomentumOptimizer, lambda h: dict(momentum=h.momentum, name="Momentum")),
    "rmsprop": (tf.train.RMSPropOptimizer, lambda h: dict(
        decay=h.rmsprop_decay, momentum=h.rmsprop_momentum, epsilon=h.opt_epsilon)),
    "sgd": (tf.train.GradientDescentOptimizer, lambda h: {}),
}


def optimizer(hyper, learning_rate):
    """The TF1 optimizer ``hyper.optimizer`` names, on ``learning_rate`` (a float or a tensor such as
    ``learning_rate(...)``'s), with the Hyper's parameters (slim's flags)."""
    if hyper.optimizer not in OPTIMIZERS:
        raise ValueError(f"Optimizer [{hyper.optimizer}] was not recognized")
    cls, arguments = OPTIMIZERS[hyper.optimizer]
    return cls(learning_rate, **arguments(hyper))
