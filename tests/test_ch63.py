"""Chapter 63 (contrastive losses): what its figure draws, checked against an independent formula.

``plots.contrastive_scale_curve`` draws CLIP's symmetric loss against the logit scale. Here the
loss is written in NumPy from its definition (normalise, ``S = U Vᵀ``, the mean over rows of
``logsumexp(s S_i) - s S_ii`` and the same over columns, halved), independent of
``lib.functional`` and torch's losses, and compared with the drawn lines, the chapter's printed
table and the claims of the caption.
"""

import base64
import io
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from lib import device, display, plots  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CHAPTER = ROOT / "chapters" / "63_contrastive.ipynb"
RECORDED_WITH = "3.11.2"  # the matplotlib of tests/test_figures.py
N, D = 8, 512


def chapter_embeddings():
    """The chapter's images, noisy texts and random texts, on the CPU."""
    images = device.randn(N, D, seed=630, device="cpu")
    texts = images + 3 * device.randn(N, D, seed=631, device="cpu")
    randoms = device.randn(N, D, seed=632, device="cpu")
    return images, texts, randoms


def logsumexp(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def symmetric_loss(a, b, s):
    """CLIP's loss of embeddings ``a``, ``b`` at logit scale ``s``, in NumPy float64."""
    a, b = (np.asarray(x, dtype=np.float64) for x in (a, b))
    u = a / np.linalg.norm(a, axis=1, keepdims=True)
    v = b / np.linalg.norm(b, axis=1, keepdims=True)
    logits = s * u @ v.T
    diag = np.diag(logits)
    return 0.5 * (np.mean(logsumexp(logits, 1) - diag) + np.mean(logsumexp(logits, 0) - diag))


def figure():
    images, texts, randoms = chapter_embeddings()
    return plots.contrastive_scale_curve({"aligned": (images, images), "noisy pairs": (images, texts),
                                          "random": (images, randoms)}, scales=torch.logspace(-2, 2, 81))


def lines(fig):
    (ax,) = fig.axes
    found = {}
    for line in ax.lines:
        assert line.get_gid() and line.get_gid() not in found
        found[line.get_gid()] = line
    assert not ax.collections and not ax.patches and not ax.images and not ax.texts
    return ax, found


def test_curves_are_the_symmetric_loss():
    images, texts, randoms = (x.numpy() for x in chapter_embeddings())
    ax, drawn = lines(figure())
    assert set(drawn) == {"loss aligned", "loss noisy pairs", "loss random", "ln n", "init", "clamp"}
    for label, other in (("aligned", images), ("noisy pairs", texts), ("random", randoms)):
        s, loss = (np.asarray(a, dtype=np.float64) for a in drawn[f"loss {label}"].get_data())
        assert np.allclose(s, np.logspace(-2, 2, 81), rtol=1e-6, atol=0)  # a float32 logspace
        expected = np.array([symmetric_loss(images, other, x) for x in s])
        assert np.allclose(loss, expected, rtol=1e-9, atol=1e-12)
    assert list(drawn["ln n"].get_ydata()) == [pytest.approx(math.log(N), rel=1e-15)] * 2
    assert list(drawn["init"].get_xdata()) == [pytest.approx(1 / 0.07, rel=1e-15)] * 2
    assert list(drawn["clamp"].get_xdata()) == [100, 100]
    assert ax.get_xscale() == "log"


def test_caption_claims_hold():
    """All three start near ln 8 (within 0.02 at s = 0.01); aligned falls below noisy, both towards 0; random rises."""
    _, drawn = lines(figure())
    curves = {k: np.asarray(drawn[f"loss {k}"].get_ydata()) for k in ("aligned", "noisy pairs", "random")}
    assert all(abs(c[0] - math.log(N)) < 0.02 for c in curves.values())
    # aligned: exactly 0 at the end
    assert np.all(np.diff(curves["aligned"]) <= 0) and np.all(np.diff(curves["noisy pairs"]) < 0)
    assert np.all(curves["aligned"][1:] < curves["noisy pairs"][1:])
    assert curves["aligned"][-1] < 1e-6 and curves["noisy pairs"][-1] < 1e-3
    assert curves["random"][-1] > curves["random"][0]


def stored_cells():
    return json.loads(CHAPTER.read_text(encoding="utf-8"))["cells"]


def test_the_chapters_table_is_the_formula():
    images, texts, randoms = (x.numpy() for x in chapter_embeddings())
    (cell,) = [c for c in stored_cells() if c["cell_type"] == "code" and '"noisy pairs"]' in "".join(c["source"])]
    text = "".join(cell["outputs"][0]["text"])
    rows = [line.split() for line in text.splitlines()[2:7]]
    assert [r[0] for r in rows] == ["0", "1", "1/0.07", "30", "100"]
    for name, aligned, random_, noisy in rows:
        s = 1 / 0.07 if name == "1/0.07" else float(name)
        for printed, other in ((aligned, images), (random_, randoms), (noisy, texts)):
            assert abs(float(printed) - symmetric_loss(images, other, s)) <= 0.5e-4 + 1e-6


def test_figure_reads_on_a_phone_and_is_the_stored_one():
    fig = figure()
    assert fig.get_size_inches()[0] <= 6.4 and fig.dpi == plots.DPI
    fig.canvas.draw()
    from matplotlib.text import Text

    assert min(t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()) >= 10
    (ax,) = fig.axes
    assert ax.get_xlabel() and "[nats]" in ax.get_ylabel() and ax.get_title()
    if matplotlib.__version__ != RECORDED_WITH:
        pytest.skip(f"matplotlib {matplotlib.__version__} did not record the stored figure")
    from matplotlib.image import imread

    (cell,) = [c for c in stored_cells() if "plots.contrastive_scale_curve(" in "".join(c["source"])
               and c.get("outputs") and "image/png" in c["outputs"][0].get("data", {})]
    stored = imread(io.BytesIO(base64.b64decode("".join(cell["outputs"][0]["data"]["image/png"]))))
    fresh = imread(io.BytesIO(base64.b64decode(display.retina_png(figure())[0])))
    assert stored.shape == fresh.shape and np.array_equal(stored, fresh)
