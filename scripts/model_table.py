"""The README's table of models, from the registry: ``python scripts/model_table.py [--write | --check] [README]``.

For every registered model: its parameter count at 10 classes and its default input (modern's build, which
tests/test_resnet.py and tests/test_zoo.py hold equal to legacy's and to the articles'), and the article it
comes from. Without flags the table is printed; ``--write`` replaces the table between the README's
``<!-- models -->`` markers, ``--check`` fails (exit 2) when the README's table is not this one.
"""

import argparse
import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from core import models  # noqa: E402
from core.errors import UserError, run_cli  # noqa: E402

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


def table(count=None):
    """The markdown table; ``count(name)`` gives a model's parameters (default: build it, count at 10 classes)."""
    if count is None:
        import modern
        count = lambda name: modern.build(name, 10).count_params()  # noqa: E731
    rows = ["| model | parameters (10 classes) | default input | from |", "|---|---:|---:|---|"]
    for name in models.list_models():
        spec = models.spec(name)
        rows.append(f"| `{name}` | {count(name):,} | {spec.input_size}x{spec.input_size} | {spec.source} |")
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
    with open(args.readme + ".tmp", "w", encoding="utf-8") as f:
        f.write(f"{head}{BEGIN}\n{text}\n{END}{tail}")
    os.replace(args.readme + ".tmp", args.readme)
    return 0


if __name__ == "__main__":
    run_cli(main)
