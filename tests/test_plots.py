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


def test_benchmark_figure_has_a_labelled_panel_per_size():
    import csv

    from benchmarks import cross_entropy as bench

    with bench.RESULTS.open() as handle:
        rows = list(csv.DictReader(handle))
    fig = plots.benchmark_results(rows)
    sizes = {(r["N"], r["C"]) for r in rows}
    assert len(fig.axes) == len(sizes)
    for ax in fig.axes:
        assert "[ms]" in ax.get_ylabel() and ax.get_xlabel() and ax.get_title().startswith("N = ")
    memory = plots.benchmark_results(rows, metric="peak_memory_mib")
    assert all("[MiB]" in ax.get_ylabel() for ax in memory.axes)
    with pytest.raises(ValueError, match="metric"):
        plots.benchmark_results(rows, metric="forward_ms_typo")
