"""The keras3 half's models: ``kerasnets``' builders built with Keras 3's kit, on the process's backend.

    model = keras3.build("jianshu_resnet_50", num_classes=10)   # a keras.Model (Keras 3) that returns logits

``build`` takes what ``modern.build`` takes (``kerasnets.registry.build`` says what each argument means); the
layers are ``keras3.kit.KIT``'s.
"""

import functools

import kerasnets
from core.models import default_input_size  # noqa: F401 -- the half's API, from the one table
from keras3.kit import KIT

list_models = kerasnets.list_models
build = functools.partial(kerasnets.build, KIT)
