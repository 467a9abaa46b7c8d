"""Numbers quoted in a chapter's prose must be printed by the chapter's own code.

Rule 1 of the book: every number on the page comes from executed code. Prose may repeat a
number for the reader, and this test checks each such number (any decimal like 0.3251) against
the text the chapter's code cells printed, or the code itself where the number is an input.
The chapter test and the self-tests below call the same function, :func:`missing_numbers`.
"""

import io
import json
import re
import tokenize

import pytest

from tools import guards

#: A decimal in prose, with its sign: "-0.5981" (a Unicode minus is read as "-"), not the
#: "5981" of "0.5981" nor the "0.5" of "x0.5"; "1-0.5" quotes 0.5 (a minus after a word is an
#: operator, not a sign).
DECIMAL = re.compile(r"(?<![\w.])-?\d+\.\d+")


#: A release of PyTorch named in prose ("torch 2.13", "PyTorch 2.13.0"): not a quoted value, but
#: a claim about the release the book runs, checked against the pin by its own test below.
TORCH_RELEASE = re.compile(r"\b(?:torch|PyTorch)\s+(\d+\.\d+(?:\.\d+)?)\b")


def printed_pattern(number):
    """The regex that finds ``number`` (as quoted) in printed text: the whole number, same sign.

    Not a piece of a longer number: 0.5981 is not in 0.59812 (nothing may follow but a
    non-digit) nor in 10.5981 (no digit or point before). The sign must agree: 0.5981 is not
    in -0.5981, since a sign dropped in prose is a wrong claim (a log-probability quoted as a
    loss, a negative KL quoted as positive); a minus after a word, digit or bracket (``1-0.5981``)
    is an operator and leaves the number positive.
    """
    sign = "" if number.startswith("-") else r"(?<!(?<![\w)\]])-)"
    return re.compile(rf"(?<![\d.]){sign}{re.escape(number)}(?!\d)")


def _without_comments(source):
    """Python source with its comments blanked: a number in a comment is neither printed nor an input."""
    lines = source.splitlines(keepends=True)
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                row, col = token.start
                lines[row - 1] = lines[row - 1][:col] + " " * (token.end[1] - col) + lines[row - 1][token.end[1]:]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return source  # not plain Python (a magic): keep it whole
    return "".join(lines)


def printed_text(notebook):
    """What the code cells printed, and the code itself (a number may be an input the reader sees)."""
    parts = []
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            parts.append(_without_comments(guards._join(cell.get("source", ""))))
        for output in cell.get("outputs", []):
            parts.append(guards._text(output))
    return "\n".join(parts)


def quoted_numbers(notebook):
    """Decimals in the prose, and in figure captions and alt texts (cell metadata ``mystnb``)."""
    texts = []
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            texts.append(guards._join(cell["source"]))
        figure = cell.get("metadata", {}).get("mystnb", {})
        texts += [figure.get("figure", {}).get("caption", ""), figure.get("image", {}).get("alt", "")]
    texts = [TORCH_RELEASE.sub("torch RELEASE", text.replace("\u2212", "-")) for text in texts]
    return [n for text in texts for n in DECIMAL.findall(text)]


def torch_releases(notebook):
    """The PyTorch releases that ``notebook``'s prose names."""
    return [m for cell in notebook["cells"] if cell["cell_type"] == "markdown"
            for m in TORCH_RELEASE.findall(guards._join(cell["source"]))]


def missing_numbers(notebook):
    """The decimals quoted in ``notebook``'s prose, captions and alt texts that its code never prints."""
    printed = printed_text(notebook)
    return [n for n in quoted_numbers(notebook) if not printed_pattern(n).search(printed)]


@pytest.mark.parametrize("path", guards.chapter_notebooks(), ids=lambda p: p.name)
def test_the_torch_release_in_prose_is_the_pinned_one(path):
    from tools.status import pinned_torch

    pinned = pinned_torch()
    named = torch_releases(json.loads(path.read_text(encoding="utf-8")))
    assert all(pinned == release or pinned.startswith(release + ".") for release in named), (named, pinned)


def test_a_torch_release_is_not_a_quoted_number():
    notebook = {"cells": [{"cell_type": "markdown", "source": ["In torch 2.13 (PyTorch 2.13.0) the loss is 0.5981."]},
                          {"cell_type": "code", "source": ["x = 1"], "outputs": []}]}
    assert quoted_numbers(notebook) == ["0.5981"]
    assert torch_releases(notebook) == ["2.13", "2.13.0"]
    assert quoted_numbers({"cells": [{"cell_type": "markdown",
                                      "source": ["Python 3.11 and 2.13"]}]}) == ["3.11", "2.13"]


@pytest.mark.parametrize("path", guards.chapter_notebooks(), ids=lambda p: p.name)
def test_numbers_in_prose_are_printed_by_code(path):
    missing = missing_numbers(json.loads(path.read_text(encoding="utf-8")))
    assert not missing, f"quoted in the prose but printed by no cell: {missing}"


# The self-tests: each case is one a weaker matcher gets wrong.

def notebook(prose, code="", printed="", figure=None):
    cells = [{"cell_type": "markdown", "metadata": {}, "source": [prose]},
             {"cell_type": "code", "metadata": {}, "source": [code],
              "outputs": [{"output_type": "stream", "name": "stdout", "text": printed}] if printed else []}]
    if figure:
        cells[1]["metadata"]["mystnb"] = figure
    return {"cells": cells}


@pytest.mark.parametrize(
    "prose, code, printed, missing",
    [
        ("The loss is 0.5981.", "", "tensor(0.5981)", []),
        ("The loss is 0.5981.", "", "tensor(0.5982)", ["0.5981"]),
        ("The loss is 0.5981.", "x = 0.598", "tensor(0.5982)", ["0.5981"]),
        # The whole number, not a piece of a longer one.
        ("The loss is 0.5981.", "", "tensor(0.59812)", ["0.5981"]),
        ("The loss is 0.5981.", "", "tensor(10.5981)", ["0.5981"]),
        ("The loss is 0.5981.", "", "version 2.0.5981", ["0.5981"]),
        ("The loss is 0.5.", "", "tensor(0.5000)", ["0.5"]),
        ("It took 10.5981 steps.", "", "0.5981", ["10.5981"]),
        # The sign must agree.
        ("The loss is 0.5981.", "", "tensor(-0.5981)", ["0.5981"]),
        ("The loss is 0.5981.", "", "tensor([ 0.1000, -0.5981])", ["0.5981"]),
        ("The log-probability is -0.5981.", "", "tensor(-0.5981)", []),
        ("The log-probability is $-0.5981$.", "", "tensor(0.5981)", ["-0.5981"]),
        ("The log-probability is \u22120.5981.", "", "tensor(-0.5981)", []),
        ("One minus the loss: 0.4019.", "print(1-0.4019)", "", []),
        ("One minus the loss, 1-0.4019, ...", "print(1-0.4019)", "", []),  # a minus after a digit: an operator
        ("Between 0.25 and 0.75.", "", "tensor([0.25-0.75])", []),
        # In a table, in any column; at the end of a line.
        ("The loss is 0.5981.", "", "| class | loss   |\n| 0     | 0.5981 |\n", []),
        ("The loss is 0.5981.", "", "loss\n0.5981", []),
        # Typed in the code: an input the reader sees, also inside an f-string; not in a comment.
        ("With a threshold of 0.25 ...", "print(f'{p > 0.25}')", "True", []),
        ("With a threshold of 0.25 ...", "t = 0.25", "", []),
        ("The loss is 0.5981.", "loss = f(x)  # 0.5981", "tensor(0.5982)", ["0.5981"]),
        ("The loss is 0.5981.", "s = '# 0.5981'", "", []),
    ],
)
def test_missing_numbers(prose, code, printed, missing):
    assert missing_numbers(notebook(prose, code, printed)) == missing


@pytest.mark.parametrize(
    "figure, missing",
    [
        ({"figure": {"caption": "The loss reaches 0.6931 at p = 0.5."}}, ["0.6931"]),
        ({"image": {"alt": "A curve through 0.5 and 0.6931."}}, ["0.6931"]),
        ({"image": {"alt": "A curve through 0.5."}, "figure": {"caption": "At 0.5."}}, []),
    ],
)
def test_missing_numbers_in_figure_captions_and_alt_text(figure, missing):
    nb = notebook("A figure.", "plots.binary_entropy(0.5)", "<Figure size 640x360 with 1 Axes>", figure)
    assert missing_numbers(nb) == missing

