"""Chapter "From logits to predictions and metrics": its reliability figure and printed tables, against NumPy."""

import json

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from lib import plots  # noqa: E402
from tests.test_figures import source  # noqa: E402
from tools import guards  # noqa: E402

CHAPTER = guards.CHAPTERS / "65_predictions.ipynb"


def cells():
    return json.loads(CHAPTER.read_text(encoding="utf-8"))["cells"]


def output_text(cell):
    return "".join("".join(o.get("text", "")) for o in cell.get("outputs", []))


def table_rows(startswith):
    (cell,) = [c for c in cells() if c["cell_type"] == "code" and source(c).startswith(startswith)]
    lines = output_text(cell).splitlines()
    dashes = next(i for i, line in enumerate(lines) if line.startswith("---"))
    return [line.split() for line in lines[dashes + 1:] if line.strip() and not line.startswith("tensor(")]


def numpy_reliability(probs, target, n_bins):
    """(mean confidence, accuracy) of the non-empty bins ((m-1)/M, m/M], and the ECE, in NumPy."""
    probs, target = np.asarray(probs, dtype=np.float64), np.asarray(target)
    conf, pred = probs.max(1), probs.argmax(1)
    index = np.searchsorted(np.arange(1, n_bins) / n_bins, conf, side="left")
    points, ece = [], 0.0
    for m in range(n_bins):
        inside = index == m
        if inside.any():
            acc, mean_conf = (pred[inside] == target[inside]).mean(), conf[inside].mean()
            points.append((mean_conf, acc))
            ece += inside.mean() * abs(acc - mean_conf)
    return np.array(points), ece


def synthetic_predictions(seed, n=500, c=4, scale=4.0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=gen, dtype=torch.float64) * scale
    target = torch.randint(0, c, (n,), generator=gen)
    target = torch.where(torch.rand(n, generator=gen) < 0.5, logits.argmax(1), target)
    return torch.softmax(logits, 1), target


def test_reliability_diagram_draws_the_bins_and_the_ece():
    curves = [(f"curve {k}", *synthetic_predictions(k)) for k in range(3)]
    fig = plots.reliability_diagram(curves, n_bins=10)
    ax = fig.axes[0]
    assert len(fig.axes) == 1 and tuple(fig.get_size_inches()) == (6.4, 3.6)
    lines = {line.get_gid(): line for line in ax.lines}
    assert set(lines) == {"diagonal"} | {f"reliability curve {k}" for k in range(3)}
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    for k, (label, probs, target) in enumerate(curves):
        expected, ece = numpy_reliability(probs.numpy(), target.numpy(), 10)
        x, y = (np.asarray(v, dtype=np.float64) for v in lines[f"reliability {label}"].get_data())
        np.testing.assert_allclose(np.stack([x, y], 1), expected, rtol=1e-12, atol=1e-15)
        assert legend[k] == f"{label}: ECE = {ece:.4f}"
    assert list(lines["diagonal"].get_xdata()) == [0, 1] and list(lines["diagonal"].get_ydata()) == [0, 1]


def test_the_chapter_draws_the_figure_with_ten_bins_and_three_curves():
    (cell,) = [c for c in cells() if c["cell_type"] == "code" and "plots.reliability_diagram(" in source(c)
               and "check" not in c["metadata"].get("tags", [])]
    assert cell["metadata"]["mystnb"]["figure"]["name"] == "fig-reliability"
    assert "n_bins=10" in source(cell) and source(cell).count('", ') >= 3
    assert any(o.get("data", {}).get("image/png") for o in cell["outputs"])


def test_the_printed_tables_agree_with_each_other():
    history = table_rows("C, D = 4, 10")
    steps = [int(r[0]) for r in history]
    assert steps == [100, 200, 300, 400, 500, 600]
    comparison = table_rows("T_ls = fit_temperature")
    (plain, smooth) = comparison
    # the comparison's plain row is the last row of the training history (accuracy, NLL)
    assert plain[1:3] == history[-1][1:3]
    # the temperature table printed the same NLL and ECE
    temperature = table_rows("T = fit_temperature")
    assert temperature[0][1] == plain[2] and temperature[0][2] == plain[3] and temperature[1][-1] == plain[5]
    # label smoothing: lower ECE and NLL, a temperature closer to 1
    assert float(smooth[3]) < float(plain[3]) and float(smooth[2]) < float(plain[2])
    assert abs(float(smooth[4]) - 1) < abs(float(plain[4]) - 1)
    # the bins table: 1 to 15 bins give the plain model's ECE
    bins = table_rows("p_scaled = F.softmax")
    assert [r[1] for r in bins[:4]] == [plain[3]] * 4 and bins[3][2] == plain[5]


def test_the_double_softmax_table_matches_the_formula():
    rows = table_rows("C = 10")
    for margin, loss, grad, double_loss, _ in ((float(v) for v in r) for r in rows):
        z = np.zeros(10)
        z[1] = margin
        p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        assert abs(loss - -np.log(p[0])) <= 0.5e-4 + 1e-9
        g = p.copy()
        g[0] -= 1
        assert abs(grad - np.linalg.norm(g)) <= 0.5e-4 + 1e-9
        q = np.exp(p) / np.exp(p).sum()
        assert abs(double_loss - -np.log(q[0])) <= 0.5e-4 + 1e-9
