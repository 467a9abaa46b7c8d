"""The error-message index is generated from the chapters and lists every error they show."""

import copy
import json
from pathlib import Path

from tools import error_index, guards

ROOT = Path(__file__).resolve().parent.parent


def stored_errors():
    """Every error output stored in a raises-exception cell of a chapter in the TOC."""
    errors = []
    for chapter in error_index.toc_chapters(ROOT):
        notebook = json.loads((ROOT / f"{chapter}.ipynb").read_text(encoding="utf-8"))
        for cell in notebook["cells"]:
            if guards.RAISES in cell.get("metadata", {}).get("tags", []):
                errors += [(o["ename"], o["evalue"]) for o in cell["outputs"] if o["output_type"] == "error"]
    return errors


def test_every_chapter_in_the_toc_is_scanned():
    assert len(error_index.toc_chapters(ROOT)) == len(guards.chapter_notebooks())


def test_lists_every_raises_exception_output():
    entries = error_index.entries(ROOT)
    assert sorted((e.ename, e.message) for e in entries) == sorted(stored_errors())
    assert len(entries) >= 10
    page = error_index.render(entries)
    for ename, message in stored_errors():
        assert f"## {ename}" in page and message in page


def test_adding_a_cell_adds_an_entry():
    path = ROOT / "chapters" / "35_targets.ipynb"
    notebook = json.loads(path.read_text(encoding="utf-8"))
    before = error_index.notebook_entries(notebook, "chapters/35_targets")
    extra = copy.deepcopy(next(c for c in notebook["cells"] if guards.RAISES in c["metadata"].get("tags", [])))
    extra["outputs"] = [{"output_type": "error", "ename": "ValueError", "evalue": "a brand-new message",
                         "traceback": []}]
    notebook["cells"].append({"cell_type": "markdown", "metadata": {}, "source": "## A new section"})
    notebook["cells"].append(extra)
    after = error_index.notebook_entries(notebook, "chapters/35_targets")
    assert len(after) == len(before) + 1
    assert after[-1].message == "a brand-new message"
    assert after[-1].anchor == "a-new-section"
    assert "chapters/35_targets.ipynb#a-new-section" in error_index.render(after)


def test_slugs_follow_myst_and_stay_unique():
    notebook = {"cells": [
        {"cell_type": "markdown", "source": "# Title\n\n## `log(softmax(x))` versus `log_softmax(x)`"},
        {"cell_type": "markdown", "source": "## Pitfalls\n\n### Images: $(N, C, H, W)$\n\n## Pitfalls"},
        {"cell_type": "code", "metadata": {"tags": [guards.RAISES]},
         "outputs": [{"output_type": "error", "ename": "E", "evalue": "m", "traceback": []}]},
    ]}
    (entry,) = error_index.notebook_entries(notebook, "chapters/x")
    assert entry.chapter_title == "Title"
    assert entry.anchor == "pitfalls-1"
    slugs = []
    found = list(error_index._headings(error_index.MarkdownIt("commonmark").use(error_index.dollarmath_plugin),
                                       notebook["cells"][0]["source"], slugs))
    assert found[1][2] == "logsoftmaxx-versus-log_softmaxx"
