"""Check (or fix) the line anchors of the docs: ``python scripts/doc_anchors.py [--fix] [DOC ...]``.

A link such as ``[`depth_filling`](../legacy/resnet.py#L61)`` must point at the first line that defines the
symbol in its text (``def depth_filling``, ``class DepthFilling``, ``NAME =``), or, for a symbol the file does
not define, the first line that mentions it. ``--fix`` moves each anchor there; without it, every stale anchor
is listed and the exit status is 2.
"""

import argparse
import os
import re
from functools import partial

from core import files
from core.errors import UserError, run_cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINK = re.compile(r"\[`([^`]+)`\]\(([^)#]+\.py)#L(\d+)\)")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="doc_anchors.py", description=__doc__.split("\n\n", 1)[1].strip())
    p.add_argument("docs", nargs="*", metavar="DOC", default=[os.path.join(REPO, "docs", "MIGRATION.md")],
                   help="markdown files to check (default: docs/MIGRATION.md)")
    p.add_argument("--fix", action="store_true", help="rewrite stale anchors in place instead of failing")
    return p.parse_args(argv)


def symbol_line(lines, symbol):
    """The 1-based line defining ``symbol`` (the last dotted part), else the first mentioning it; None if absent."""
    name = symbol.split(".")[-1].rstrip("()")
    definition = re.compile(rf"^\s*(def|class)\s+{re.escape(name)}\b|^\s*{re.escape(name)}\s*=")
    for pattern in (definition.search, lambda line: name in line):
        for number, line in enumerate(lines, 1):
            if pattern(line):
                return number
    return None


def check(doc, fix=False):
    """The stale anchors of ``doc`` as ``(symbol, path, line)``; with ``fix``, rewrite them."""
    with open(doc, encoding="utf-8") as f:
        text = f.read()
    stale, sources = [], {}

    def visit(match):
        symbol, target, number = match.group(1), match.group(2), int(match.group(3))
        path = os.path.normpath(os.path.join(os.path.dirname(doc), target))
        if path not in sources:
            if not os.path.exists(path):
                raise UserError(f"{doc}: link to {target}, which does not exist")
            with open(path, encoding="utf-8") as f:
                sources[path] = f.read().splitlines()
        found = symbol_line(sources[path], symbol)
        if found is None:
            raise UserError(f"{doc}: `{symbol}` is nowhere in {target}")
        if found == number:
            return match.group(0)
        stale.append((symbol, target, number))
        return f"[`{symbol}`]({target}#L{found})"

    fixed = LINK.sub(visit, text)
    if fix and fixed != text:
        with files.atomic(doc) as tmp, open(tmp, "w", encoding="utf-8") as f:
            f.write(fixed)
    return stale


def main(argv=None):
    args = parse_args(argv)
    bad = 0
    for doc in args.docs:
        for symbol, target, number in check(doc, fix=args.fix):
            print(f"{doc}: `{symbol}` is not on line {number} of {target}{' (fixed)' if args.fix else ''}")
            bad += 1
    if bad and not args.fix:
        raise UserError(f"{bad} stale anchor(s); run scripts/doc_anchors.py --fix")
    return 0


command = partial(run_cli, main)  # the command: scripts/<name>.py, python -m cli.<name>, the console entry point


if __name__ == "__main__":
    command()
