"""A porter's own port checked against its TF1 original (``scripts/check_port.py``; docs/MIGRATION.md, "Checking
your own port"): a slim model function and the tf_keras or Keras 3 model written for it, compared stage by stage — the
variables by the naming rule, the logits, each end point (naming the first that differs, and what probing says
caused it), one training step — on values chosen to expose the usual mistakes.

    from portcheck import check, format_report
    report = check(my_slim_net, my_keras_net, image_size=64, num_classes=10)
    assert report["passed"], format_report(report)

Above the halves (it builds a TF1 graph and a Keras model): it may import core, kerasnets, legacy, modern and
keras3 (their optimizers, for the training step), and nothing imports it but cli/ and tests/.
"""

from portcheck.check import TOLERANCE, check, format_report

__all__ = ["check", "format_report", "TOLERANCE"]
