"""The error-message index: every error the book shows, with the section that explains it.

The chapters show real error messages in cells tagged ``raises-exception``. This module
collects them from the stored outputs of the chapters in the table of contents and writes
``errors.md``, a page of the book, at build time (see :mod:`tools.sphinx_book`). Adding such
a cell to a chapter adds an entry; nothing is maintained by hand.
"""

import dataclasses
import json
import re
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
raise (tagged `raises-exception`); it is not edited by hand. A message that differs only in its
numbers (`Target 3 is out of bounds.`, `Target 255 is out of bounds.`) is listed once, with
every form the book shows and every section that shows it.
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


@dataclasses.dataclass(frozen=True)
class Group:
    """One entry of the page: the messages of one exception class that share a template."""

    ename: str
    template: str
    messages: tuple  # the distinct messages, in reading order
    entries: tuple  # one Entry per distinct section that shows it, in reading order


#: A list of integers, such as a shape: ``[2, 4, 4, 3]``.
_NUMBER_LIST = re.compile(r"\[\s*-?\d+(?:\s*,\s*-?\d+)*\s*\]")
#: A number standing alone (``3``, ``-100``, ``1.5``, ``3.5e-04``), not the digit of ``3D`` or ``int32``.
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e[+-]?\d+)?(?!\w)")


def template(message):
    """The message with its numbers and lists of numbers replaced by placeholders.

    Two showings of one error differ in the numbers a cell chose (a target, a shape, a batch
    size); readers search for the words. Words, dtypes and device names are kept, so that
    ``but got Float`` and ``but got Int`` (two different mistakes) stay two entries.
    """
    return _NUMBER.sub("#", _NUMBER_LIST.sub("[#]", message))


def groups(found):
    """Group entries by (exception class, :func:`template`): each message template once."""
    keyed = {}
    for entry in found:
        keyed.setdefault((entry.ename, template(entry.message)), []).append(entry)
    result = []
    for (ename, key), members in keyed.items():
        messages = tuple(dict.fromkeys(e.message for e in members))
        places = tuple({(e.chapter, e.anchor): e for e in members}.values())
        result.append(Group(ename, key, messages, places))
    return result


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


@dataclasses.dataclass(frozen=True)
class Quoted:
    """A message only a GPU prints, quoted (no cell of the book can raise it on a CPU).

    ``fixed`` is the part of the message torch builds in, which a test finds in the installed
    torch's library files; ``message`` is the whole message as readers see it on a GPU.
    """

    ename: str
    message: str
    fixed: str
    where: str  # link text
    label: str  # the MyST label of the section


#: Messages readers search for that only a CUDA machine prints, each with the section explaining it.
QUOTED = [
    Quoted("RuntimeError",
           "Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu!",
           "Expected all tensors to be on the same device, but found at least two devices, ",
           "My loss looks wrong: a debugging guide", "sec-debug-devices"),
]


def render(found):
    """Return the Markdown of the index page: by exception class, one item per message template,
    then the messages only a GPU prints (:data:`QUOTED`)."""
    lines = [HEADER]
    grouped = groups(found)
    for ename in sorted({g.ename for g in grouped}):
        lines.append(f"## {ename}\n")
        for group in sorted((g for g in grouped if g.ename == ename), key=lambda g: (g.template.lower(), g.template)):
            item = f"- {_code(group.messages[0])}"
            if len(group.messages) > 1:
                item += "  \n  also shown as " + ", ".join(_code(m) for m in group.messages[1:])
            links = ", ".join(f"[{_escape(_where(e))}]({_target(e)})" for e in group.entries)
            lines.append(f"{item}  \n  explained in {links}")
        lines.append("")
    lines.append("## Only on a GPU (quoted, not run here)\n")
    lines.append("These messages need a CUDA device, so no cell of the book raises them. They are quoted; "
                 "the test suite finds the fixed part of each in the installed torch's library files.\n")
    for quoted in QUOTED:
        link = f"{{ref}}`{quoted.where} <{quoted.label}>`"
        lines.append(f"- {quoted.ename}: {_code(quoted.message)}  \n  explained in {link}")
    lines.append("")
    return "\n".join(lines)


def _target(entry):
    return f"{entry.chapter}.ipynb" + (f"#{entry.anchor}" if entry.anchor else "")


def _where(entry):
    if entry.section_title == entry.chapter_title:
        return entry.chapter_title
    return f"{entry.chapter_title}: {entry.section_title}"


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
