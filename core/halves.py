"""The halves, and what the scripts need of each: the half protocol (docs/DESIGN.md §1).

A half is a package (``legacy``, ``modern``, ``keras3``) that provides these names, each in the module
``PROTOCOL`` says (``""``: the package itself); a new half joins by writing them and adding its package to
``HALVES``:

* ``build(name, ...)``, ``list_models()``: the model registry (the half's own input and output conventions);
* ``train.train(run, records_dir, progress=True, init_from=None)``: train the ``core.run_dir.Run`` in its folder
  from flowio's records, or resume it at the exact batch; ``init_from`` (``{"checkpoint", "exclude_scopes"}``)
  fine-tunes from a checkpoint of any half or tf_slim's;
* ``train.deploy(num_clones=1, clone_on_cpu=False, peer_timeout=..., replicas=None)``: place the process's clones
  (train.py's ``--num-clones``, slim's model_deploy) and join the cluster ``TF_CONFIG`` describes (waiting at most
  ``peer_timeout`` seconds for the other tasks), before TensorFlow runs anything; return whether this process
  writes the run (False on the other workers of a cluster); ``replicas`` (``core.cluster.Replicas``, slim's
  replica flags) asks for parameter servers; a half that does not train on several machines refuses
  ``TF_CONFIG`` here with a ``UserError`` (``one_machine``), one that does not deploy clones refuses
  ``num_clones`` > 1, and one without parameter servers refuses ``replicas``' flags (``no_replicas``);
* ``weights.Predictor(run)``: a callable, float32 images ``[N, S, S, 3]`` preprocessed as the run records ->
  logits ``[N, classes]``, from the run's best (else last) checkpoint;
* ``weights.variable_shapes(run)``: ``{TF1 name: shape}`` of the run's model, its auxiliary head included;
* ``weights.write_weights(run, values, source)``: the run's best checkpoint from ``{TF1 name: array}``;
  returns ``(how many variables it holds, [(checkpoint layer, model layer)] left initialised)``;
* ``weights.read_weights(run)``: ``{TF1 name: array}`` of the run's best (else last) checkpoint, in whatever files
  the half writes; ``core.checkpoints.read`` of a run directory calls it, so ``--init-from`` and
  ``convert_checkpoint.py`` take runs of every half.

``half(impl)`` gathers them. It imports the half (and TensorFlow with it) only when called: importing core
imports no TensorFlow, and ``tests/test_layout.py`` takes ``HALVES`` as the packages this module loads.
"""

import importlib
import os
from types import SimpleNamespace

from core.errors import UserError

HALVES = ("legacy", "modern", "keras3")
# protocol name -> the half's module holding it
PROTOCOL = {"build": "", "list_models": "", "train": "train", "deploy": "train", "Predictor": "weights",
            "variable_shapes": "weights", "write_weights": "weights", "read_weights": "weights"}


def one_machine(impl):
    """``train.deploy``'s answer for a half that trains on one machine: True, with ``TF_CONFIG`` refused."""
    if os.environ.get("TF_CONFIG"):
        raise UserError(f"TF_CONFIG is set, and multi-worker training is the modern half's (tf.distribute);"
                        f" unset TF_CONFIG to train {impl} on one machine")
    return True


def no_replicas(impl, replicas):
    """``train.deploy``'s refusal of slim's replica flags (``replicas``, a ``core.cluster.Replicas`` or None) and of
    a ``TF_CONFIG`` ps job, for a half without parameter servers."""
    from core import cluster
    flags = replicas.given() if replicas is not None else []
    if flags or "ps" in cluster.config().get("cluster", {}):
        what = " ".join(flags) if flags else "a ps job in TF_CONFIG"
        raise UserError(f"{what}: parameter servers are the legacy half's (tf.train.Server, replica_device_setter)"
                        f" and the modern half's (ParameterServerStrategy); {impl} does not train with them")


def half(impl):
    """The half ``impl`` (one of HALVES) as a namespace of its protocol's names (and ``name``)."""
    if impl not in HALVES:
        raise ValueError(f"unknown half {impl!r}: one of {', '.join(HALVES)}")
    modules = {m: importlib.import_module(f"{impl}.{m}" if m else impl) for m in set(PROTOCOL.values())}
    return SimpleNamespace(name=impl, **{n: getattr(modules[m], n) for n, m in PROTOCOL.items()})
