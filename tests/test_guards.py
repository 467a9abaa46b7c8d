"""The notebook guards: every chapter passes them, and each guard catches a bad notebook."""

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from tools import guards

CHAPTERS = guards.chapter_notebooks()


def test_there_are_chapters():
    assert len(CHAPTERS) >= 2


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_passes_the_guards(path):
    assert guards.check(json.loads(path.read_text(encoding="utf-8"))) == []


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_metadata_is_normalised(path):
    notebook = nbformat.read(path, as_version=4)
    assert set(notebook.metadata) == {"kernelspec", "language_info"}
    for cell in notebook.cells:
        assert set(cell.metadata) <= {"tags", "mystnb"}


def good_notebook():
    cells = [new_markdown_cell("# A chapter"),
             new_code_cell("1 + 1", execution_count=1,
                           outputs=[new_output("execute_result", {"text/plain": "2"}, execution_count=1)]),
             new_code_cell("print('hi')", execution_count=2,
                           outputs=[new_output("stream", name="stdout", text="hi\n")])]
    return json.loads(nbformat.writes(new_notebook(cells=cells)))


def code_cells(notebook):
    return [c for c in notebook["cells"] if c["cell_type"] == "code"]


def test_a_good_notebook_passes():
    assert guards.check(good_notebook()) == []


def test_catches_out_of_order_execution():
    nb = good_notebook()
    code_cells(nb)[1]["execution_count"] = 5
    assert any("execution counts" in p for p in guards.check(nb))


def test_catches_an_unexecuted_cell():
    nb = good_notebook()
    code_cells(nb)[1]["execution_count"] = None
    code_cells(nb)[1]["outputs"] = []
    assert any("execution counts" in p for p in guards.check(nb))


def test_catches_a_notebook_without_outputs():
    nb = good_notebook()
    for cell in code_cells(nb):
        cell["outputs"] = []
    assert any("no code cell has a stored output" in p for p in guards.check(nb))


def error_output():
    return {"output_type": "error", "ename": "ValueError", "evalue": "bad", "traceback": ["ValueError: bad"]}


def test_catches_an_untagged_error():
    nb = good_notebook()
    code_cells(nb)[0]["outputs"] = [error_output()]
    assert any("stores an error (ValueError)" in p for p in guards.check(nb))
    code_cells(nb)[0]["metadata"]["tags"] = [guards.RAISES]
    assert guards.check(nb) == []


def test_catches_a_raises_exception_tag_without_error():
    nb = good_notebook()
    code_cells(nb)[0]["metadata"]["tags"] = [guards.RAISES]
    assert any("stores no error" in p for p in guards.check(nb))


@pytest.mark.parametrize(
    "text, what",
    [
        ("tensor(0.5981, device='cuda:0')", "device name"),
        ("<Figure at 0x7f3a2c1b9d50>", "memory address"),
        ("see /home/reader/book/lib/info.py", "absolute path"),
        ("  File /tmp/venv/lib/python3.11/site-packages/torch/nn/functional.py:3494", "absolute path"),
        ("CPU times: user 2 ms", "timing"),
        ("1.2 ms ± 3 µs per loop", "timing"),
    ],
)
def test_catches_machine_specific_output(text, what):
    nb = good_notebook()
    code_cells(nb)[1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": text}]
    assert any(what in p for p in guards.check(nb))


def test_catches_a_path_in_a_traceback():
    nb = good_notebook()
    error = error_output()
    error["traceback"] = ["File /root/.venv/lib/python3.11/site-packages/torch/nn/functional.py:3494"]
    code_cells(nb)[0]["outputs"] = [error]
    code_cells(nb)[0]["metadata"]["tags"] = [guards.RAISES]
    assert any("absolute path" in p for p in guards.check(nb))


def test_catches_svg_figures():
    nb = good_notebook()
    code_cells(nb)[0]["outputs"] = [{"output_type": "display_data", "metadata": {},
                                     "data": {"image/svg+xml": "<svg></svg>", "text/plain": "<Figure>"}}]
    assert any("SVG" in p for p in guards.check(nb))


def test_catches_stderr_unless_tagged():
    nb = good_notebook()
    code_cells(nb)[1]["outputs"] = [{"output_type": "stream", "name": "stderr", "text": "UserWarning: careful"}]
    assert any("stderr" in p for p in guards.check(nb))
    code_cells(nb)[1]["metadata"]["tags"] = [guards.STDERR]
    assert guards.check(nb) == []


def test_reexecute_normalises_metadata_and_streams():
    from tools import reexecute

    nb = nbformat.from_dict(good_notebook())
    nb.metadata["widgets"] = {"state": {}}
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.7"}
    cell = nb.cells[2]
    cell.metadata["execution"] = {"iopub.status.busy": "2026-11-23T01:00:00"}
    cell.metadata["tags"] = ["expect-stderr"]
    cell.outputs = [nbformat.from_dict({"output_type": "stream", "name": "stdout", "text": "a\n"}),
                    nbformat.from_dict({"output_type": "stream", "name": "stdout", "text": "b\n"})]
    out = reexecute.normalise(nb)
    assert out.metadata == {"kernelspec": reexecute.KERNELSPEC, "language_info": {"name": "python"}}
    assert out.cells[2].metadata == {"tags": ["expect-stderr"]}
    assert [c.id for c in out.cells] == ["c000", "c001", "c002"]
    assert len(out.cells[2].outputs) == 1 and out.cells[2].outputs[0].text == "a\nb\n"


def test_catches_a_figure_without_alt_text():
    nb = good_notebook()
    figure = {"output_type": "display_data", "metadata": {},
              "data": {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure size 640x360 with 1 Axes>"}}
    code_cells(nb)[0]["outputs"] = [figure]
    assert any("alt text" in p for p in guards.check(nb))
    code_cells(nb)[0]["metadata"]["mystnb"] = {"image": {"alt": "A curve."}}
    assert guards.check(nb) == []
