"""Re-execute chapter notebooks in place: the one way the book's outputs get recorded.

    python -m tools.reexecute                       # every chapter
    python -m tools.reexecute chapters/11_entropy.ipynb

Each notebook runs top to bottom in a fresh kernel of the current environment, with its own
folder as working directory (as nbval and Jupyter Book run it). Then the metadata is
normalised so that a diff shows only what changed in the outputs, and the guards of
:mod:`tools.guards` run: a notebook that fails them is not written.
"""

import argparse
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tools import guards

#: Cell metadata that means something to the book: tags (raises-exception, expect-stderr) and
#: MyST-NB's figure caption, label and alt text.
KEPT_CELL_METADATA = ("tags", "mystnb")
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def execute(path, timeout=600):
    """Execute the notebook at ``path`` in a fresh kernel and return it, normalised."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(Path(path).parent)}},
        allow_errors=False,  # cells tagged raises-exception may raise; any other error stops the run
    )
    client.execute()
    return normalise(notebook)


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
            cell.outputs = coalesce_streams(cell.outputs)
            for output in cell.outputs:
                if "metadata" in output:
                    output.metadata = nbformat.from_dict(
                        {k: v for k, v in output.metadata.items() if k != "needs_background"}
                    )
    notebook.nbformat, notebook.nbformat_minor = 4, 5
    return notebook


def coalesce_streams(outputs):
    """Merge consecutive outputs to the same stream, which the kernel may split at random."""
    merged = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (output.output_type == "stream" and previous is not None
                and previous.output_type == "stream" and previous.name == output.name):
            previous.text += output.text
        else:
            merged.append(output)
    return merged


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every chapter")
    args = parser.parse_args(argv)
    failed = False
    for path in args.notebooks or guards.chapter_notebooks():
        notebook = execute(path)
        problems = guards.check(notebook)
        if problems:
            failed = True
            print(f"{path}: not written, the guards found:", *problems, sep="\n  ")
            continue
        nbformat.write(notebook, path)
        print(f"{path}: executed and written")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
