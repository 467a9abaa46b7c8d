"""Checks that a chapter notebook is a valid contract for nbval.

nbval compares a re-execution with the outputs stored in the notebook, and it silently skips
the comparison for a cell stored unexecuted (no execution count); a cell stored executed with
no output is compared, and fails if it prints anything (which is what makes a check cell work).
These guards make sure the stored outputs exist, come from one clean top-to-bottom run, and
hold nothing that changes from machine to machine.

Run as ``python -m tools.guards [NOTEBOOK ...]`` (default: every chapter); the test suite runs
the same checks in ``tests/test_guards.py``. Given a Markdown page (``*.md``), it checks only the
admonitions; with no argument it checks every chapter and every written page of the book, and
the figures across the book (:func:`figure_reference_problems`).

Figures. A cell that stores a PNG is a numbered MyST-NB figure: its metadata ``mystnb`` holds
``figure.name`` (``fig-...``), ``figure.caption`` and ``image.alt``. The prose refers to a figure
by its number, {numref}`fig-name` (rendered "Fig. 3", a link), never by position ("the figure
below", "the next plot": on a phone, in print or in search results "below" is somewhere else),
and every figure is referred to at least once, so that no figure stands in the text unexplained.
"""

import ast
import json
import re
import sys
from pathlib import Path

#: A cell with this tag is expected to raise; its stored error output is the point of the cell.
RAISES = "raises-exception"
#: A cell with this tag may write to stderr (a warning the chapter is about).
STDERR = "expect-stderr"
#: A check cell: asserts that back a claim of the prose, collapsed on the page, printing nothing.
CHECK = "check"
#: The tag that collapses a cell's code on the page; every check cell carries it.
HIDE_INPUT = "hide-input"

#: MyST admonitions that take no title: text after the name on the opening line is not a
#: title, it becomes the first line of the body. A titled one is ``{admonition} Title`` with
#: ``:class: warning``.
UNTITLED_ADMONITIONS = (
    "note", "warning", "tip", "important", "caution", "attention", "danger", "error", "hint", "seealso",
)

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"

#: Text that must never appear in a stored output: it differs between machines or runs.
MACHINE_SPECIFIC = {
    "a device name": re.compile(r"device='?(cuda|mps|xpu)|cuda:\d"),
    "a memory address": re.compile(r"\bat 0x[0-9a-fA-F]{4,}|0x[0-9a-fA-F]{8,}"),
    "an absolute path": re.compile(r"(?<![\w.])(/home/|/root/|/tmp/|/Users/|/usr/|/opt/|/work/|[A-Z]:\\)"),
    "a timing": re.compile(
        r"Wall time:|CPU times:|\d+(\.\d+)?\s*(ns|µs|us|ms|s) ± |\d+(\.\d+)?\s*(it/s|s/it)\b"
    ),
}


#: Prose that points at a figure by its position instead of its number (code spans and code
#: blocks are not prose and are left out before matching).
POSITIONAL_FIGURE = re.compile(
    r"\b(?:(?:figures?|plots?|graphs?|charts?|diagrams?|pictures?)\s+(?:below|above)"
    r"|(?:below|above|the|this|that|next|previous|following|preceding)\s+(?:figure|plot|graph|chart|diagram|picture)"
    r"(?:'s|s)?\b)",
    re.IGNORECASE,
)
#: A reference to a figure by number: {numref}`fig-name` or {numref}`Text %s <fig-name>`.
NUMREF = re.compile(r"\{numref\}`(?:[^`<]*<)?(?P<name>[^`<>]+)>?`")
#: Figures that no prose refers to yet, with the reason. A figure listed here that the prose does
#: refer to is reported, so that the list only shrinks.
UNREFERENCED_FIGURES = {}

#: Pages of the table of contents that the build writes (not committed, not written by hand).
GENERATED_PAGES = ("errors", "status")


def chapter_notebooks():
    """Return the chapter notebooks, in file-name order."""
    return sorted(CHAPTERS.glob("*.ipynb"))


def book_pages():
    """Return the Markdown pages of the table of contents that are written by hand (intro.md, ...)."""
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    names = re.findall(r"^\s*(?:root|-?\s*file):\s*(\S+)\s*$", toc, flags=re.MULTILINE)
    return [ROOT / f"{name}.md" for name in names
            if name not in GENERATED_PAGES and (ROOT / f"{name}.md").exists()]


def check(notebook):
    """Return the list of problems of ``notebook`` (a dict as in the .ipynb JSON); empty if none."""
    problems = []
    code = [c for c in notebook.get("cells", []) if c.get("cell_type") == "code"]
    counts = [c.get("execution_count") for c in code]
    if counts != list(range(1, len(code) + 1)):
        problems.append(
            f"execution counts are {counts}, not 1..{len(code)}: "
            "re-execute top to bottom in a fresh kernel (python -m tools.reexecute)"
        )
    if not any(c.get("outputs") for c in code):
        problems.append("no code cell has a stored output: were the outputs cleared? (re-execute it)")
    for number, cell in enumerate(code, start=1):
        problems += [f"code cell {number}: {p}" for p in _check_cell(cell)]
        if CHECK in cell.get("metadata", {}).get("tags", []):
            problems += [f"code cell {number}: {p}" for p in _check_check_cell(cell)]
    markdown = [c for c in notebook.get("cells", []) if c.get("cell_type") == "markdown"]
    for number, cell in enumerate(markdown, start=1):
        problems += [f"markdown cell {number}: {p}" for p in admonition_problems(_join(cell.get("source", "")))]
        problems += [f"markdown cell {number}: {p}" for p in positional_figure_problems(_join(cell.get("source", "")))]
    return problems


def positional_figure_problems(markdown):
    """The phrases of ``markdown``'s prose that point at a figure by position ("the figure below")."""
    prose = re.sub(r"^(```|~~~).*?^\1", "", markdown, flags=re.MULTILINE | re.DOTALL)  # code blocks
    prose = re.sub(r"`[^`]*`", "", prose)  # code spans and the targets of roles
    return [f"{match.group(0)!r} points at a figure by position: refer to it by number, {{numref}}`fig-...`"
            for match in POSITIONAL_FIGURE.finditer(prose)]


def figures(notebook):
    """The names of the figures a notebook shows (``mystnb.figure.name`` of cells that store a PNG)."""
    return [cell.get("metadata", {}).get("mystnb", {}).get("figure", {}).get("name")
            for cell in notebook.get("cells", []) if cell.get("cell_type") == "code"
            and any("image/png" in o.get("data", {}) for o in cell.get("outputs", []))]


def figure_references(markdown):
    """The names that ``markdown`` refers to with {numref}."""
    return [match["name"].strip() for match in NUMREF.finditer(markdown)]


def figure_reference_problems(notebooks, pages=()):
    """Figures of the book (``notebooks``: dicts, ``pages``: Markdown texts) that no {numref}
    refers to, and {numref} targets that name no figure of the book."""
    names, referenced = [], set()
    for notebook in notebooks:
        names += [name for name in figures(notebook) if name]
        for cell in notebook.get("cells", []):
            if cell.get("cell_type") == "markdown":
                referenced.update(figure_references(_join(cell.get("source", ""))))
    for page in pages:
        referenced.update(figure_references(page))
    problems = [f"figure {name!r} is shown more than once" for name in sorted(set(names)) if names.count(name) > 1]
    for name in sorted(set(names)):
        if name not in referenced and name not in UNREFERENCED_FIGURES:
            problems.append(f"figure {name!r}: no prose refers to it; "
                            f"write {{numref}}`{name}` where the text explains it")
        if name in referenced and name in UNREFERENCED_FIGURES:
            problems.append(f"figure {name!r} is referred to now: remove it from guards.UNREFERENCED_FIGURES")
    problems += [f"{{numref}}`{name}` names no figure of the book" for name in sorted(referenced - set(names))
                 if name.startswith("fig-")]
    return problems


def _check_check_cell(cell):
    """The problems of a cell tagged ``check`` (see README: the claim convention)."""
    if HIDE_INPUT not in cell.get("metadata", {}).get("tags", []):
        yield f"is tagged {CHECK!r} but not {HIDE_INPUT!r}"
    if cell.get("outputs"):
        yield f"is tagged {CHECK!r} but stores an output: a check cell prints nothing, shows nothing, returns None"
    try:
        tree = ast.parse(_strip_magics(_join(cell.get("source", ""))))
    except SyntaxError as error:
        yield f"is tagged {CHECK!r} but its code does not parse ({error.msg}, line {error.lineno})"
        return
    if not any(isinstance(node, ast.Assert) for node in ast.walk(tree)):
        yield f"is tagged {CHECK!r} but has no assert statement"
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _dotted_name(node.func)
            if name and _shows_something(name):
                yield f"is tagged {CHECK!r} but calls {name}() (line {node.lineno}): a check cell shows nothing"


def _strip_magics(source):
    """The source with IPython magics and shell escapes (``%...``, ``!...``) turned into ``pass``."""
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        return ""  # a cell magic: the body is not Python
    return "\n".join(
        line[: len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("%", "!")) else line
        for line in lines
    )


def _dotted_name(func):
    """``display.show`` for the call ``display.show(...)``; None when the callee is not a plain name."""
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if not isinstance(func, ast.Name):
        return None
    parts.append(func.id)
    return ".".join(reversed(parts))


def _shows_something(name):
    """Whether a call of ``name`` prints, displays or draws: print, display, display.show,
    display.table, and anything in ``plt`` (matplotlib.pyplot). A ``lib.plots`` function may be
    called: it returns its figure without showing it, and a check cell asserts what it draws."""
    parts = name.split(".")
    return (
        name in ("print", "display")
        or parts[-1] == "display"  # IPython.display.display
        or parts[-2:] in (["display", "show"], ["display", "table"])
        or any(part in ("plt", "pyplot") for part in parts[:-1])
    )


_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,}|:{3,})\s*(?P<info>.*?)\s*$")
_DIRECTIVE = re.compile(r"^\{(?P<name>[\w:-]+)\}\s*(?P<argument>.*)$")
#: Directives whose body is not Markdown (an opening fence in it opens nothing).
_LITERAL_DIRECTIVES = ("code", "code-block", "code-cell", "sourcecode", "eval-rst")


def admonition_problems(markdown):
    """The opening lines of ``markdown`` that give a title to an admonition that takes none.

    ``:::{warning} A title`` renders "Warning" as the heading and "A title" as the first words
    of the body; write ``:::{admonition} A title`` with ``:class: warning`` instead. Code blocks
    are skipped: an example of the wrong form inside one is not an admonition.
    """
    problems = []
    open_fences = []  # (fence, whether its body is literal text) of the blocks we are in
    for number, line in enumerate(markdown.splitlines(), start=1):
        match = _FENCE.match(line)
        if not match:
            continue
        fence, info = match["fence"], match["info"]
        if open_fences and not info and fence[0] == open_fences[-1][0][0] and len(fence) >= len(open_fences[-1][0]):
            open_fences.pop()  # the closing fence of the innermost block
            continue
        if open_fences and open_fences[-1][1]:
            continue  # inside a code block
        directive = _DIRECTIVE.match(info)
        if directive:
            name = directive["name"]
            if name in UNTITLED_ADMONITIONS and directive["argument"]:
                problems.append(
                    f"line {number}: {line.strip()!r}: {{{name}}} takes no title, the text runs into its body; "
                    f"write ':::{{admonition}} {directive['argument']}' with ':class: {name}'"
                )
            open_fences.append((fence, name in _LITERAL_DIRECTIVES))
        elif fence[0] != ":":
            open_fences.append((fence, True))  # a code block (a colon fence needs a directive)
    return problems


def _check_cell(cell):
    tags = set(cell.get("metadata", {}).get("tags", []))
    outputs = cell.get("outputs", [])
    errors = [o for o in outputs if o.get("output_type") == "error"]
    if errors and RAISES not in tags:
        yield f"stores an error ({errors[0].get('ename')}) but is not tagged {RAISES!r}"
    if RAISES in tags and not errors:
        yield f"is tagged {RAISES!r} but stores no error"
    for output in outputs:
        if output.get("output_type") == "stream" and output.get("name") == "stderr" and STDERR not in tags:
            yield f"writes to stderr ({_text(output)[:60]!r}) but is not tagged {STDERR!r}"
        data = output.get("data", {})
        if "image/svg+xml" in data:
            yield "stores an SVG figure: store PNG (nbval compares SVG as text)"
        mystnb = cell.get("metadata", {}).get("mystnb", {})
        if "image/png" in data and not mystnb.get("image", {}).get("alt"):
            yield "shows a figure without alt text (cell metadata mystnb.image.alt)"
        if "image/png" in data and not str(mystnb.get("figure", {}).get("name", "")).startswith("fig-"):
            yield ("shows a figure without a name (cell metadata mystnb.figure.name, 'fig-...'): "
                   "it cannot be referred to")
        if "image/png" in data and not mystnb.get("figure", {}).get("caption"):
            yield "shows a figure without a caption (cell metadata mystnb.figure.caption)"
        text = _text(output)
        for what, pattern in MACHINE_SPECIFIC.items():
            match = pattern.search(text)
            if match:
                yield f"output holds {what} ({match.group(0)!r})"


def _text(output):
    """All the text of an output that nbval compares (stream text, text/* data, error text)."""
    parts = []
    if "text" in output:
        parts.append(_join(output["text"]))
    for key, value in output.get("data", {}).items():
        if key.startswith("text/"):
            parts.append(_join(value))
    if output.get("output_type") == "error":
        parts.append(f"{output.get('ename')}: {output.get('evalue')}")
        parts += output.get("traceback", [])  # not compared by nbval, but shown on the page
    return "\n".join(parts)


def _join(value):
    return "".join(value) if isinstance(value, list) else str(value)


def check_file(path):
    """The problems of a chapter notebook, or of a Markdown page (only its admonitions)."""
    text = Path(path).read_text(encoding="utf-8")
    if Path(path).suffix == ".md":
        return admonition_problems(text) + positional_figure_problems(text)
    return check(json.loads(text))


def book_figure_problems():
    """:func:`figure_reference_problems` of the whole book: every chapter and written page."""
    notebooks = [json.loads(path.read_text(encoding="utf-8")) for path in chapter_notebooks()]
    return figure_reference_problems(notebooks, [path.read_text(encoding="utf-8") for path in book_pages()])


def main(paths):
    whole_book = not paths
    paths = [Path(p) for p in paths] or chapter_notebooks() + book_pages()
    failed = False
    for path in paths:
        for problem in check_file(path):
            failed = True
            print(f"{path}: {problem}")
    for problem in book_figure_problems() if whole_book else []:
        failed = True
        print(f"the book: {problem}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
