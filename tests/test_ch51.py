"""Chapter "The next-token loss": its figure, checked against numbers computed here, and its text.

The figure (``plots.next_token_training``) is drawn again with the chapter's own code: the
cells that read the text, train the bigram model and compute the floor are executed in a fresh
namespace, and the figure call of the stored figure cell is evaluated there. Then

* the loss curve must be the chapter's losses, one point per step, and agree with the losses
  the chapter printed (to the printed precision);
* the dashed line must lie at ``ln V``, with ``V`` the number of distinct characters of the text
  file counted here, and the dotted line at the conditional entropy of the next character given
  the current one, computed here from pair counts in plain Python (float64), independent of
  torch and of ``lib``;
* the caption's and alt text's claims must hold for the drawn data (starts at ``ln V``, stays
  above the floor and ends just above it, 44 characters, 120 steps);
* the stored PNG must be what ``lib.plots`` draws now, and the figure must read on a phone.
"""

import ast
import base64
import io
import json
import math
import re
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from lib import plots  # noqa: E402
from tests import test_figures  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CHAPTER = ROOT / "chapters" / "51_next_token.ipynb"
TEXT = ROOT / "lib" / "data" / "weather_notes.txt"
FUNCTION = "next_token_training"
#: Half a unit in the last printed place, for numbers printed with 4 decimals.
PRINTED_4 = 0.5e-4 + 1e-12
#: The matplotlib that recorded the stored figure (as in tests/test_figures.py).
RECORDED_WITH = "3.11.2"

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def notebook():
    return json.loads(CHAPTER.read_text(encoding="utf-8"))


def source(cell):
    return "".join(cell.get("source", []))


def printed(cell):
    return "".join("".join(o.get("text", "")) for o in cell.get("outputs", []) if o["output_type"] == "stream")


def code_cell(nb, pattern):
    """The one code cell (not a check cell) whose source matches the regex ``pattern``."""
    found = [c for c in nb["cells"] if c["cell_type"] == "code" and re.search(pattern, source(c), re.M)
             and "check" not in c["metadata"].get("tags", [])]
    assert len(found) == 1, f"{len(found)} code cells match {pattern!r}"
    return found[0]


def figure_cell(nb):
    return code_cell(nb, rf"plots\.{FUNCTION}\(")


def figure_call(cell):
    (call,) = [n for n in ast.walk(ast.parse(source(cell))) if isinstance(n, ast.Call)
               and isinstance(n.func, ast.Attribute) and n.func.attr == FUNCTION]
    return call


_DRAWN = {}


def chapter_figure():
    """``(figure, namespace)``: the chapter's cells that lead to the figure run afresh, then its call."""
    if not _DRAWN:
        nb = notebook()
        namespace = {}
        for pattern in [r"^from lib import device, display, plots", r"^text = \(Path", r"^def bigram\(",
                        r"^pair_counts = "]:
            exec(compile(source(code_cell(nb, pattern)), "<chapter cell>", "exec"), namespace)
        call = figure_call(figure_cell(nb))
        _DRAWN["figure"] = eval(compile(ast.Expression(call), "<figure call>", "eval"), namespace)
        _DRAWN["namespace"] = namespace
    return _DRAWN["figure"], _DRAWN["namespace"]


def drawn(ax):
    """The axes' lines by gid (tests/test_figures.py's rule), and no bars either."""
    assert not ax.patches
    return test_figures.drawn(ax)


def xy(line):
    return np.asarray(line.get_xdata(), dtype=np.float64), np.asarray(line.get_ydata(), dtype=np.float64)


def hline_y(ax, line):
    x, y = xy(line)
    assert line.get_transform() == ax.get_yaxis_transform(which="grid")
    assert y[0] == y[1] and list(x) == [0.0, 1.0]
    return float(y[0])


def independent_text_numbers():
    """``(V, ln V, floor)`` from the text file, in plain Python: distinct characters, and the
    conditional entropy of the next character given the current one, in nats."""
    text = TEXT.read_text(encoding="utf-8")
    pairs = Counter(zip(text[:-1], text[1:], strict=True))
    firsts = Counter(text[:-1])
    total = len(text) - 1
    floor = -sum(n * math.log(n / firsts[a]) for (a, _), n in pairs.items()) / total
    v = len(set(text))
    return v, math.log(v), floor


def printed_table(cell):
    """``{row label: value}`` of a two-column ``display.table`` printout."""
    rows = {}
    for line in printed(cell).splitlines()[2:]:
        label, value = line.rsplit(None, 1)
        rows[label.strip()] = float(value)
    return rows


def test_the_text_is_shipped_with_lib_and_small():
    from tools import archive

    assert TEXT in archive.files()
    raw = TEXT.read_bytes()
    assert 2000 <= len(raw) <= 5000
    text = raw.decode("utf-8")
    assert sum(len(c.encode("utf-8")) > 1 for c in set(text)) == 2  # the chapter's "two characters"


def test_the_loss_curve_is_the_chapters_training():
    fig, namespace = chapter_figure()
    lines = drawn(fig.axes[0])
    assert set(lines) == {"loss", "ln V", "bigram floor"}
    steps, losses = xy(lines["loss"])
    assert list(steps) == list(range(120)) and list(losses) == namespace["losses"]
    table = printed_table(code_cell(notebook(), r"^def bigram\("))
    for label, value in table.items():
        if label.startswith("step "):
            assert abs(losses[int(label.split()[1])] - value) <= PRINTED_4, label


def test_the_horizontal_lines_are_ln_v_and_the_bigram_floor():
    fig, _ = chapter_figure()
    ax = fig.axes[0]
    lines = drawn(ax)
    v, log_v, floor = independent_text_numbers()
    assert abs(hline_y(ax, lines["ln V"]) - log_v) < 1e-12
    assert abs(hline_y(ax, lines["bigram floor"]) - floor) < 1e-12
    assert lines["ln V"].get_linestyle() == "--" and lines["bigram floor"].get_linestyle() == ":"
    nb = notebook()
    assert abs(printed_table(code_cell(nb, r"^def bigram\("))["ln V"] - log_v) <= PRINTED_4
    printed_floor = float(printed(code_cell(nb, r"^pair_counts = ")).split()[0])
    assert abs(printed_floor - floor) <= PRINTED_4
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["training loss", f"ln V = {log_v:.4f}  (uniform guess)", f"bigram floor = {floor:.4f}"]


def test_the_caption_and_alt_text_hold_for_the_drawn_data():
    fig, _ = chapter_figure()
    lines = drawn(fig.axes[0])
    _, losses = xy(lines["loss"])
    v, log_v, floor = independent_text_numbers()
    metadata = figure_cell(notebook())["metadata"]["mystnb"]
    caption, alt = metadata["figure"]["caption"], metadata["image"]["alt"]
    assert f"over the {v} characters" in caption and f"ln {v}" in alt
    assert f"({len(losses)} steps" in caption
    assert abs(losses[0] - log_v) < 0.01                     # "where the loss starts", "starts on a dashed line"
    assert np.all(losses > floor)                            # "approaches from above", "without reaching it"
    assert losses[-1] - floor < 0.01                         # "flattens just above"
    # "drops steeply over the first twenty steps": falling, and most of the whole fall done by step 20
    assert np.all(np.diff(losses[:20]) < 0) and losses[0] - losses[20] > 0.8 * (losses[0] - losses[-1])


def test_the_stored_figure_is_what_lib_plots_draws():
    if matplotlib.__version__ != RECORDED_WITH:
        pytest.skip(f"matplotlib {matplotlib.__version__} is not {RECORDED_WITH}, which recorded the stored figure")
    from matplotlib.image import imread

    from lib import display

    (png,) = [o["data"]["image/png"] for o in figure_cell(notebook())["outputs"] if "image/png" in o.get("data", {})]
    stored = imread(io.BytesIO(base64.b64decode("".join(png) if isinstance(png, list) else png)))
    fresh, _ = display.retina_png(chapter_figure()[0])
    now = imread(io.BytesIO(base64.b64decode(fresh)))
    assert stored.shape == now.shape and np.array_equal(stored, now), "re-execute the chapter"


def test_the_figure_reads_on_a_phone():
    from matplotlib.text import Text

    fig, _ = chapter_figure()
    fig.canvas.draw()
    width, _ = fig.get_size_inches()
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    assert width <= 6.4 and len(fig.axes) == 1 and fig.dpi == plots.DPI and min(sizes) >= 10
