"""The command lines (docs/DESIGN.md §6): one module per command, each ``main(argv)`` parsing its arguments and
calling the packages, ``run()`` its entry point. ``scripts/<name>.py`` runs ``cli.<name>`` from a checkout, and
setup.cfg installs the user-facing ones as console commands. A ``main`` imports nothing that imports TensorFlow
before it has parsed its arguments (``--help`` answers at once, and a half's backend can be chosen first)."""
