"""Re-execute chapter notebooks in place: the one way the book's outputs get recorded.

    python -m tools.reexecute                       # every chapter
    python -m tools.reexecute chapters/11_entropy.ipynb

Each notebook runs top to bottom in a fresh kernel of this interpreter (``sys.executable``,
the kernel nbval's ``--nbval-current-env`` starts; a ``python3`` kernelspec installed
elsewhere changes nothing), with its own folder as working directory (as nbval and Jupyter
Book run it), and with nbclient merging each cell's stream outputs (as nbval does before it
compares). Then the metadata is normalised so that a diff shows only what changed in the
outputs, and the guards of :mod:`tools.guards` run: a notebook that fails them is not written.

The same run records, through :mod:`lib._audit`, every value :mod:`lib.display` prints; the
tool writes them with the hash of what they depend on to ``tests/rounding/<chapter>.json``,
which ``tests/test_rounding.py`` checks (:mod:`tools.rounding_audit`).
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import nbformat
from jupyter_client import KernelManager
from nbclient import NotebookClient

from tools import guards

# nbval, lib and torch are imported where they are used: the pre-commit hook that checks the
# normalised form (.ci/notebook_metadata.py) imports this module with nbformat and nbclient only.

#: Cell metadata that means something to the book: tags (raises-exception, expect-stderr) and
#: MyST-NB's figure caption, label and alt text.
KEPT_CELL_METADATA = ("tags", "mystnb")
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


class ThisInterpreter(KernelManager):
    """A kernel manager whose kernel runs ``sys.executable``, as nbval's ``--nbval-current-env``."""

    def _kernel_spec_manager_default(self):
        from nbval.kernel import NbvalKernelspecManager

        return NbvalKernelspecManager(data_dir=self.data_dir)


def client(notebook, path, timeout=600):
    """An nbclient for ``notebook`` (read from ``path``) in a fresh kernel of this interpreter."""
    from nbval.kernel import CURRENT_ENV_KERNEL_NAME

    return NotebookClient(
        notebook,
        timeout=timeout,
        kernel_manager_class=ThisInterpreter,
        kernel_name=CURRENT_ENV_KERNEL_NAME,
        coalesce_streams=True,  # the kernel may split a stream at random; nbval merges them too
        resources={"metadata": {"path": str(Path(path).parent)}},
        allow_errors=False,  # cells tagged raises-exception may raise; any other error stops the run
    )


def execute(path, timeout=600):
    """Execute the notebook at ``path`` in a fresh kernel and return it, normalised."""
    return execute_and_record(path, timeout)[0]


def execute_and_record(path, timeout=600):
    """Execute the notebook at ``path``; return it normalised and the audit's records of its values."""
    from lib import _audit

    notebook = nbformat.read(path, as_version=4)
    code_cell = {}
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            code_cell[index] = len(code_cell) + 1
    with tempfile.TemporaryDirectory() as folder:
        records = Path(folder) / "audit.jsonl"
        records.touch()

        def mark(cell, cell_index):  # before the cell is sent to the kernel, which appends its values
            with records.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(["cell", code_cell[cell_index]]) + "\n")

        runner = client(notebook, path, timeout)
        runner.on_cell_execute = mark
        runner.execute(env={**os.environ, _audit.ENV_VAR: str(records)})
        lines = records.read_text(encoding="utf-8").splitlines()
    measured, cell = [], 0
    for line in map(json.loads, lines):
        if line[0] == "cell":
            cell = line[1]
        else:
            measured.append([cell, *line])
    return normalise(notebook), measured


def normalise(notebook):
    """Strip metadata that changes between runs and machines; keep outputs, tags and figure captions."""
    notebook.metadata = nbformat.from_dict(
        {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    )
    for index, cell in enumerate(notebook.cells):
        kept = {key: cell.metadata[key] for key in KEPT_CELL_METADATA if cell.metadata.get(key)}
        cell.metadata = nbformat.from_dict(kept)
        cell.id = f"c{index:03d}"
        if cell.cell_type == "code":
            for output in cell.outputs:
                if "metadata" in output:
                    output.metadata = nbformat.from_dict(
                        {k: v for k, v in output.metadata.items() if k != "needs_background"}
                    )
    notebook.nbformat, notebook.nbformat_minor = 4, 5
    return notebook


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every chapter")
    args = parser.parse_args(argv)
    failed = False
    for path in args.notebooks or guards.chapter_notebooks():
        notebook, records = execute_and_record(path)
        problems = guards.check(notebook)
        if problems:
            failed = True
            print(f"{path}: not written, the guards found:", *problems, sep="\n  ")
            continue
        nbformat.write(notebook, path)
        from tools import rounding_audit

        rounding_audit.store(path, records)
        print(f"{path}: executed and written, with its rounding audit record")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
