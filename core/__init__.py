"""core: what the two halves share that is not data (docs/DESIGN.md, "Who owns what").

* ``core.errors``: ``UserError`` and ``run_cli``, the one-line-and-exit-2 contract of every script;
* ``core.quiet``: TensorFlow started without its C++ log lines (``TF_LOGS=1`` shows them), ``hidden_stderr``;
* ``core.run_dir``: the run directory: its file layout, declared once; the typed run record (``Run``) that
  ``run.json`` holds; the lock, the leftovers of a killed save, the ``latest`` link, ``curves.png``;
* ``core.checkpoints``: the naming rule between the halves; reading any checkpoint as ``{name: array}``;
  choosing what a model takes from one;
* ``core.models``: the one model table (default and smallest input size, source, family, settings) and the
  ``Registry`` each half keeps its builders in;
* ``core.metrics``: evaluation arithmetic on numpy arrays (top-1, top-k, per class, confusion matrix), its
  report and its picture;
* ``core.lite``: prediction with LiteRT on decoded pixel arrays (no TensorFlow).

Importing ``core`` or any of its modules imports nothing else of the project and no TensorFlow (those that
read a TensorFlow checkpoint import it inside the function that needs it); tests/test_layout.py checks it.
"""
