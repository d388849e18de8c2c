"""The layer kit: what the Keras nets of ``kerasnets/`` are built from, passed in by the half that builds them.

A net here is written once against ``keras`` and ``layers`` from this module, which stand for the kit of the half
building it: ``modern/kit.py``'s (tf_keras, its fused ``BatchNormalization``, ``DepthFilling`` in tf ops) or
``keras3/kit.py``'s (Keras 3, ``keras3.layers``' ``BatchNorm`` and ``DepthFilling`` in ``keras.ops``). A half's
``build`` runs the builder inside ``using(kit)``; outside it, these names refuse (a RuntimeError).

A kit holds:

* ``keras``: the Keras package (``Input``, ``Model``, ``regularizers``, ``initializers``, ``activations``);
* ``layers``: that package's layers, plus two that differ between the packages: ``BatchNorm`` (slim's
  ``batch_norm`` as TF1 runs it, the fused kernel's epsilon floor 1.001e-5 and unbiased moving variance; the
  arguments of ``BatchNormalization`` without ``fused``, with its defaults 0.99 / 1e-3) and ``DepthFilling``
  (the article's zero-padding of channels);
* ``name``: the package its subclassed layers are registered under for ``.keras`` files (``modern>CifarBlock``).

Subclassed blocks need their base class when the class statement runs: ``@subclass`` takes a function
``make(keras, layers) -> class`` and gives a name that, called, instantiates the class made for the kit in use
(made once per kit, registered as serializable under the kit's name). The class's methods use the ``keras`` and
``layers`` they were made with, so a model built once runs (``fit``, ``predict``) outside ``using``.
"""

import contextlib

_IN_USE = []


class Kit:
    """One half's layer kit: ``Kit("modern", tf_keras, BatchNorm=..., DepthFilling=...)``."""

    def __init__(self, name, keras, *, BatchNorm, DepthFilling):  # noqa: N803 -- they are layer classes
        self.name = name
        self.keras = keras
        self.layers = _Layers(keras.layers, {"BatchNorm": BatchNorm, "DepthFilling": DepthFilling})
        self._classes = {}

    def __repr__(self):
        return f"Kit({self.name!r})"


class _Layers:
    """A Keras layers namespace with the kit's own layers over it."""

    def __init__(self, base, own):
        self._base, self._own = base, own

    def __getattr__(self, attr):
        return self._own[attr] if attr in self._own else getattr(self._base, attr)


@contextlib.contextmanager
def using(kit):
    """Build with ``kit``'s layers in the block (nested: the innermost kit)."""
    _IN_USE.append(kit)
    try:
        yield kit
    finally:
        _IN_USE.pop()


def in_use():
    if not _IN_USE:
        raise RuntimeError("no layer kit in use: kerasnets' models are built by a half's build() (modern.build,"
                           " keras3.build), which passes its kit")
    return _IN_USE[-1]


class _Current:
    """``keras`` / ``layers`` of the kit in use, looked up at each attribute access."""

    def __init__(self, field):
        self._field = field

    def __getattr__(self, attr):
        return getattr(getattr(in_use(), self._field), attr)


keras = _Current("keras")
layers = _Current("layers")


def subclass(make):
    """Decorator over ``make(keras, layers) -> class``: calling the result instantiates the class made for the kit
    in use."""
    def instantiate(*args, **kwargs):
        return of(in_use())(*args, **kwargs)

    def of(kit):
        if make not in kit._classes:
            cls = make(kit.keras, kit.layers)
            kit._classes[make] = kit.keras.saving.register_keras_serializable(package=kit.name)(cls)
        return kit._classes[make]

    instantiate.__name__ = instantiate.__qualname__ = make.__name__
    instantiate.__doc__ = make.__doc__
    return instantiate
