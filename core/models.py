"""The one model table, and the registry each half keeps its builders in.

Every model exists in both halves under one name. What is true of a model whichever half builds it is said
once, here:

* ``input_size``: the side of the square RGB input it was designed for (``--image-size``'s default);
* ``min_size``: the smallest side it accepts, found by building it at every size from 1 up in both halves
  (tests/test_models.py builds each at ``min_size`` and ``min_size - 1``); ``train.py`` refuses a smaller one
  with one line naming it, before TensorFlow is started;
* ``family``: the module of each half that builds it (``legacy/<family>.py``, ``modern/<family>.py``);
* ``source``: where it comes from (a seed article, or tf_slim), for the README's table;
* ``settings``: what tells it from the other models of its family (a ResNet's depth, a DenseNet's growth
  rate and units per block), passed to the family's builder as keyword arguments;
* ``head``: the scope of its classifier, whose kernel's last dimension is the number of classes and which
  ``--exclude-scopes`` names to train a new head (``logits``; tf_slim's VGG: ``fc8``, inception: ``Logits/...``);
* ``max_size``: the largest side it accepts, where there is one (tf_slim's VGG writes its fully-connected
  layers as VALID convolutions, inception's last pool must leave 1x1 to squeeze: VGG takes 224 to 255 only);
* ``bn_decay``: whether ``--bn-decay`` means something for it (tf_slim's nets without BN refuse it, and so do
  inception_v1/v2, whose arg scopes fix BN's decay at 0.9997 with no parameter);
* ``scope``: the top-level variable scope of its checkpoints, where it is not the model's name (tf_slim's
  inception nets are ``InceptionV1``..``InceptionV3``): every variable is ``<scope>/...``, and the modern model
  carries it as its name;
* ``aux_head``: the scope of an auxiliary classifier (inception_v3's ``AuxLogits/Conv2d_2b_1x1``), trained beside
  the head and dropped from exports;
* ``preprocessing``: its default recipe (flowio's ``RECIPES``). ``inception`` for inception and ``vgg`` for vgg and
  resnet_v1: research/slim's ``preprocessing/preprocessing_factory.py`` maps them so. ``inception`` (at 299) for
  resnet_v2: research/slim's README, whose resnet_v2 checkpoints are evaluated with ``--preprocessing_name
  inception --eval_image_size 299``, although its factory maps ``resnet_v2_*`` to ``vgg``. ``vgg`` for
  alexnet_v2 and overfeat: this project's choice; the factory has no entry for either (research/slim's scripts
  fail on their names without a ``--preprocessing_name``). The project's own ``default`` for the rest;
* ``checkpoint_classes``: the classes of research/slim's published checkpoints of it (1001 for inception and
  resnet_v2: ImageNet's 1000 after a background class; 1000 for vgg and resnet_v1), for the README's counts;
* ``weight_decay``, ``dropout_keep_prob``, ``aux_loss_weight``: the model's defaults (tf_slim's arg scopes' and
  nets' own), resolved once by each half's ``build`` when not given; ``dropout_keep_prob`` is None where there is
  no dropout the option sets (``build(..., dropout_keep_prob=1.0)`` switches it off: comparisons in training mode
  do so in both halves; the articles' CNNs keep their own fixed dropout).

Registration has one style: each family module of a half has a table of its nets (``NETS``, name -> function)
and one family builder registered over it, ``@registry.register_model(*NETS)`` (or over the table's names with
the settings that tell them apart, for the ResNets and DenseNets); a name not in the table, or registered twice,
raises. The builders' signatures stay each half's own (``legacy/registry.py``, ``modern/registry.py``).
"""

from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    input_size: int
    min_size: int
    source: str
    settings: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    head: str = "logits"
    max_size: int | None = None
    bn_decay: bool = True
    scope: str | None = None
    dropout_keep_prob: float | None = None
    aux_head: str | None = None
    preprocessing: str = "default"
    checkpoint_classes: int | None = None
    weight_decay: float = 0.0
    aux_loss_weight: float | None = None


# each family's weight decay, slim's convention (the coefficient of half the sum of squares), what ``build`` uses
# when not given one: tf_slim's resnet_arg_scope 1e-4; the DenseNet article's Keras l2(1e-4), i.e. 2e-4 in
# slim's terms; vgg / alexnet_v2 / overfeat's arg scopes 5e-4; the inception arg scopes 4e-5; none in the
# articles' CNNs and Keras ResNets
WEIGHT_DECAY = {"resnet": 1e-4, "densenet": 2e-4, "slim_convnets": 5e-4, "inception": 4e-5, "cnn": 0.0,
                "resnets_keras": 0.0}
# research/slim's train_image_classifier weighs inception_v3's auxiliary logits' loss by 0.4
AUX_LOSS_WEIGHT = 0.4
# the keep probability of tf_slim's dropout: vgg / alexnet_v2 / overfeat after fc6 and fc7, inception before its head
SLIM_CONVNET_KEEP, INCEPTION_KEEP = 0.5, 0.8


# the preprocessing recipes, one module of flowio.recipes each (what each does is said there)
RECIPES = ("default", "inception", "vgg")

JIANSHU = "002: the Jianshu pipeline's ResNet (zero-padding shortcuts)"
SLIM_RESNET = "tf_slim nets/resnet_v1.py (the canonical slim ResNet)"
DENSENET = "001: DenseNet-BC for CIFAR-10"
SLIM_VGG = "tf_slim nets/vgg.py (research/slim's VGG checkpoints)"
SLIM_RESNET_V2 = "tf_slim nets/resnet_v2.py (research/slim's pre-activation ResNets)"
SLIM_INCEPTION = "tf_slim nets/inception_v{}.py (research/slim's Inception checkpoints)"


def _spec(name, family, input_size, min_size, source, preprocessing="default", checkpoint_classes=None,
          **settings):
    return ModelSpec(name, family, input_size, min_size, source, MappingProxyType(settings),
                     preprocessing=preprocessing, checkpoint_classes=checkpoint_classes,
                     weight_decay=WEIGHT_DECAY[family])


def _slim_convnet(name, input_size, min_size, max_size, source):
    """tf_slim's nets without BN whose fully-connected layers are VALID convolutions (a fixed range of sizes)."""
    return ModelSpec(name, "slim_convnets", input_size, min_size, source, head="fc8", max_size=max_size,
                     bn_decay=False, dropout_keep_prob=SLIM_CONVNET_KEEP, preprocessing="vgg", checkpoint_classes=1000,
                     weight_decay=WEIGHT_DECAY["slim_convnets"])


def _inception(version, input_size, min_size, max_size, head):
    """tf_slim's inception_v{version}: scope ``InceptionV{version}``, dropout before its head; v1/v2's arg scopes
    fix BN's decay; v3 has an auxiliary head; the largest size is where the last pool still leaves 1x1."""
    return ModelSpec(f"inception_v{version}", "inception", input_size, min_size, SLIM_INCEPTION.format(version),
                     MappingProxyType({"version": version}), head=head, max_size=max_size,
                     bn_decay=version == 3, scope=f"InceptionV{version}", dropout_keep_prob=INCEPTION_KEEP,
                     aux_head="AuxLogits/Conv2d_2b_1x1" if version == 3 else None, preprocessing="inception",
                     checkpoint_classes=1001, weight_decay=WEIGHT_DECAY["inception"],
                     aux_loss_weight=AUX_LOSS_WEIGHT if version == 3 else None)


_TABLE = (
    # name, family, size, min size, source (then the preprocessing recipe and research/slim's classes)
    _spec("jianshu_resnet_50", "resnet", 224, 1, JIANSHU, depth=50),
    _spec("jianshu_resnet_101", "resnet", 224, 1, JIANSHU, depth=101),
    _spec("jianshu_resnet_152", "resnet", 224, 1, JIANSHU, depth=152),
    _spec("resnet_v1_50", "resnet", 224, 1, SLIM_RESNET, "vgg", 1000, depth=50),
    _spec("resnet_v1_101", "resnet", 224, 1, SLIM_RESNET, "vgg", 1000, depth=101),
    _spec("resnet_v1_152", "resnet", 224, 1, SLIM_RESNET, "vgg", 1000, depth=152),
    _spec("resnet_v1_200", "resnet", 224, 1, SLIM_RESNET, "vgg", 1000, depth=200),
    # inception: research/slim's README evaluates its resnet_v2 checkpoints so (its factory says vgg)
    _spec("resnet_v2_50", "resnet", 299, 1, SLIM_RESNET_V2, "inception", 1001, depth=50),
    _spec("resnet_v2_101", "resnet", 299, 1, SLIM_RESNET_V2, "inception", 1001, depth=101),
    _spec("resnet_v2_152", "resnet", 299, 1, SLIM_RESNET_V2, "inception", 1001, depth=152),
    _spec("resnet_v2_200", "resnet", 299, 1, SLIM_RESNET_V2, "inception", 1001, depth=200),
    # growth rate k and bottleneck units per dense block: the article's variants
    _spec("densenet_100x12", "densenet", 32, 4, DENSENET, growth=12, units=(16, 16, 16)),
    _spec("densenet_100x24", "densenet", 32, 4, DENSENET, growth=24, units=(16, 16, 16)),
    _spec("densenet_121x32", "densenet", 32, 8, DENSENET, growth=32, units=(6, 12, 24, 16)),
    _spec("densenet_169x32", "densenet", 32, 8, DENSENET, growth=32, units=(6, 12, 32, 32)),
    _spec("densenet_201x32", "densenet", 32, 8, DENSENET, growth=32, units=(6, 12, 48, 32)),
    _spec("densenet_161x48", "densenet", 32, 8, DENSENET, growth=48, units=(6, 12, 36, 24)),
    _spec("resnet18_cifar", "resnets_keras", 32, 1, "000: subclassed Keras ResNet-18 for CIFAR-10"),
    _spec("resnet18", "resnets_keras", 32, 3, "004: layers.Layer BasicBlock ResNet-18"),
    _spec("resnet50_keras", "resnets_keras", 64, 5, "003: Keras identity / convolutional blocks, 64x64"),
    _spec("lenet5", "cnn", 32, 32, "004: the TF1 LeNet-5, its bugs fixed"),
    _spec("alexnet", "cnn", 224, 57, "004: AlexNet on Fashion-MNIST at 224"),
    _spec("vgg13", "cnn", 32, 1, "004: VGG-13 on CIFAR-100"),
    _spec("googlenet_cifar", "cnn", 32, 1, "001: three Inception modules for CIFAR-10"),
    _slim_convnet("vgg_a", 224, 224, 255, SLIM_VGG),
    _slim_convnet("vgg_16", 224, 224, 255, SLIM_VGG),
    _slim_convnet("vgg_19", 224, 224, 255, SLIM_VGG),
    # vgg for these two is the project's choice: research/slim's preprocessing factory has no entry for them
    _slim_convnet("alexnet_v2", 224, 195, 226, "tf_slim nets/alexnet.py (research/slim's AlexNet v2)"),
    _slim_convnet("overfeat", 231, 231, 262, "tf_slim nets/overfeat.py (research/slim's OverFeat)"),
    # v1's head is Conv2d_0c_1x1 in tf_slim, v2's and v3's Conv2d_1c_1x1; v3's AuxLogits need 107..346
    _inception(1, 224, 193, 224, "Logits/Conv2d_0c_1x1"),
    _inception(2, 224, 1, 256, "Logits/Conv2d_1c_1x1"),
    _inception(3, 299, 107, 346, "Logits/Conv2d_1c_1x1"),
)
MODELS = MappingProxyType({spec.name: spec for spec in _TABLE})


def list_models():
    return sorted(MODELS)


def spec(name):
    """The table's row of ``name``; a ValueError naming the known models otherwise."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    return MODELS[name]


def default_input_size(name):
    return spec(name).input_size


def check_size(name, size):
    """A ValueError saying which sizes ``name`` accepts when ``size`` is not one of them; None otherwise."""
    row = spec(name)
    if size < row.min_size:
        raise ValueError(f"{name} needs at least {row.min_size}")
    if row.max_size is not None and size > row.max_size:
        raise ValueError(f"{name} takes {row.min_size} to {row.max_size} (its " + (
            "fully-connected layers are convolutions of a fixed size)" if row.family == "slim_convnets" else
            "last pool must leave a 1x1 map to squeeze)"))


def scope(name):
    """The top-level variable scope of ``name``'s checkpoints (and its modern model's name)."""
    row = spec(name)
    return row.name if row.scope is None else row.scope


def heads(name):
    """The full scopes of ``name``'s classifiers: its head, and its auxiliary head where it has one."""
    row = spec(name)
    return [f"{scope(name)}/{h}" for h in (row.head, row.aux_head) if h is not None]


def aux_scopes(name):
    """The scopes of ``name``'s auxiliary head (``["AuxLogits"]`` for inception_v3): trained and kept in a run's
    weights, left out of the prediction model and the exports."""
    row = spec(name)
    return [] if row.aux_head is None else [row.aux_head.split("/")[0]]


def check_options(name, batch_norm_decay, dropout_keep_prob=None):
    """A ValueError when an option is given that ``name`` has nothing to apply to."""
    row = spec(name)
    if batch_norm_decay is not None and not row.bn_decay:
        raise ValueError(f"{name} has no batch norm to apply a decay to" if row.family != "inception" else
                         f"{name}'s arg scope fixes its batch norm decay at 0.9997")
    if dropout_keep_prob is not None and row.dropout_keep_prob is None:
        raise ValueError(f"{name} has no dropout to apply a keep probability to")


class Registry:
    """``name -> builder`` of one half, for the names of the table."""

    def __init__(self, half):
        self.half = half
        self._builders = {}

    def register_model(self, *names):
        """Decorator: ``fn`` builds each of ``names`` (rows of the table); a name registered twice raises."""
        def decorate(fn):
            for name in names:
                spec(name)
                if name in self._builders:
                    raise ValueError(f"{self.half}: model {name!r} is registered twice")
                self._builders[name] = fn
            return fn
        return decorate

    def list_models(self):
        return sorted(self._builders)

    def lookup(self, name):
        """``(builder, spec)`` of ``name``; a ValueError naming the known models otherwise."""
        row = spec(name)
        if name not in self._builders:
            raise ValueError(f"model {name!r} has no {self.half} builder; {self.half} builds:"
                             f" {', '.join(self.list_models())}")
        return self._builders[name], row
