"""The error-message index: every error the book shows, with the section that explains it.

The chapters show real error messages in cells tagged ``raises-exception``. This module
collects them from the stored outputs of the chapters in the table of contents and writes
``errors.md``, a page of the book, at build time (see :mod:`tools.sphinx_book`). Adding such
a cell to a chapter adds an entry; nothing is maintained by hand.
"""

import dataclasses
import json
from pathlib import Path

import yaml
from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin
from myst_parser.mdit_to_docutils.base import default_slugify

from tools.guards import RAISES

PAGE = "errors.md"
HEADER = """\
(errors-index)=
# Error messages

Every error message that a chapter of this book shows, with a link to the section that
explains it. Paste an error into the search box to land here or on the section itself.

This page is generated when the book is built, from the chapters' cells that are expected to
raise (tagged `raises-exception`); it is not edited by hand.
"""


@dataclasses.dataclass(frozen=True)
class Entry:
    """One error shown by a chapter."""

    ename: str
    message: str
    chapter: str  # the chapter's path without suffix, as in _toc.yml
    chapter_title: str
    section_title: str
    anchor: str  # heading slug, '' for the top of the chapter


def toc_chapters(root):
    """Return the chapter paths of ``_toc.yml`` under ``root``, in reading order."""
    toc = yaml.safe_load((Path(root) / "_toc.yml").read_text(encoding="utf-8"))
    files = []
    for part in toc.get("parts", []):
        for chapter in part.get("chapters", []):
            files.append(chapter["file"])
    return [f for f in files if (Path(root) / f"{f}.ipynb").exists()]


def entries(root):
    """Return the entries of every chapter in the table of contents."""
    found = []
    for chapter in toc_chapters(root):
        notebook = json.loads((Path(root) / f"{chapter}.ipynb").read_text(encoding="utf-8"))
        found += notebook_entries(notebook, chapter)
    return found


def notebook_entries(notebook, chapter):
    """Return the entries of one notebook (a dict as in the .ipynb JSON)."""
    parser = MarkdownIt("commonmark").use(dollarmath_plugin)
    slugs, chapter_title, section, anchor, found = [], chapter, None, "", []
    for cell in notebook.get("cells", []):
        if cell["cell_type"] == "markdown":
            for level, title, slug in _headings(parser, _source(cell), slugs):
                if level == 1:
                    chapter_title, section, anchor = title, None, ""
                else:
                    section, anchor = title, slug
        elif cell["cell_type"] == "code" and RAISES in cell.get("metadata", {}).get("tags", []):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    message = str(output.get("evalue", "")).strip().splitlines()[0] if output.get("evalue") else ""
                    found.append(Entry(output.get("ename", "Error"), message, chapter, chapter_title,
                                       section or chapter_title, anchor))
    return found


def render(found):
    """Return the Markdown of the index page, grouped by exception class."""
    lines = [HEADER]
    for ename in sorted({e.ename for e in found}):
        lines.append(f"## {ename}\n")
        for entry in sorted((e for e in found if e.ename == ename), key=lambda e: e.message.lower()):
            target = f"{entry.chapter}.ipynb" + (f"#{entry.anchor}" if entry.anchor else "")
            where = entry.chapter_title if entry.section_title == entry.chapter_title else (
                f"{entry.chapter_title}: {entry.section_title}")
            lines.append(f"- {_code(entry.message)}  \n  explained in [{_escape(where)}]({target})")
        lines.append("")
    return "\n".join(lines)


def write(root):
    """Write the index page into ``root`` and return its path."""
    path = Path(root) / PAGE
    path.write_text(render(entries(root)), encoding="utf-8")
    return path


def _headings(parser, text, slugs):
    """Yield (level, title, slug) of each heading, with MyST's slugs (unique per document)."""
    tokens = parser.parse(text)
    for opening, inline in zip(tokens, tokens[1:], strict=False):
        if opening.type != "heading_open":
            continue
        level = int(opening.tag[1])
        slug_text = "".join(c.content for c in inline.children or [] if c.type in ("text", "code_inline"))
        title = "".join(c.content if c.type != "code_inline" else f"{c.content}"
                        for c in inline.children or [] if c.type in ("text", "code_inline", "math_inline"))
        slug = default_slugify(slug_text)
        unique, i = slug, 1
        while unique in slugs:
            unique, i = f"{slug}-{i}", i + 1
        slugs.append(unique)
        yield level, title.strip(), unique


def _source(cell):
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _code(text):
    """Inline code that survives backticks in the message."""
    fence = "``" if "`" in text else "`"
    return f"{fence} {text} {fence}" if fence == "``" else f"`{text}`"


def _escape(text):
    return text.replace("[", r"\[").replace("]", r"\]")
