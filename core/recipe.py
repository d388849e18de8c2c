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
from dataclasses import dataclass

import numpy as np

OPTIMIZERS = ("momentum", "sgd", "rmsprop", "adam", "adagrad", "adadelta", "ftrl")
DECAY_TYPES = ("exponential", "fixed", "polynomial")


# --- the flags, declared once ------------------------------------------------------------------------------

def scopes(text):
    """A comma-separated list of scopes (blanks ignored), or None for none (``--trainable-scopes``)."""
    return [s.strip() for s in text.split(",") if s.strip()] or None


def below_one(value):
    return None if 0 <= value < 1 else "must be at least 0 and below 1"


def positive(value):
    return None if value > 0 else "must be positive"


def not_negative(value):
    return None if value >= 0 and not math.isnan(value) else "must not be negative"


@dataclass(frozen=True)
class Flag:
    """One flag of the recipe: ``name`` is slim's (its ``FLAGS.name``), the run record's field (``run.json``'s
    ``hyper``) and the parsed argument's; ``flags`` its spellings on the command line (slim's with dashes);
    ``check`` returns what is wrong with a value (None: nothing)."""
    name: str
    type: type
    default: object
    help: str
    check: object = None
    flags: tuple = ()
    metavar: str | None = None
    choices: tuple | None = None

    @property
    def option(self):
        return (self.flags or (f"--{self.name.replace('_', '-')}",))[0]


# research/slim's train_image_classifier flags, slim's defaults except the optimizer's and the schedule's, which
# stay the article's (momentum, lr x 0.9 after each epoch): train.py's argument group, the run record's fields and
# the checks are all made from this table
RECIPE = (
    Flag("lr", float, 0.05, "initial learning rate (default 0.05)", positive, ("--lr", "--learning-rate"), "LR"),
    Flag("optimizer", str, "momentum", "TF1's optimizer of that name in legacy, its exact Keras equivalent in modern"
         " (default momentum; slim's default is rmsprop)", choices=OPTIMIZERS),
    Flag("momentum", float, 0.9, "momentum's momentum (0.9)", below_one),
    Flag("rmsprop_decay", float, 0.9, "rmsprop's decay (0.9)", below_one),
    Flag("rmsprop_momentum", float, 0.9, "rmsprop's momentum (0.9)", below_one),
    Flag("opt_epsilon", float, 1.0, "epsilon of adam, rmsprop and adadelta (slim's 1.0, not Keras's 1e-7)", positive),
    Flag("adam_beta1", float, 0.9, "adam's beta1 (0.9)", below_one),
    Flag("adam_beta2", float, 0.999, "adam's beta2 (0.999)", below_one),
    Flag("adagrad_initial_accumulator_value", float, 0.1, "adagrad's starting accumulator (0.1)",
         lambda v: None if v > 0 else "must be positive (TF1 refuses 0)", metavar="V"),
    Flag("adadelta_rho", float, 0.95, "adadelta's rho (0.95)", below_one),
    Flag("ftrl_learning_rate_power", float, -0.5, "ftrl's learning rate power (-0.5)",
         lambda v: None if v <= 0 else "must not be positive", metavar="P"),
    Flag("ftrl_initial_accumulator_value", float, 0.1, "ftrl's starting accumulator (0.1)", not_negative,
         metavar="V"),
    Flag("ftrl_l1", float, 0.0, "ftrl's l1 strength (0)", not_negative),
    Flag("ftrl_l2", float, 0.0, "ftrl's l2 strength (0)", not_negative),
    Flag("learning_rate_decay_type", str, "exponential", "exponential: lr x FACTOR every --num-epochs-per-decay"
         " epochs (staircase); fixed; polynomial: linear to --end-learning-rate over --num-epochs-per-decay epochs,"
         " then constant. Counted in global steps, as slim: int(training images / batch size x epochs per decay)"
         " per decay", choices=DECAY_TYPES),
    Flag("learning_rate_decay_factor", float, 0.9, "exponential decay's factor (default 0.9; slim's 0.94)", positive,
         metavar="FACTOR"),
    Flag("num_epochs_per_decay", float, 1.0, "epochs per decay (default 1; slim's 2)", positive, metavar="E"),
    Flag("end_learning_rate", float, 0.0001, "polynomial decay's last rate (0.0001)", not_negative, metavar="LR"),
    Flag("label_smoothing", float, 0.0, "train on targets (1 - S) x one-hot + S / classes (slim's"
         " softmax_cross_entropy; default 0)", below_one, metavar="S"),
    Flag("moving_average_decay", float, None, "keep moving averages of every model variable (BN statistics"
         " included) after each step, as slim's ExponentialMovingAverage(D, num_updates=global step); validation,"
         " the best checkpoint, evaluate, export and use_model use them (default: none)",
         lambda v: None if v is None or 0 < v < 1 else "must be above 0 and below 1", metavar="D"),
    Flag("trainable_scopes", scopes, None, "comma-separated scopes (TF1 names, e.g. resnet_v1_50/logits) whose"
         " variables alone are trained; BN layers elsewhere still update their moving statistics, as under slim"
         " (default: all)", metavar="S,..."),
    Flag("clip_gradient_norm", float, 0.0, "clip each gradient to norm N (slim's create_train_op; default 0: no"
         " clipping)", not_negative, metavar="N"),
)


def add_arguments(group):
    """The table's flags on an argparse parser or group."""
    for f in RECIPE:
        extra = {"choices": f.choices} if f.choices else {"metavar": f.metavar} if f.metavar else {}
        group.add_argument(*(f.flags or (f.option,)), dest=f.name, type=f.type, default=f.default, help=f.help,
                           **extra)


def record_fields():
    """``[(name, type, default)]`` of the table: the run record's (``core.run_dir.Hyper``) recipe fields."""
    return [(f.name, list | None if f.type is scopes else f.type | None if f.default is None else f.type, f.default)
            for f in RECIPE]

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
    for f in RECIPE:
        problem = f.check(getattr(hyper, f.name)) if f.check else None
        if problem:
            raise ValueError(f"{f.option} {getattr(hyper, f.name)}: {problem}")
    if hyper.precise_bn_batches < 1:
        raise ValueError(f"--precise-bn-batches {hyper.precise_bn_batches}: must be at least 1")


# --- the recipe in Keras's terms (tf_keras and Keras 3 take the same names) ------------------------------------

def f32(decay):
    """``decay`` rounded to float32, as TF1's kernels receive it: they compute ``1 - decay`` in float32 (exactly,
    from the rounded value), Keras in float64 from the decimal: 1 - 0.999 is 0.001 in Keras, 0.00099998713 in TF1,
    which puts Adam's ``v`` 1.3e-5 (relative) off TF1's at every step. Given the rounded value, Keras's float64
    ``1 - decay`` is TF1's float32 one exactly."""
    return float(np.float32(decay))


# decay type -> (the class of ``keras.optimizers.schedules``, its arguments from the Hyper and decay_steps): TF1's
# ``exponential_decay(staircase=True)`` and ``polynomial_decay(power=1, cycle=False)``; "fixed" is ``hyper.lr``
KERAS_SCHEDULES = {
    "exponential": ("ExponentialDecay", lambda h, n: dict(
        initial_learning_rate=h.lr, decay_steps=n, decay_rate=h.learning_rate_decay_factor, staircase=True)),
    "polynomial": ("PolynomialDecay", lambda h, n: dict(
        initial_learning_rate=h.lr, decay_steps=n, end_learning_rate=h.end_learning_rate, power=1.0, cycle=False)),
}

# optimizer -> its Keras arguments from the Hyper besides the learning rate and clipnorm: TF1's (Adagrad's epsilon
# 0: TF1 has none; Keras's 1e-7 moves a weight by up to 5e-7 relative less at slim's initial accumulator 0.1), the
# decays rounded to float32 (``f32``)
KERAS_ARGUMENTS = {
    "adadelta": lambda h: dict(rho=f32(h.adadelta_rho), epsilon=h.opt_epsilon),
    "adagrad": lambda h: dict(initial_accumulator_value=h.adagrad_initial_accumulator_value, epsilon=0.0),
    "adam": lambda h: dict(beta_1=f32(h.adam_beta1), beta_2=f32(h.adam_beta2), epsilon=h.opt_epsilon),
    "ftrl": lambda h: dict(
        learning_rate_power=h.ftrl_learning_rate_power, initial_accumulator_value=h.ftrl_initial_accumulator_value,
        l1_regularization_strength=h.ftrl_l1, l2_regularization_strength=h.ftrl_l2),
    "momentum": lambda h: dict(momentum=h.momentum, name="Momentum"),
    "rmsprop": lambda h: dict(rho=f32(h.rmsprop_decay), momentum=h.rmsprop_momentum, epsilon=h.opt_epsilon),
    "sgd": lambda h: dict(momentum=0.0, name="GradientDescent"),
}


def keras_schedule(schedules, hyper, decay_steps):
    """``hyper.lr`` decayed by ``hyper.learning_rate_decay_type`` every ``decay_steps`` global steps, made from
    ``schedules`` (a Keras package's ``keras.optimizers.schedules``): a float (fixed) or a
    ``LearningRateSchedule`` of the optimizer's ``iterations`` (TF1's global step while it is restored with the
    run)."""
    kind = hyper.learning_rate_decay_type
    if kind == "fixed":
        return hyper.lr
    if kind not in KERAS_SCHEDULES:
        raise ValueError(f"learning_rate_decay_type [{kind}] was not recognized")
    name, arguments = KERAS_SCHEDULES[kind]
    return getattr(schedules, name)(**arguments(hyper, decay_steps))


def keras_optimizer(classes, schedules, hyper, decay_steps):
    """The optimizer ``hyper.optimizer`` names, of ``classes`` (a half's ``{name: class}``), on ``keras_schedule``,
    with the Hyper's parameters (slim's flags); ``hyper.clip_gradient_norm`` > 0 clips each gradient by its own
    norm (``clipnorm``, as slim's ``create_train_op``; ``global_clipnorm`` would clip them together)."""
    if hyper.optimizer not in classes:
        raise ValueError(f"Optimizer [{hyper.optimizer}] was not recognized")
    clipnorm = hyper.clip_gradient_norm if hyper.clip_gradient_norm > 0 else None  # 0: no clipping, as slim
    return classes[hyper.optimizer](learning_rate=keras_schedule(schedules, hyper, decay_steps), clipnorm=clipnorm,
                                    **KERAS_ARGUMENTS[hyper.optimizer](hyper))


def precise_batch_norm(layers, forward, batches):
    """legacy's ``precise_statistics`` on Keras BN ``layers`` (tf_keras's or Keras 3's): their moving statistics
    become the mean, over ``batches``, of what ``forward(batch)`` (the model in training mode) leaves in them at
    momentum 0, i.e. of each batch's mean and (unbiased, as slim's fused kernel) variance; the momenta are put
    back."""
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 0.0
    sums, count = None, 0
    for batch in batches:
        forward(batch)
        values = [np.asarray(v) for layer in layers for v in (layer.moving_mean, layer.moving_variance)]
        sums = values if sums is None else [a + b for a, b in zip(sums, values)]
        count += 1
    for layer, momentum, mean, variance in zip(layers, momenta, sums[0::2], sums[1::2]):
        layer.moving_mean.assign(mean / count)
        layer.moving_variance.assign(variance / count)
        layer.momentum = momentum
