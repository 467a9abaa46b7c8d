"""The book as one archive a reader can run: chapters, ``lib``, the requirements, a README.

Built into the site by :mod:`tools.sphinx_book` (``cross-entropy-executed.zip`` at the site's
root, linked from every page's footer and from the page "Run the book yourself"), and also
``python -m tools.archive OUT.zip`` from the repository root.

The archive holds what a chapter needs to run and nothing else: the notebooks (with their
stored outputs, so a reader can compare), ``lib``, ``pyproject.toml`` and ``conftest.py`` (pytest's
settings), ``requirements.txt`` (which installs ``lib`` in editable mode), and the committed
benchmark results that the GPU chapter reads. Its files sit in one top-level folder, ``cross-entropy-executed/``.
"""

import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAME = "cross-entropy-executed"
#: What goes in, relative to the repository root: folders (every file below, caches left out) and files.
CONTENTS = ["chapters", "lib", "benchmarks/results", "conftest.py", "pyproject.toml", "requirements.txt"]
SKIPPED = ("__pycache__", ".ipynb_checkpoints", ".pyc")

README = """\
# Cross-Entropy, Executed: run the book yourself

Every chapter of the book is a notebook in `chapters/`; they import the small library `lib`
that this folder also holds. With Python 3.10 or newer, in this folder:

    python3 -m venv .venv
    .venv/bin/python -m pip install -r requirements.txt
    .venv/bin/jupyter lab chapters/

(On Windows: `.venv\\Scripts\\python -m pip install -r requirements.txt`, then
`.venv\\Scripts\\jupyter lab chapters`.) On Linux, PyPI's torch is the CUDA build, several GB;
on a machine without a GPU, add `--extra-index-url https://download.pytorch.org/whl/cpu` to
the install command for the CPU build. The printed numbers are the same.

To check that your machine prints exactly the numbers stored in the notebooks:

    .venv/bin/python -m pytest --nbval chapters/

Each chapter runs on the GPU when PyTorch sees one; `CEE_DEVICE=cpu` chooses the CPU.
"""


def files():
    """The repository files that go into the archive, sorted."""
    found = []
    for entry in CONTENTS:
        path = ROOT / entry
        candidates = sorted(path.rglob("*")) if path.is_dir() else [path]
        found += [p for p in candidates if p.is_file() and not any(s in p.as_posix() for s in SKIPPED)]
    return found


def write(target):
    """Write the archive to ``target`` and return its path."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{NAME}/README.md", README)
        for path in files():
            archive.write(path, f"{NAME}/{path.relative_to(ROOT).as_posix()}")
    return target


if __name__ == "__main__":
    print(write(sys.argv[1] if len(sys.argv) > 1 else f"{NAME}.zip"))
