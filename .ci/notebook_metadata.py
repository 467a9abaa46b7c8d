"""Check that chapter notebooks are stored in the form tools.reexecute writes: no stray metadata.

    python .ci/notebook_metadata.py [--fix] [NOTEBOOK ...]     # default: every chapter

A notebook saved by Jupyter gains metadata that changes between machines and runs (kernel
versions, execution timestamps, widget state, random cell ids). The book stores only what
``tools.reexecute.normalise`` keeps: the kernelspec, the language name, each cell's tags and
figure metadata, ids c000, c001, ... and merged stream outputs. ``--fix`` writes that form
back; it never removes an output (normalise keeps every output; it only merges consecutive
outputs to the same stream). The pre-commit hook runs the check without ``--fix``.
"""

import argparse
import copy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nbformat  # noqa: E402

from tools import guards, reexecute  # noqa: E402


def normalised_text(text):
    """Return the text of the notebook ``text`` as tools.reexecute would write it."""
    notebook = nbformat.reads(text, as_version=4)
    return nbformat.writes(reexecute.normalise(copy.deepcopy(notebook))) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fix", action="store_true", help="write the normalised form back (outputs are kept)")
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every chapter")
    args = parser.parse_args(argv)
    failed = False
    for path in args.notebooks or guards.chapter_notebooks():
        text = path.read_text(encoding="utf-8")
        expected = normalised_text(text)
        if text == expected:
            continue
        if args.fix:
            path.write_text(expected, encoding="utf-8")
            print(f"{path}: metadata normalised (outputs kept)")
        else:
            failed = True
            print(f"{path}: not in the normalised form of tools.reexecute (stray metadata, cell ids or split "
                  f"streams); run `python .ci/notebook_metadata.py --fix {path}` or re-record it with "
                  f"`python -m tools.reexecute {path}`")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
