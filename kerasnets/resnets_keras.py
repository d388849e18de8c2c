"""The ResNets of the Keras articles the Keras way, in the layer kit (twin: legacy/resnets_keras.py).

* ``resnet18_cifar`` (article 000): a subclassed ``keras.Model`` of subclassed blocks, kept subclassed: 3x3
  stem without max-pool, BasicBlocks without conv bias, projection (1x1 conv + BN) where the size changes;
* ``resnet18`` (article 004): its ``layers.Layer`` BasicBlock ResNet-18, kept subclassed: a 3x3 VALID stem
  with a 2x2 stride-1 max-pool, convs with biases, a plain 1x1 conv (no BN) as the downsampling shortcut;
* ``resnet50_keras`` (article 003): the functional ``identity_block`` / ``convolutional_block`` ResNet-50
  (the stride on the first 1x1 conv, convs with biases, Keras's BN defaults), 64x64 input, with the
  article's own layer names (``res2a_branch2a``, ``bn2a_branch2a``, ...).

All return logits (000's and 003's softmax move into the loss); the head is named ``logits``. The articles'
``keras.Model`` blocks, auto-named layers and ``Sequential`` containers get explicit names built by the
naming rule (``layer2__block_1__conv1``), because weights load by name. The subclassed models implement
``get_config`` so that ``last.keras`` can be saved and loaded.

Sections, in the same order as the twin: layer settings, blocks, models, registered builders.
"""

from core.checkpoints import SEP
from kerasnets.kit import keras, layers, subclass
from kerasnets.registry import register_model

STAGES = [64, 128, 256, 512]  # filters of the four stages of both ResNet-18s, two blocks each


# --- layer settings -----------------------------------------------------------------------------------

def bn(name):
    return layers.BatchNorm(name=name)  # Keras's defaults: momentum 0.99, epsilon 1e-3


def conv(filters, kernel, name, weight_decay, **settings):
    """A Conv2D layer; ``weight_decay`` (slim's convention, none in the articles) as ``L2(wd / 2)``."""
    regularizer = keras.regularizers.L2(weight_decay / 2) if weight_decay else None
    return layers.Conv2D(filters, kernel, kernel_regularizer=regularizer, name=name, **settings)


def head(num_classes, weight_decay):
    """The ``logits`` layer, computed in float32 under any mixed-precision policy."""
    regularizer = keras.regularizers.L2(weight_decay / 2) if weight_decay else None
    return layers.Dense(num_classes, kernel_regularizer=regularizer, name="logits", dtype="float32")


# --- blocks -------------------------------------------------------------------------------------------

@subclass
def CifarBlock(keras, layers):  # noqa: N802 -- it stands for the class
    class CifarBlock(layers.Layer):
        """Article 000's ``ResBlock``: conv-BN-ReLU, conv-BN, (projected) shortcut, add, ReLU; convs without bias."""

        def __init__(self, filters, strides=1, down_sample=False, weight_decay=0.0, **kwargs):
            super().__init__(**kwargs)
            self.filters, self.strides, self.down_sample = filters, strides, down_sample
            self.weight_decay = weight_decay
            name = self.name + SEP
            self.conv1 = conv(filters, 3, name + "conv1", weight_decay, strides=strides, padding="same", use_bias=False)
            self.bn1 = bn(name + "bn1")
            self.conv2 = conv(filters, 3, name + "conv2", weight_decay, padding="same", use_bias=False)
            self.bn2 = bn(name + "bn2")
            if down_sample:
                self.down_conv = conv(filters, 1, name + "down_conv", weight_decay, strides=strides, padding="same",
                                      use_bias=False)
                self.down_bn = bn(name + "down_bn")

        def call(self, inputs, training=None):
            net = keras.activations.relu(self.bn1(self.conv1(inputs), training=training))
            net = self.bn2(self.conv2(net), training=training)
            identity = self.down_bn(self.down_conv(inputs), training=training) if self.down_sample else inputs
            return keras.activations.relu(net + identity)

        def get_config(self):
            return {**super().get_config(), "filters": self.filters, "strides": self.strides,
                    "down_sample": self.down_sample, "weight_decay": self.weight_decay}
    return CifarBlock


@subclass
def BasicBlock(keras, layers):  # noqa: N802 -- it stands for the class
    class BasicBlock(layers.Layer):
        """Article 004's ``BasicBlock``: convs with biases; the shortcut is a bare 1x1 conv when the stride is > 1."""

        def __init__(self, filters, stride=1, weight_decay=0.0, **kwargs):
            super().__init__(**kwargs)
            self.filters, self.stride, self.weight_decay = filters, stride, weight_decay
            name = self.name + SEP
            self.conv1 = conv(filters, 3, name + "conv1", weight_decay, strides=stride, padding="same")
            self.bn1 = bn(name + "bn1")
            self.conv2 = conv(filters, 3, name + "conv2", weight_decay, padding="same")
            self.bn2 = bn(name + "bn2")
            self.downsample = (conv(filters, 1, name + "downsample", weight_decay, strides=stride) if stride != 1
                               else None)

        def call(self, inputs, training=None):
            out = keras.activations.relu(self.bn1(self.conv1(inputs), training=training))
            out = self.bn2(self.conv2(out), training=training)
            identity = self.downsample(inputs) if self.downsample is not None else inputs
            return keras.activations.relu(out + identity)

        def get_config(self):
            return {**super().get_config(), "filters": self.filters, "stride": self.stride,
                    "weight_decay": self.weight_decay}
    return BasicBlock


def conv_bn_block(x, filters, kernel, stride, stage, block, identity, weight_decay):
    """Article 003's ``identity_block`` (``identity=True``) and ``convolutional_block``, with its names."""
    f1, f2, f3 = filters
    base = f"res{stage}{block}_branch"
    bn_base = f"bn{stage}{block}_branch"
    shortcut = x
    x = conv(f1, 1, base + "2a", weight_decay, strides=stride, padding="valid")(x)
    x = layers.ReLU(name=base + "2a" + SEP + "relu")(bn(bn_base + "2a")(x))
    x = conv(f2, kernel, base + "2b", weight_decay, padding="same")(x)
    x = layers.ReLU(name=base + "2b" + SEP + "relu")(bn(bn_base + "2b")(x))
    x = bn(bn_base + "2c")(conv(f3, 1, base + "2c", weight_decay, padding="valid")(x))
    if not identity:
        shortcut = bn(bn_base + "1")(conv(f3, 1, base + "1", weight_decay, strides=stride, padding="valid")(shortcut))
    x = layers.Add(name=f"res{stage}{block}")([x, shortcut])
    return layers.ReLU(name=f"res{stage}{block}" + SEP + "relu")(x)


# --- models -------------------------------------------------------------------------------------------

@subclass
def ResNet18Cifar(keras, layers):  # noqa: N802 -- it stands for the class
    class ResNet18Cifar(keras.Model):
        """Article 000's ``Resnet18``: stem conv-BN-ReLU, four stages of two CifarBlocks, global pool, logits."""

        def __init__(self, num_classes, weight_decay=0.0, **kwargs):
            super().__init__(**kwargs)
            self.num_classes, self.weight_decay = num_classes, weight_decay
            self.stem_conv = conv(64, 3, "stem" + SEP + "conv", weight_decay, padding="same", use_bias=False)
            self.stem_bn = bn("stem" + SEP + "bn")
            self.blocks = [CifarBlock(filters, strides=1 if s == 1 or b > 1 else 2, down_sample=s > 1 and b == 1,
                                      weight_decay=weight_decay, name=SEP.join([f"layer{s}", f"block_{b}"]))
                           for s, filters in enumerate(STAGES, 1) for b in (1, 2)]
            self.pool = layers.GlobalAveragePooling2D(name="pool5")
            self.logits = head(num_classes, weight_decay)

        def call(self, inputs, training=None):
            net = keras.activations.relu(self.stem_bn(self.stem_conv(inputs), training=training))
            for block in self.blocks:
                net = block(net, training=training)
            return self.logits(self.pool(net))

        def get_config(self):
            return {"num_classes": self.num_classes, "weight_decay": self.weight_decay, "name": self.name}
    return ResNet18Cifar


@subclass
def ResNet18(keras, layers):  # noqa: N802 -- it stands for the class
    class ResNet18(keras.Model):
        """Article 004's ``ResNet([2, 2, 2, 2])``: VALID 3x3 stem, BN, ReLU, 2x2/1 max-pool, BasicBlocks, logits."""

        def __init__(self, num_classes, layer_dims=(2, 2, 2, 2), weight_decay=0.0, **kwargs):
            super().__init__(**kwargs)
            self.num_classes, self.layer_dims, self.weight_decay = num_classes, list(layer_dims), weight_decay
            self.stem_conv = conv(64, 3, "stem" + SEP + "conv", weight_decay, padding="valid")
            self.stem_bn = bn("stem" + SEP + "bn")
            self.stem_pool = layers.MaxPooling2D(2, strides=1, padding="same", name="stem" + SEP + "pool")
            self.blocks = [BasicBlock(filters, stride=2 if s > 1 and b == 1 else 1, weight_decay=weight_decay,
                                      name=SEP.join([f"layer{s}", f"block_{b}"]))
                           for s, (filters, count) in enumerate(zip(STAGES, self.layer_dims), 1)
                           for b in range(1, count + 1)]
            self.gap = layers.GlobalAveragePooling2D(name="pool5")
            self.fc = head(num_classes, weight_decay)

        def call(self, inputs, training=None):
            x = self.stem_pool(keras.activations.relu(self.stem_bn(self.stem_conv(inputs), training=training)))
            for block in self.blocks:
                x = block(x, training=training)
            return self.fc(self.gap(x))

        def get_config(self):
            return {"num_classes": self.num_classes, "layer_dims": self.layer_dims, "weight_decay": self.weight_decay,
                    "name": self.name}
    return ResNet18


# stage: (filters, blocks, stride of its convolutional block)
RESNET50_STAGES = {2: ([64, 64, 256], 3, 1), 3: ([128, 128, 512], 4, 2), 4: ([256, 256, 1024], 6, 2),
                   5: ([512, 512, 2048], 3, 2)}


def resnet50_keras(num_classes, input_shape, weight_decay, name="resnet50_keras"):
    images = keras.Input(shape=input_shape, name="images")
    x = layers.ZeroPadding2D(3, name="conv1" + SEP + "pad")(images)
    x = conv(64, 7, "conv1", weight_decay, strides=2)(x)
    x = layers.ReLU(name="conv1" + SEP + "relu")(bn("bn_conv1")(x))
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    for stage, (filters, blocks, stride) in RESNET50_STAGES.items():
        for b in range(blocks):
            x = conv_bn_block(x, filters, 3, stride if b == 0 else 1, stage, "abcdef"[b], b > 0, weight_decay)
    x = layers.AveragePooling2D(2, padding="same", name="pool5")(x)
    x = layers.Flatten(name="flatten")(x)
    return keras.Model(images, head(num_classes, weight_decay)(x), name=name)


# --- registered builders ------------------------------------------------------------------------------

def subclassed(model_class):
    """The article's subclassed model as a builder like ``resnet50_keras``: made, then built for ``input_shape`` by
    calling it on a symbolic input (Keras 3's ``Model.build`` does not build the layers a subclass makes)."""
    def make(num_classes, input_shape, weight_decay, name):
        model = model_class(num_classes, weight_decay=weight_decay, name=name)
        model(keras.Input(shape=input_shape))
        return model
    return make


NETS = {"resnet18_cifar": subclassed(ResNet18Cifar), "resnet18": subclassed(ResNet18),
        "resnet50_keras": resnet50_keras}


@register_model(*NETS)
def resnets_keras(name, num_classes, input_shape, weight_decay=None):
    """``NETS[name]`` for ``input_shape``, named ``name`` (the table's weight decay, 0)."""
    return NETS[name](num_classes, input_shape, weight_decay, name)
