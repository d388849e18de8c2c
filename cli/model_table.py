"""The README's table of models, from the registry: ``python scripts/model_table.py [--write | --check] [README]``.

For every registered model: its parameter count at 10 classes and, for tf_slim's nets, at the classes of
research/slim's checkpoints (1000, or 1001 with a background class) — modern's build with any auxiliary head,
which the tests hold equal to legacy's and to published counts —, its default input size, the sizes it takes,
its default preprocessing recipe, and where it comes from. Without flags the table is printed; ``--write``
replaces the table between the README's ``<!-- models -->`` markers, ``--check`` fails (exit 2) when the README's
table is not this one.
"""

import argparse
import os
from functools import partial

from core import files, models
from core.errors import UserError, run_cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEGIN, END = "<!-- models -->", "<!-- /models -->"


def parse_args(argv):
    p = argparse.ArgumentParser(prog="model_table.py", description=__doc__.split("\n\n", 1)[1].strip())
    p.add_argument("readme", nargs="?", default=os.path.join(REPO, "README.md"), metavar="README",
                   help="the markdown file holding the table (default: README.md)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="replace the table in README")
    mode.add_argument("--check", action="store_true", help="exit 2 if README's table is out of date")
    return p.parse_args(argv)


def built_count(name, classes):
    import modern
    return modern.build(name, classes, aux_logits=bool(models.aux_scopes(name))).count_params()


def table(count=built_count):
    """The markdown table; ``count(name, classes)`` gives a model's parameters (default: build it and count)."""
    rows = ["| model | parameters (10 classes) | (research/slim's classes) | default input | sizes | preprocessing"
            " | from |", "|---|---:|---:|---:|---:|---|---|"]
    for name in models.list_models():
        spec = models.spec(name)
        classes = spec.checkpoint_classes
        slim = "" if classes is None else f"{count(name, classes):,} ({classes})"
        sizes = f"{spec.min_size}-{spec.max_size}" if spec.max_size is not None else f"{spec.min_size}+"
        rows.append(f"| `{name}` | {count(name, 10):,} | {slim} | {spec.input_size} | {sizes} | {spec.preprocessing}"
                    f" | {spec.source} |")
    return "\n".join(rows)


def main(argv=None):
    args = parse_args(argv)
    from core.quiet import quiet_tensorflow
    quiet_tensorflow()
    text = table()
    if not (args.write or args.check):
        print(text)
        return 0
    with open(args.readme, encoding="utf-8") as f:
        readme = f.read()
    if BEGIN not in readme or END not in readme:
        raise UserError(f"{args.readme}: no {BEGIN} ... {END} markers to hold the table")
    head, rest = readme.split(BEGIN, 1)
    current, tail = rest.split(END, 1)
    if args.check:
        if current.strip() != text:
            raise UserError(f"{args.readme}: the model table is out of date; run scripts/model_table.py --write")
        return 0
    with files.atomic(args.readme) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(f"{head}{BEGIN}\n{text}\n{END}{tail}")
    return 0


command = partial(run_cli, main)  # the command: scripts/<name>.py, python -m cli.<name>, the console entry point


if __name__ == "__main__":
    command()
