"""Chapter 62 (distillation): what its figure draws, checked against independent formulas.

The figure ``plots.distillation_gradient`` draws the norm of the gradient of the batchmean soft
term ``KL(softmax(v / T) || softmax(z / T))`` with respect to the student's logits ``z``. Here the
gradient is written in NumPy from its closed form ``(softmax(z / T) - softmax(v / T)) / (T N)``
(the chapter's equation kd-grad), independent of autograd and of ``lib.functional``, and compared
with the drawn lines, the chapter's printed table and the claims of the caption.
"""

import base64
import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from lib import device, display, plots  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CHAPTER = ROOT / "chapters" / "62_distillation.ipynb"
RECORDED_WITH = "3.11.2"  # the matplotlib of tests/test_figures.py
N, C = 8, 10


def chapter_logits():
    """The chapter's student and teacher logits (its first code cells), in float64 on the CPU."""
    teacher = 3 * device.randn(N, C, seed=620, device="cpu")
    student = device.randn(N, C, seed=621, device="cpu")
    return student.double(), teacher.double()


def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def grad_norm(z, v, t):
    """|(softmax(z / T) - softmax(v / T)) / (T N)|, the closed-form gradient of the batchmean soft term."""
    return float(np.linalg.norm((softmax(z / t) - softmax(v / t)) / (t * z.shape[0])))


def figure():
    student, teacher = chapter_logits()
    return plots.distillation_gradient(student, teacher, temperatures=torch.logspace(0, 2, 41))


def lines(fig):
    (ax,) = fig.axes
    found = {}
    for line in ax.lines:
        assert line.get_gid() and line.get_gid() not in found
        found[line.get_gid()] = line
    assert not ax.collections and not ax.patches and not ax.images and not ax.texts
    return found


def test_lines_are_the_closed_form_gradient():
    student, teacher = (x.numpy() for x in chapter_logits())
    drawn = lines(figure())
    assert set(drawn) == {"without T^2", "with T^2", "limit"}
    t, without = (np.asarray(a, dtype=np.float64) for a in drawn["without T^2"].get_data())
    _, with_t2 = (np.asarray(a, dtype=np.float64) for a in drawn["with T^2"].get_data())
    assert np.allclose(t, np.logspace(0, 2, 41), rtol=1e-6, atol=0)  # the chapter passes a float32 logspace
    expected = np.array([grad_norm(student, teacher, x) for x in t])
    assert np.allclose(without, expected, rtol=1e-10, atol=0)
    assert np.allclose(with_t2, t**2 * expected, rtol=1e-10, atol=0)
    d = student - teacher
    limit = np.linalg.norm(d - d.mean(axis=1, keepdims=True)) / (C * N)
    assert list(drawn["limit"].get_ydata()) == [pytest.approx(limit, rel=1e-12)] * 2


def test_caption_claims_hold():
    """Slope -2 of the bare norm (between T = 10 and 100, within 0.02); times T² it ends within 1% of the limit."""
    drawn = lines(figure())
    t, without = (np.asarray(a, dtype=np.float64) for a in drawn["without T^2"].get_data())
    slope = np.diff(np.log(without[20:])) / np.diff(np.log(t[20:]))
    assert np.all(np.abs(slope + 2) < 0.02)
    assert abs(t[-1] ** 2 * without[-1] / drawn["limit"].get_ydata()[0] - 1) < 0.01
    (ax,) = figure().axes
    assert ax.get_xscale() == ax.get_yscale() == "log"


def stored_cells():
    return json.loads(CHAPTER.read_text(encoding="utf-8"))["cells"]


def test_the_chapters_table_is_the_closed_form():
    """Every row of the printed table (T, |grad|, T² |grad|) matches the NumPy formula to the printed digits."""
    student, teacher = (x.numpy() for x in chapter_logits())
    (cell,) = [c for c in stored_cells() if c["cell_type"] == "code" and "T² |grad| / limit" in "".join(c["source"])]
    text = "".join(cell["outputs"][0]["text"])
    rows = [line.split() for line in text.splitlines()[2:]]
    assert [int(r[0]) for r in rows] == [1, 2, 4, 8, 16, 32, 64]
    d = student - teacher
    limit = np.linalg.norm(d - d.mean(axis=1, keepdims=True)) / (C * N)
    for r in rows:
        t = float(r[0])
        g = grad_norm(student, teacher, t)
        assert abs(float(r[2]) - g) <= 0.5e-4 + 1e-12
        assert abs(float(r[3]) - t * t * g) <= 0.5e-4 + 1e-12
        assert abs(float(r[4]) - t * t * g / limit) <= 0.5e-4 + 1e-12


def test_figure_reads_on_a_phone_and_is_the_stored_one():
    fig = figure()
    assert fig.get_size_inches()[0] <= 6.4 and fig.dpi == plots.DPI
    fig.canvas.draw()
    from matplotlib.text import Text

    assert min(t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()) >= 10
    (ax,) = fig.axes
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    if matplotlib.__version__ != RECORDED_WITH:
        pytest.skip(f"matplotlib {matplotlib.__version__} did not record the stored figure")
    from matplotlib.image import imread

    (cell,) = [c for c in stored_cells() if "plots.distillation_gradient(" in "".join(c["source"])
               and c.get("outputs") and "image/png" in c["outputs"][0].get("data", {})]
    stored = imread(io.BytesIO(base64.b64decode("".join(cell["outputs"][0]["data"]["image/png"]))))
    fresh = imread(io.BytesIO(base64.b64decode(display.retina_png(figure())[0])))
    assert stored.shape == fresh.shape and np.array_equal(stored, fresh)
