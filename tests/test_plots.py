"""The book's figures: each function returns one figure with labelled axes and a title."""

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from lib import plots  # noqa: E402

FIGURES = {
    "binary_entropy": lambda: plots.binary_entropy(),
    "surprise_curve": lambda: plots.surprise_curve(),
    "kl_pair": lambda: plots.kl_pair(torch.tensor([0.8, 0.15, 0.05]), torch.tensor([0.34, 0.33, 0.33])),
    "margin_curve": lambda: plots.margin_curve(),
    "label_smoothing_curve": lambda: plots.label_smoothing_curve(),
}


@pytest.mark.parametrize("name", FIGURES)
def test_figure_is_labelled(name):
    fig = FIGURES[name]()
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    assert fig.get_facecolor()[:3] == (1.0, 1.0, 1.0)  # readable in dark mode too


def test_units_are_stated():
    assert "[bits]" in plots.binary_entropy().axes[0].get_ylabel()
    for fig in (plots.surprise_curve(), plots.margin_curve(), plots.label_smoothing_curve()):
        assert "[nats]" in fig.axes[0].get_ylabel()
    assert "nats" in plots.kl_pair([0.5, 0.5], [0.9, 0.1]).axes[0].get_title()


def test_benchmark_bars_takes_plain_values():
    series = {"machine A": [1.0, 2.0, float("nan")], "machine B": [3.0, 4.0, 5.0]}
    fig = plots.benchmark_bars(["torch", "lib", "naive"], series, title="N = 1, C = 2", ylabel="time  [ms]")
    (ax,) = fig.axes
    assert ax.get_title() == "N = 1, C = 2" and "[ms]" in ax.get_ylabel() and ax.get_xlabel()
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(series)
    assert fig.get_figwidth() <= 6.4
    with pytest.raises(ValueError, match="3 groups"):
        plots.benchmark_bars(["torch", "lib", "naive"], {"a": [1.0]}, title="t", ylabel="y")
