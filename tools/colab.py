"""The book's repository (``repository:`` in ``_config.yml``) and the chapters' Colab cell.

One place names the repository: the top-level ``repository:`` of ``_config.yml`` (Jupyter
Book's own keys ``url``, ``branch``, ``path_to_book``). Empty ``url`` (the default): the site
shows no repository, issue or Colab button and the chapters carry no Colab cell. A GitHub
``url``: :mod:`tools.sphinx_book` shows the repository and issue buttons on every page and a
Colab launch button on every chapter, and this module puts a *Colab cell* in every chapter.

A chapter opened on Colab from GitHub is the notebook alone: no ``lib``, no benchmark results.
The Colab cell, just before a chapter's first code cell, fetches the repository (a shallow
``git clone`` of the branch) into the home folder, puts it first on ``sys.path`` so that
``import lib`` finds it, and makes the chapter's folder the working directory (the GPU chapter
reads ``../benchmarks/results``). It runs only where ``"google.colab"`` is imported, which is
Colab alone; anywhere else (Jupyter, nbval, CI) it does nothing and prints nothing. Nothing is
installed with pip: ``lib`` needs torch, numpy and matplotlib, which Colab provides, so Colab
keeps its own torch release (not the ``torch==2.13.0`` that ``requirements.txt`` pins and the
stored outputs were made with).

The cell is tagged ``remove-cell`` (not on the site) and ``colab-setup`` (how this module finds
it). Adding it shifts the execution counts of the chapter's code cells up by one, as a fresh
top-to-bottom run would number them; removing it shifts them back, so the notebook guards
(counts 1..N) hold either way.

``python -m tools.colab`` writes the cells to match ``_config.yml`` (adds, updates or removes
them); ``python -m tools.colab --check`` lists the chapters that do not match and exits 1.
``tests/test_buttons.py`` runs the check, and the book's build warns (an error under
``--warningiserror``) when a repository is set and a chapter's cell does not match it.
"""

import copy
import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
COLAB_URL = "https://colab.research.google.com"
TAG = "colab-setup"
REMOVE = "remove-cell"
CELL_ID = "colab-setup"
#: What Colab can open: a public GitHub repository.
GITHUB = re.compile(r"https://github\.com/(?P<owner>[A-Za-z0-9_.-]+)/(?P<name>[A-Za-z0-9_.-]+?)(?:\.git)?/?")

SOURCE = '''\
# On Google Colab only: fetch the book's repository (the library lib, the benchmark results),
# import lib from it and run this chapter from its chapters/ folder. Anywhere else this cell
# does nothing. Written by tools/colab.py from _config.yml (repository:); do not edit it here.
import sys

if "google.colab" in sys.modules:
    import os
    import pathlib
    import subprocess

    _clone = pathlib.Path.home() / {folder!r}
    if not _clone.exists():
        subprocess.run(["git", "clone", "--quiet", "--depth", "1", "--branch", {branch!r},
                        {url!r}, str(_clone)], check=True)
    _book = _clone / {path!r}
    if str(_book) not in sys.path:
        sys.path.insert(0, str(_book))
    os.chdir(_book / "chapters")
'''


class RepositoryError(ValueError):
    """``repository:`` in ``_config.yml`` names something Colab cannot open."""


def repository(root=ROOT):
    """The repository of ``_config.yml`` as a dict (url, owner, name, branch, path), or None.

    ``path`` is ``path_to_book`` (the book's folder in the repository), "" for the root.
    """
    config = yaml.safe_load((Path(root) / "_config.yml").read_text(encoding="utf-8")) or {}
    settings = config.get("repository") or {}
    url = (settings.get("url") or "").strip()
    if not url:
        return None
    match = GITHUB.fullmatch(url)
    if not match:
        raise RepositoryError(
            f"repository.url in _config.yml is {url!r}: it must be https://github.com/OWNER/REPO "
            "(Colab opens notebooks from GitHub), or empty for no repository buttons")
    return {
        "url": f"https://github.com/{match['owner']}/{match['name']}",
        "owner": match["owner"],
        "name": match["name"],
        "branch": (settings.get("branch") or "main").strip(),
        "path": (settings.get("path_to_book") or "").strip().strip("/"),
    }


def colab_link(repo, docname):
    """The Colab address of the notebook ``docname`` (e.g. ``chapters/11_entropy``)."""
    path = f"{repo['path']}/{docname}" if repo["path"] else docname
    return f"{COLAB_URL}/github/{repo['owner']}/{repo['name']}/blob/{repo['branch']}/{path}.ipynb"


def theme_options(repo):
    """The sphinx-book-theme options for ``repo`` (None: every repository button off)."""
    if repo is None:
        return {"repository_url": "", "use_repository_button": False, "use_issues_button": False,
                "use_edit_page_button": False, "use_source_button": False, "launch_buttons": {}}
    return {
        "repository_url": repo["url"],
        "repository_branch": repo["branch"],
        "path_to_docs": repo["path"],
        "use_repository_button": True,
        "use_issues_button": True,
        # No "edit" or "show source" button: a chapter's source is notebook JSON, and two pages
        # (errors, status) are written by the build and are not in the repository at all.
        "use_edit_page_button": False,
        "use_source_button": False,
        "launch_buttons": {"colab_url": COLAB_URL},
    }


def cell_source(repo):
    return SOURCE.format(folder=repo["name"], branch=repo["branch"], url=repo["url"], path=repo["path"])


def setup_cell(repo):
    """The Colab cell for ``repo``, as stored in a notebook (execution count set by :func:`apply`)."""
    lines = cell_source(repo).splitlines(keepends=True)
    return {"cell_type": "code", "execution_count": None, "id": CELL_ID,
            "metadata": {"tags": [REMOVE, TAG]}, "outputs": [], "source": lines}


def _is_setup(cell):
    return TAG in cell.get("metadata", {}).get("tags", [])


def _shift(cells, delta):
    for cell in cells:
        if cell.get("cell_type") == "code" and cell.get("execution_count") is not None:
            cell["execution_count"] += delta
            for output in cell.get("outputs", []):
                if output.get("execution_count") is not None:
                    output["execution_count"] += delta


def apply(notebook, repo):
    """``notebook`` (the .ipynb JSON as a dict) with its Colab cell matching ``repo``: a new dict."""
    notebook = copy.deepcopy(notebook)
    cells = notebook["cells"]
    for cell in [c for c in cells if _is_setup(c)]:
        index = cells.index(cell)
        del cells[index]
        _shift(cells[index:], -1)
    if repo is not None:
        code = [i for i, c in enumerate(cells) if c.get("cell_type") == "code"]
        index = code[0] if code else len(cells)
        cell = setup_cell(repo)
        cell["execution_count"] = 1 if code and cells[code[0]].get("execution_count") is not None else None
        _shift(cells[index:], +1)
        cells.insert(index, cell)
    return notebook


def chapters(root=ROOT):
    return sorted((Path(root) / "chapters").glob("*.ipynb"))


def _dump(notebook):
    return json.dumps(notebook, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def mismatches(root=ROOT):
    """The chapters whose Colab cell does not match ``_config.yml`` (relative paths)."""
    repo = repository(root)
    wrong = []
    for path in chapters(root):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        if apply(notebook, repo) != notebook:
            wrong.append(path.relative_to(root).as_posix())
    return wrong


def write(root=ROOT):
    """Make every chapter's Colab cell match ``_config.yml``; return the chapters changed."""
    repo = repository(root)
    changed = []
    for path in chapters(root):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        updated = apply(notebook, repo)
        if updated != notebook:
            path.write_text(_dump(updated), encoding="utf-8")
            changed.append(path.relative_to(root).as_posix())
    return changed


def main(argv):
    if argv == ["--check"]:
        wrong = mismatches()
        for path in wrong:
            print(f"{path}: its Colab cell does not match repository: in _config.yml (run python -m tools.colab)")
        return 1 if wrong else 0
    if argv:
        print("usage: python -m tools.colab [--check]")
        return 2
    for path in write():
        print(f"updated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
