"""Chapter "Imbalance beyond weight": what its figure draws, and its printed table, against NumPy formulas."""

import json
import re

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from lib import plots  # noqa: E402
from tests.test_figures import source  # noqa: E402
from tools import guards  # noqa: E402

CHAPTER = guards.CHAPTERS / "64_imbalance.ipynb"
GAMMAS = (0.0, 0.5, 1.0, 2.0, 5.0)


def focal_np(p, gamma):
    """-(1 - p)^gamma log p in float64 NumPy: equation (focal) with alpha = 1."""
    p = np.asarray(p, dtype=np.float64)
    return -((1 - p) ** gamma) * np.log(p)


def cells():
    return json.loads(CHAPTER.read_text(encoding="utf-8"))["cells"]


def output_text(cell):
    return "".join("".join(o.get("text", "")) for o in cell.get("outputs", []))


def test_the_chapter_draws_the_figure_with_these_gammas():
    calls = [source(c) for c in cells() if c["cell_type"] == "code" and "focal_loss_curve(" in source(c)
             and "check" not in c["metadata"].get("tags", [])]
    assert calls == ["plots.focal_loss_curve(gammas=(0.0, 0.5, 1.0, 2.0, 5.0))"]


def test_focal_loss_curve_draws_the_focal_loss():
    fig = plots.focal_loss_curve(gammas=GAMMAS)
    ax = fig.axes[0]
    lines = {line.get_gid(): line for line in ax.lines}
    assert set(lines) == {f"focal gamma={g:g}" for g in GAMMAS}
    drawn = {}
    for g in GAMMAS:
        x, y = (np.asarray(v, dtype=np.float64) for v in lines[f"focal gamma={g:g}"].get_data())
        np.testing.assert_allclose(y, focal_np(x, g), rtol=1e-12, atol=1e-15)
        assert x[0] > 0 and x[-1] < 1 and np.all(np.diff(x) > 0)
        drawn[g] = y
    # the caption: each larger gamma lies lower; gamma = 0 is the cross-entropy
    for lower, higher in zip(GAMMAS[1:], GAMMAS[:-1], strict=True):
        assert np.all(drawn[lower] < drawn[higher])
    np.testing.assert_allclose(drawn[0.0], -np.log(x), rtol=1e-12)
    # the alt text: right of 0.6, gamma 2 and 5 stay below 0.1, the cross-entropy starts above 0.5
    right = x > 0.6
    assert drawn[2.0][right].max() < 0.1 and drawn[5.0][right].max() < 0.1 and drawn[0.0][right].max() > 0.5
    (span,) = ax.patches
    assert span.get_gid() == "well classified" and span.get_x() == 0.6
    assert abs(span.get_x() + span.get_width() - 1.0) < 1e-12
    assert [t.get_text() for t in ax.get_legend().get_texts()][0] == "γ = 0 (cross-entropy)"


def test_the_first_table_is_the_formula():
    (cell,) = [c for c in cells() if c["cell_type"] == "code" and source(c).startswith("pt = torch.tensor([0.1")]
    rows = [line.split() for line in output_text(cell).splitlines()[2:] if line.strip()]
    assert len(rows) == 4
    for row in rows:
        p, ce, fl, ratio = (float(v) for v in row)
        assert abs(ce - -np.log(p)) <= 0.5e-4 + 1e-12
        assert abs(fl - focal_np(p, 2.0)) <= 0.5e-4 + 1e-12
        assert abs(ratio - (1 - p) ** 2) <= 0.5e-4 + 1e-12


def test_the_wrong_pt_column_is_pt_to_the_weight():
    (cell,) = [c for c in cells() if c["cell_type"] == "code" and "exp(-weighted CE)" in source(c)
               and "check" not in c["metadata"].get("tags", [])]
    rows = [line.split() for line in output_text(cell).splitlines()[2:] if line.strip()]
    assert len(rows) == 6
    for _, w, pt, wrong, power in ((float(v) for v in row) for row in rows):
        assert wrong == power
        assert abs(wrong - pt ** w) <= 1e-3  # from the printed 4-decimal p_t: loose
        assert (wrong < pt) == (w > 1) or w == 1
    assert re.search(r"tensor\(\[0\]\)", "".join(output_text(c) for c in cells() if "wrong_sampler" in source(c)))
