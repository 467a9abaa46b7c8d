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


def test_reexecute_normalises_metadata():
    from tools import reexecute

    nb = nbformat.from_dict(good_notebook())
    nb.metadata["widgets"] = {"state": {}}
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.7"}
    cell = nb.cells[2]
    cell.metadata["execution"] = {"iopub.status.busy": "2026-11-23T01:00:00"}
    cell.metadata["tags"] = ["expect-stderr"]
    out = reexecute.normalise(nb)
    assert out.metadata == {"kernelspec": reexecute.KERNELSPEC, "language_info": {"name": "python"}}
    assert out.cells[2].metadata == {"tags": ["expect-stderr"]}
    assert [c.id for c in out.cells] == ["c000", "c001", "c002"]


FIGURE_OUTPUT = {"output_type": "display_data", "metadata": {"image/png": {"width": 651}},
                 "data": {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure size 640x360 with 1 Axes>"}}
FIGURE_METADATA = {"figure": {"name": "fig-curve", "caption": "A curve."}, "image": {"alt": "A rising curve."}}


def with_figure(metadata=FIGURE_METADATA, prose="{numref}`fig-curve` draws a curve."):
    nb = good_notebook()
    code_cells(nb)[0]["outputs"] = [json.loads(json.dumps(FIGURE_OUTPUT))]
    code_cells(nb)[0]["metadata"]["mystnb"] = json.loads(json.dumps(metadata))
    nb["cells"][0]["source"] = "# A chapter\n\n" + prose
    return nb


def test_a_good_figure_passes():
    assert guards.check(with_figure()) == [] and guards.figure_reference_problems([with_figure()]) == []


@pytest.mark.parametrize("drop, message", [
    (("image", "alt"), "alt text"), (("figure", "name"), "without a name"), (("figure", "caption"), "caption")])
def test_catches_a_figure_without_alt_text_name_or_caption(drop, message):
    metadata = json.loads(json.dumps(FIGURE_METADATA))
    del metadata[drop[0]][drop[1]]
    problems = guards.check(with_figure(metadata))
    assert len(problems) == 1 and message in problems[0], problems


def test_catches_a_figure_without_any_metadata():
    nb = with_figure()
    del code_cells(nb)[0]["metadata"]["mystnb"]
    assert len(guards.check(nb)) == 3


@pytest.mark.parametrize("phrase", [
    "The figure below shows", "as the plot above shows", "the next figure", "Along the figure's curves",
    "In this plot", "the following chart", "graphs above", "the previous figure"])
def test_catches_prose_that_points_at_a_figure_by_position(phrase):
    problems = guards.check(with_figure(prose=f"{phrase} a curve; {{numref}}`fig-curve`."))
    assert len(problems) == 1 and "points at a figure by position" in problems[0], problems
    assert guards.positional_figure_problems(f"Text.\n\n{phrase} it.\n") != []  # pages too


@pytest.mark.parametrize("prose", [
    "{numref}`fig-curve` draws a curve.", "A figure is compared by its text line; {numref}`fig-curve`.",
    "`lib.plots` draws {numref}`Figure %s <fig-curve>`.", "```python\n# the figure below\n```\n{numref}`fig-curve`",
    "Call `the figure above` in code; {numref}`fig-curve`."])
def test_prose_that_refers_to_a_figure_by_number_passes(prose):
    assert guards.check(with_figure(prose=prose)) == []
    assert guards.figure_reference_problems([with_figure(prose=prose)]) == []


def test_catches_a_figure_that_no_prose_refers_to():
    nb = with_figure(prose="A curve.")
    assert guards.figure_reference_problems([nb]) == [
        "figure 'fig-curve': no prose refers to it; write {numref}`fig-curve` where the text explains it"]
    assert guards.figure_reference_problems([nb], pages=["See {numref}`fig-curve`."]) == []  # a page may refer to it


def test_catches_a_reference_to_no_figure_and_a_figure_shown_twice():
    problems = guards.figure_reference_problems([with_figure(prose="{numref}`fig-curve`, {numref}`fig-curv`.")])
    assert problems == ["{numref}`fig-curv` names no figure of the book"]
    problems = guards.figure_reference_problems([with_figure(), with_figure()])
    assert problems == ["figure 'fig-curve' is shown more than once"]


def test_an_exempted_figure_that_is_referred_to_is_reported(monkeypatch):
    monkeypatch.setattr(guards, "UNREFERENCED_FIGURES", {"fig-curve": "a reason"})
    assert guards.figure_reference_problems([with_figure(prose="A curve.")]) == []
    assert guards.figure_reference_problems([with_figure()]) == [
        "figure 'fig-curve' is referred to now: remove it from guards.UNREFERENCED_FIGURES"]


def test_the_book_refers_to_every_figure_by_number():
    assert guards.book_figure_problems() == []
    assert len(guards.UNREFERENCED_FIGURES) <= 2  # only chapter 41's two, until its prose refers to them


def test_the_command_line_checks_the_figures_of_the_book(monkeypatch, capsys):
    monkeypatch.setattr(guards, "book_figure_problems", lambda: ["figure 'fig-x': no prose refers to it"])
    assert guards.main([]) == 1
    assert "the book: figure 'fig-x': no prose refers to it" in capsys.readouterr().out


# The check cell: tags check + hide-input, at least one assert, no stored output, no printing.

GOOD_CHECK = (
    "import torch\n"
    "g = torch.Generator().manual_seed(0)\n"
    "for _ in range(100):\n"
    "    x = torch.randn(5, generator=g)\n"
    "    assert torch.allclose(x.softmax(0).sum(), torch.tensor(1.0), atol=1e-6)\n"
)


def with_check_cell(source=GOOD_CHECK, tags=(guards.CHECK, guards.HIDE_INPUT), outputs=()):
    nb = good_notebook()
    cell = json.loads(nbformat.writes(new_notebook(cells=[new_code_cell(source, execution_count=3)])))["cells"][0]
    cell["metadata"]["tags"] = list(tags)
    cell["outputs"] = list(outputs)
    nb["cells"].append(cell)
    return nb


def check_cell_problems(nb):
    return [p for p in guards.check(nb) if p.startswith("code cell 3:")]


def test_a_good_check_cell_passes():
    assert guards.check(with_check_cell()) == []


@pytest.mark.parametrize(
    "source",
    [
        "%matplotlib inline\nassert 1 + 1 == 2",  # a line magic is stripped before parsing
        "x = display.fmt(torch.tensor(0.5))\nassert x == '0.5000'\nNone",  # fmt returns a string
        "if True:\n    !true\n    assert True",
    ],
)
def test_check_cells_that_pass(source):
    assert check_cell_problems(with_check_cell(source)) == []


def test_visible_asserts_need_no_check_tag():
    assert guards.check(with_check_cell("assert 1 + 1 == 2", tags=())) == []


def test_catches_a_check_cell_without_hide_input():
    problems = check_cell_problems(with_check_cell(tags=[guards.CHECK]))
    assert problems == ["code cell 3: is tagged 'check' but not 'hide-input'"]


@pytest.mark.parametrize(
    "output",
    [
        {"output_type": "stream", "name": "stdout", "text": "ok\n"},
        {"output_type": "execute_result", "execution_count": 3, "metadata": {}, "data": {"text/plain": "True"}},
        {"output_type": "display_data", "metadata": {},
         "data": {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}},
    ],
)
def test_catches_a_check_cell_with_an_output(output):
    problems = check_cell_problems(with_check_cell(outputs=[output]))
    assert any("is tagged 'check' but stores an output" in p for p in problems)


@pytest.mark.parametrize(
    "source",
    [
        "x = 1\n",
        "x = 1  # assert x == 1\n",  # in a comment
        "s = 'assert x == 1'\n",  # in a string
        '"""\nassert x == 1\n"""\n',  # in a docstring
        "%%time\nassert True\n",  # the body of a cell magic is not Python
    ],
)
def test_catches_a_check_cell_without_assert(source):
    problems = check_cell_problems(with_check_cell(source))
    assert problems == ["code cell 3: is tagged 'check' but has no assert statement"]


def test_catches_a_check_cell_that_does_not_parse():
    problems = check_cell_problems(with_check_cell("assert (1 ==\n"))
    assert len(problems) == 1 and "does not parse" in problems[0]


@pytest.mark.parametrize(
    "call, name",
    [
        ("print(x)", "print"),
        ("display(x)", "display"),
        ("IPython.display.display(x)", "IPython.display.display"),
        ("display.show(x)", "display.show"),
        ("lib.display.show(x)", "lib.display.show"),
        ("display.table([[x]], ['x'])", "display.table"),
        ("plt.plot([0, 1])", "plt.plot"),
        ("assert f(print(x))", "print"),  # nested in an assert
    ],
)
def test_catches_a_check_cell_that_prints(call, name):
    problems = check_cell_problems(with_check_cell(f"x = 1\n{call}\nassert x == 1\n"))
    assert problems == [f"code cell 3: is tagged 'check' but calls {name}() (line 2): a check cell shows nothing"]


def test_a_check_cell_may_inspect_a_figure():
    """lib.plots functions return their figure unshown: a check cell asserts what it draws."""
    cell = "fig = plots.binary_entropy()\nassert len(fig.axes[0].lines) == 2\n"
    assert check_cell_problems(with_check_cell(cell)) == []


# Titled admonitions: {warning} and its kind take no title; {admonition} Title + :class: does.

def with_markdown(text):
    nb = good_notebook()
    nb["cells"].insert(1, {"cell_type": "markdown", "id": "md", "metadata": {}, "source": text})
    return nb


@pytest.mark.parametrize("name", guards.UNTITLED_ADMONITIONS)
@pytest.mark.parametrize("fence", [":::", "```", "~~~", "::::"])
def test_catches_a_titled_admonition(name, fence):
    text = f"Some prose.\n\n{fence}{{{name}}} A title\nThe body.\n{fence}\n"
    problems = guards.check(with_markdown(text))
    assert len(problems) == 1
    assert problems[0].startswith(f"markdown cell 2: line 3: '{fence}{{{name}}} A title': {{{name}}} takes no title")


@pytest.mark.parametrize(
    "text",
    [
        ":::{warning}\nThe body, with no title.\n:::\n",
        ":::{admonition} One weight per class\n:class: warning\nThe body.\n:::\n",
        "```{admonition} A title\n:class: tip\nThe body.\n```\n",
        "```{note}\nThe body.\n```\n",
        ":::{warning} \nTrailing spaces are no title.\n:::\n",
        # An example of the wrong form inside a code block is not an admonition.
        "````markdown\n:::{warning} A title\nThe body.\n:::\n````\n",
        "```{code-block} markdown\n```{warning} A title\n```\n",
        "~~~\n```{note} A title\n```\n~~~\n",
    ],
)
def test_admonitions_that_pass(text):
    assert guards.admonition_problems(text) == []


def test_catches_a_titled_admonition_nested_in_another():
    text = "::::{admonition} Outer\n:class: tip\n```python\nx = 1\n```\n:::{hint} Inner title\nBody.\n:::\n::::\n"
    problems = guards.admonition_problems(text)
    assert len(problems) == 1 and problems[0].startswith("line 6: ':::{hint} Inner title'")


def test_the_book_pages_are_found():
    assert {p.name for p in guards.book_pages()} >= {"intro.md", "confusions.md", "glossary.md", "references.md"}


@pytest.mark.parametrize("path", guards.book_pages(), ids=lambda p: p.name)
def test_page_has_no_titled_admonition(path):
    assert guards.check_file(path) == []


def test_the_command_line_checks_a_page(tmp_path, capsys):
    page = tmp_path / "page.md"
    page.write_text("# A page\n\n:::{danger} Titled\nBody.\n:::\n", encoding="utf-8")
    assert guards.main([str(page)]) == 1
    assert "line 3: ':::{danger} Titled': {danger} takes no title" in capsys.readouterr().out
