"""The error-message index is generated from the chapters and lists every error they show."""

import copy
import json
import re
from pathlib import Path

import torch

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


#: The messages readers search for (issue 13, item 7), as patterns, with the chapter that shows
#: each. A message whose chapter is not yet in the table of contents is required once it is.
REQUIRED = [
    (r"Expected target size \[[\d, ]+\], got \[[\d, ]+\]", "chapters/35_targets"),
    (r"only batches of spatial targets supported \(3D tensors\) but got targets of dimension: 4",
     "chapters/35_targets"),
    (r"expected target dtype to be Long or Byte, but got Float", "chapters/35_targets"),
    (r"0D or 1D target tensor expected, multi-target not supported", "chapters/35_targets"),
    (r"Target \d+ is out of bounds\.", "chapters/35_targets"),
    # tensors on different devices: the CPU build's form (the meta device stands for the other one)
    (r"Tensor on device \w+ is not on the expected device \w+!", "chapters/66_debugging"),
    (r"result type Float can't be cast to the desired output type Long", "chapters/61_multi_label"),
    (r"Using a target size \(.*\) that is different to the input size \(.*\)", "chapters/61_multi_label"),
]


def test_lists_the_messages_readers_search_for():
    chapters = error_index.toc_chapters(ROOT)
    page = error_index.render(error_index.entries(ROOT))
    listed = [line for line in page.splitlines() if line.startswith("- ") or line.startswith("  also shown as")]
    for pattern, chapter in REQUIRED:
        if chapter not in chapters:
            continue  # a planned chapter: required as soon as the table of contents has it
        assert any(re.search(pattern, line) for line in listed), f"the error index lacks {pattern!r} ({chapter})"
    assert {"chapters/35_targets", "chapters/66_debugging"} <= set(chapters)


def headline_messages(page):
    """The message of each item of the page (its first line), in order."""
    items = [line.rstrip()[2:] for line in page.splitlines() if line.startswith("- ")]
    return [item[3:-3] if item.startswith("`` ") else item[1:-1] for item in items]


def numbers_blanked(message):
    """The message with every run of digits, and every list of them, as ``#``: independent of the module."""
    return re.sub(r"#(?:\.#)?(?:e-?#)?(?:, #)*", "#", re.sub(r"-?\d+", "#", message))


def test_no_message_is_listed_twice():
    entries = error_index.entries(ROOT)
    page = error_index.render(entries)
    headlines = headline_messages(page)
    templates = [numbers_blanked(m) for m in headlines]
    assert len(templates) == len(set(templates)), sorted(t for t in templates if templates.count(t) > 1)
    # every message the chapters show is on the page exactly once, under the item of its template
    for message in {e.message for e in entries}:
        assert page[len(error_index.HEADER):].count(f"`{message}`") == 1, message
        assert numbers_blanked(message) in templates
    assert len(headlines) < len(entries)  # some messages are shown by more than one cell


def error_cell(ename, message):
    """A raises-exception cell that stored ``message``."""
    return {"cell_type": "code", "metadata": {"tags": [guards.RAISES]}, "outputs": [
        {"output_type": "error", "ename": ename, "evalue": message, "traceback": []}]}


def test_messages_that_differ_in_numbers_share_one_item():
    cell = error_cell
    notebook = {"cells": [
        {"cell_type": "markdown", "source": "# Title\n\n## One"},
        cell("IndexError", "Target 3 is out of bounds."), cell("IndexError", "Target 3 is out of bounds."),
        {"cell_type": "markdown", "source": "## Two"},
        cell("IndexError", "Target 255 is out of bounds."),
        cell("RuntimeError", "expected target dtype to be Long or Byte, but got Float"),
        cell("RuntimeError", "expected target dtype to be Long or Byte, but got Int"),
        cell("RuntimeError", "Expected target size [2, 3], got [2, 5]"),
        cell("RuntimeError", "Expected target size [2, 4, 4], got [2, 4, 3]"),
        cell("RuntimeError", "only batches of spatial targets supported (3D tensors) but got targets of dimension: 4"),
    ]}
    found = error_index.notebook_entries(notebook, "chapters/x")
    grouped = {(g.ename, g.template): g for g in error_index.groups(found)}
    assert len(grouped) == 5
    target = grouped["IndexError", "Target # is out of bounds."]
    assert target.messages == ("Target 3 is out of bounds.", "Target 255 is out of bounds.")
    assert [e.anchor for e in target.entries] == ["one", "two"]
    assert ("RuntimeError", "Expected target size [#], got [#]") in grouped
    spatial = "only batches of spatial targets supported (3D tensors) but got targets of dimension: #"
    assert ("RuntimeError", spatial) in grouped
    page = error_index.render(found)
    assert page.count("- `Target 3 is out of bounds.`") == 1 and "also shown as `Target 255 is out of bounds.`" in page
    assert "[Title: One](chapters/x.ipynb#one), [Title: Two](chapters/x.ipynb#two)" in page


def test_quoted_gpu_messages_are_torchs_own_and_listed():
    """The messages only a GPU prints are quoted, not run: the part torch builds in is in the
    installed torch's library files, the quote contains it, and the page lists each once."""
    libraries = [p for p in (Path(torch.__file__).parent / "lib").iterdir() if ".so" in p.name or p.suffix == ".dll"]
    page = error_index.render(error_index.entries(ROOT))
    assert error_index.QUOTED
    for quoted in error_index.QUOTED:
        assert quoted.message.startswith(quoted.fixed)
        assert any(quoted.fixed.encode() in p.read_bytes() for p in libraries), quoted.fixed
        assert page.count(f"`{quoted.message}`") == 1
        assert f"<{quoted.label}>`" in page
