"""Checks that a chapter notebook is a valid contract for nbval.

nbval compares a re-execution with the outputs stored in the notebook, and it silently skips
cells that have no stored output. These guards make sure the stored outputs exist, come from
one clean top-to-bottom run, and hold nothing that changes from machine to machine.

Run as ``python -m tools.guards [NOTEBOOK ...]`` (default: every chapter); the test suite runs
the same checks in ``tests/test_guards.py``.
"""

import json
import re
import sys
from pathlib import Path

#: A cell with this tag is expected to raise; its stored error output is the point of the cell.
RAISES = "raises-exception"
#: A cell with this tag may write to stderr (a warning the chapter is about).
STDERR = "expect-stderr"

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


def chapter_notebooks():
    """Return the chapter notebooks, in file-name order."""
    return sorted(CHAPTERS.glob("*.ipynb"))


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
        problems.append("no code cell has a stored output: nbval would compare nothing")
    for number, cell in enumerate(code, start=1):
        problems += [f"code cell {number}: {p}" for p in _check_cell(cell)]
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
        if "image/png" in data and not cell.get("metadata", {}).get("mystnb", {}).get("image", {}).get("alt"):
            yield "shows a figure without alt text (cell metadata mystnb.image.alt)"
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


def main(paths):
    paths = [Path(p) for p in paths] or chapter_notebooks()
    failed = False
    for path in paths:
        for problem in check(json.loads(path.read_text(encoding="utf-8"))):
            failed = True
            print(f"{path}: {problem}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
