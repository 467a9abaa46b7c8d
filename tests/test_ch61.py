"""Chapter "Binary and multi-label losses in practice": what ``plots.saturated_bce`` draws.

The two curves are checked against independent formulas computed with NumPy: the loss of a
logit z with target 0 is log(1 + e^z) in exact arithmetic (``BCEWithLogitsLoss``); ``BCELoss``
on the float32 sigmoid follows it until the sigmoid rounds to 1, where the clamped log gives
exactly 100. The threshold, the first float32 at or above 24 ln 2 (where 1 + e^-z rounds to 1
in float32), and the caption's and alt text's claims are checked against the chapter's cells.
"""

import json
import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from lib import plots  # noqa: E402
from tests.test_figures import axline_at, drawn, legend_texts, xy  # noqa: E402
from tools.guards import ROOT  # noqa: E402

CHAPTER = ROOT / "chapters" / "61_multi_label.ipynb"
#: The first float32 at or above 24 ln 2, where torch's CPU float32 sigmoid returns 1.
THRESHOLD = float(np.nextafter(np.float32(24 * math.log(2)), np.float32(0)))


def first_float32_at_or_above(value):
    f = np.float32(value)
    return float(f) if float(f) >= value else float(np.nextafter(f, np.float32(np.inf)))


def test_saturated_bce_draws_both_losses_and_the_clamp():
    fig = plots.saturated_bce()
    ax = fig.axes[0]
    art = drawn(ax)
    assert set(art) == {"with logits", "on sigmoid", "clamp"}
    z, with_logits = xy(art["with logits"])
    np.testing.assert_allclose(z, np.linspace(0, 120, 1201), rtol=1e-6, atol=0)  # float32 grid
    assert np.array_equal(z.astype(np.float32).astype(np.float64), z)
    np.testing.assert_allclose(with_logits, np.logaddexp(0.0, z), rtol=1e-6, atol=1e-6)
    z_s, on_sigmoid = xy(art["on sigmoid"])
    np.testing.assert_array_equal(z_s, z)
    threshold = first_float32_at_or_above(24 * math.log(2))
    saturated = z >= threshold
    assert saturated.any() and (~saturated).any()
    np.testing.assert_array_equal(on_sigmoid[saturated], 100.0)
    # below the threshold: -log(1 - sigmoid(z)) with a float32 sigmoid, within float32 rounding of
    # 1 - sigmoid(z) (relative 2^-24 / (1 - sigmoid(z)) in the log's argument)
    below = z[~saturated]
    s32 = (1 / (1 + np.exp(-below.astype(np.float32)))).astype(np.float32)
    np.testing.assert_allclose(on_sigmoid[~saturated], -np.log1p(-s32.astype(np.float64)), rtol=1e-4, atol=1e-4)
    # it follows log(1 + e^z) closely up to z = 10, then in visible float32 steps (within 0.7)
    early = below < 10
    np.testing.assert_allclose(on_sigmoid[~saturated][early], np.logaddexp(0.0, below[early]), rtol=0, atol=0.01)
    np.testing.assert_allclose(on_sigmoid[~saturated], np.logaddexp(0.0, below), rtol=0, atol=0.7)
    assert np.abs(on_sigmoid[~saturated] - np.logaddexp(0.0, below)).max() > 0.3  # the steps are there
    assert axline_at(ax, art["clamp"], "y") == 100.0
    assert art["on sigmoid"].get_linestyle() == "--"
    assert legend_texts(ax.get_legend()) == ["BCEWithLogitsLoss(z)", "BCELoss(sigmoid(z))"]
    assert ax.get_xlabel() == "logit z  (target 0, float32)"
    assert ax.get_ylabel() == "loss  [nats]"
    # the curves cross where log(1 + e^z) = 100, at z = 100 to float32 precision
    crossing = z[np.argmin(np.abs(with_logits - on_sigmoid) + (~saturated) * 1e9)]
    assert abs(crossing - 100) < 0.1


def test_caption_and_alt_text_match_the_drawing_and_the_chapter():
    nb = json.loads(CHAPTER.read_text(encoding="utf-8"))
    cells = [c for c in nb["cells"] if c["cell_type"] == "code" and "plots.saturated_bce(" in "".join(c["source"])]
    assert len(cells) == 1
    meta = cells[0]["metadata"]["mystnb"]
    caption, alt = meta["figure"]["caption"], meta["image"]["alt"]
    threshold = first_float32_at_or_above(24 * math.log(2))
    assert f"{threshold:.6f}" == "16.635532"
    assert "z = 16.635532" in caption and "z = 16.635532" in alt
    assert "float32 steps" in caption and "the clamp, 100" in caption
    assert "flat at 100" in alt and "from 0 to 120" in alt
    # the chapter prints the same threshold, found by searching torch's float32 sigmoid
    printed = "".join("".join(o.get("text", "")) for c in nb["cells"] if c["cell_type"] == "code"
                      for o in c.get("outputs", []))
    assert "first float32 with sigmoid(z) == 1: 16.635532\n24 ln 2 = 16.635532,  ln(2^25 - 1) = 17.328679" in printed
    assert THRESHOLD < threshold
