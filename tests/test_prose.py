"""Numbers quoted in a chapter's prose must be printed by the chapter's own code.

Rule 1 of the book: every number on the page comes from executed code. Prose may repeat a
number for the reader, and this test checks each such number (any decimal like 0.3251) against
the text the chapter's code cells printed, or the code itself where the number is an input.
"""

import json
import re

import pytest

from tools import guards

DECIMAL = re.compile(r"(?<![\w.])-?\d+\.\d+")


def printed_text(notebook):
    """What the code cells printed, and the code itself (a number may be an input the reader sees)."""
    parts = []
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            parts.append("".join(cell.get("source", [])))
        for output in cell.get("outputs", []):
            parts.append(guards._text(output))
    return "\n".join(parts)


def quoted_numbers(notebook):
    """Decimals in the prose, and in figure captions and alt texts (cell metadata ``mystnb``)."""
    numbers = []
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            numbers += DECIMAL.findall("".join(cell["source"]))
        figure = cell.get("metadata", {}).get("mystnb", {})
        for text in (figure.get("figure", {}).get("caption", ""), figure.get("image", {}).get("alt", "")):
            numbers += DECIMAL.findall(text)
    return numbers


@pytest.mark.parametrize("path", guards.chapter_notebooks(), ids=lambda p: p.name)
def test_numbers_in_prose_are_printed_by_code(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    printed = printed_text(notebook)
    missing = [n for n in quoted_numbers(notebook) if not re.search(rf"(?<![\d.]){re.escape(n)}(?!\d)", printed)]
    assert not missing, f"quoted in the prose but printed by no cell: {missing}"


def test_the_check_can_fail():
    notebook = {"cells": [{"cell_type": "markdown", "source": ["The loss is 0.5981."]},
                          {"cell_type": "code", "source": ["x = 0.598"],
                           "outputs": [{"output_type": "stream", "text": "tensor(0.5982)"}]}]}
    assert quoted_numbers(notebook) == ["0.5981"]
    assert "0.5981" not in printed_text(notebook)
