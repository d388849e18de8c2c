"""The training recipe of research/slim's ``train_image_classifier.py`` that both halves share (DESIGN §10).

What each flag means is TF1's: the optimizers' parameters and defaults are slim's flags (``--opt-epsilon 1.0``
for adam, rmsprop and adadelta), the schedule counts the *global step* (``decay_steps`` below, as slim computes
it), and the run's record holds all of it (``core.run_dir.Hyper``), so a resume with another recipe is refused.
The project's own defaults stay the article's (momentum 0.9, lr x 0.9 after each epoch); slim's default optimizer
is rmsprop. ``legacy/optimizers.py`` builds this with TF1's optimizers and decay functions, ``modern/optimizers.py``
with tf_keras's (subclassed where their update is not TF1's); ``learning_rate`` here is the same curve in Python,
for the epoch summaries.
"""

import math

OPTIMIZERS = ("momentum", "sgd", "rmsprop", "adam", "adagrad", "adadelta", "ftrl")
DECAY_TYPES = ("exponential", "fixed", "polynomial")

# the recipe as the identity of a run: a resume must ask for the same (scripts/train.py refuses another)
IDENTITY = ("optimizer", "learning_rate_decay_type", "moving_average_decay", "trainable_scopes")

# ``--bn-statistics precise``: the BN layers' statistics re-estimated with the current weights over this many
# training batches before each validation (docs/DESIGN.md §10)
PRECISE_BN_BATCHES = 20


def decay_steps(hyper, num_train):
    """Global steps per learning-rate decay: slim's ``int(num_samples_per_epoch / batch_size *
    num_epochs_per_decay)``, at least 1 (TF1's decay functions divide by it)."""
    return max(1, int(num_train / hyper.batch_size * hyper.num_epochs_per_decay))


def learning_rate(hyper, step, steps):
    """The learning rate of global step ``step`` (counting from 0): TF1's ``exponential_decay(staircase=True)``,
    a constant, or ``polynomial_decay(power=1, cycle=False)``, with ``steps`` = ``decay_steps``."""
    kind = hyper.learning_rate_decay_type
    if kind == "fixed":
        return hyper.lr
    if kind == "exponential":
        return hyper.lr * hyper.learning_rate_decay_factor ** (step // steps)
    done = min(step, steps) / steps
    return (hyper.lr - hyper.end_learning_rate) * (1 - done) + hyper.end_learning_rate


def upgraded(hyper):
    """A ``hyper`` record of run.json as this version reads it: written before the recipe flags, it held
    ``lr_decay_per_epoch`` (one decay per epoch, momentum): the same recipe under slim's names, its BN statistics
    the moving averages."""
    hyper = dict(hyper)
    if "lr_decay_per_epoch" in hyper:
        hyper["learning_rate_decay_factor"] = hyper.pop("lr_decay_per_epoch")
    hyper.setdefault("batch_norm_statistics", "moving")
    return hyper


def check(hyper):
    """A ValueError naming the flag whose value the recipe cannot take."""
    for flag, value in (("--momentum", hyper.momentum), ("--rmsprop-decay", hyper.rmsprop_decay),
                        ("--rmsprop-momentum", hyper.rmsprop_momentum), ("--adam-beta1", hyper.adam_beta1),
                        ("--adam-beta2", hyper.adam_beta2), ("--adadelta-rho", hyper.adadelta_rho),
                        ("--label-smoothing", hyper.label_smoothing)):
        if not 0 <= value < 1:
            raise ValueError(f"{flag} {value}: must be at least 0 and below 1")
    if hyper.moving_average_decay is not None and not 0 < hyper.moving_average_decay < 1:
        raise ValueError(f"--moving-average-decay {hyper.moving_average_decay}: must be above 0 and below 1")
    for flag, value in (("--opt-epsilon", hyper.opt_epsilon), ("--num-epochs-per-decay", hyper.num_epochs_per_decay),
                        ("--learning-rate-decay-factor", hyper.learning_rate_decay_factor)):
        if not value > 0:
            raise ValueError(f"{flag} {value}: must be positive")
    if not hyper.adagrad_initial_accumulator_value > 0:
        raise ValueError(f"--adagrad-initial-accumulator-value {hyper.adagrad_initial_accumulator_value}: must be"
                         " positive (TF1 refuses 0)")
    for flag, value in (("--end-learning-rate", hyper.end_learning_rate), ("--clip-gradient-norm",
                        hyper.clip_gradient_norm), ("--ftrl-l1", hyper.ftrl_l1), ("--ftrl-l2", hyper.ftrl_l2),
                        ("--ftrl-initial-accumulator-value", hyper.ftrl_initial_accumulator_value)):
        if value < 0 or math.isnan(value):
            raise ValueError(f"{flag} {value}: must not be negative")
    if hyper.precise_bn_batches < 1:
        raise ValueError(f"--precise-bn-batches {hyper.precise_bn_batches}: must be at least 1")
    if hyper.ftrl_learning_rate_power > 0:
        raise ValueError(f"--ftrl-learning-rate-power {hyper.ftrl_learning_rate_power}: must not be positive")
